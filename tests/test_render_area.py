"""The monthly DAG's rendering step, one task per area (`cjmonitor.pipeline.render_area`): every document of the
area, each named in the task's log; one failing document does not stop the others but fails the area, naming
it; an area with no whole-system returns gets no LCJB pack and still succeeds."""

from __future__ import annotations

import shutil

import pytest
from sqlmodel import delete, select

from cjmonitor import pipeline
from cjmonitor.db import session_scope
from cjmonitor.documents import render_one
from cjmonitor.settings import get_settings
from contracts.models import Artifact, Contract, SystemMeasureValue

AREA, PERIOD = "E23000005", "2025-12"


def _contracts(settings) -> list[str]:
    with session_scope(settings) as session:
        return sorted(session.exec(select(Contract.id).where(Contract.area_code == AREA)).all())


def _clear(settings, contracts) -> None:
    """The copied demo home holds the demo's documents already: remove the area's, so that a test sees them written."""
    for contract_id in contracts:
        for path in (settings.out_dir / "scorecards" / PERIOD).glob(f"{contract_id}.*"):
            path.unlink()
    for folder in (settings.out_dir / "reports" / AREA, settings.out_dir / "lcjb" / AREA):
        shutil.rmtree(folder, ignore_errors=True)


def test_every_document_of_the_area_is_rendered_and_named_in_the_log(writable_demo_home):
    settings = get_settings(writable_demo_home)
    contracts = _contracts(settings)
    assert len(contracts) >= 3
    _clear(settings, contracts)
    lines: list[str] = []
    result = pipeline.render_area(settings, AREA, PERIOD, echo=lines.append)
    assert sorted(result["documents"]) == ["lcjb_pack", "monthly_report", "scorecard"]
    assert len(result["documents"]["scorecard"]) == 3 * len(contracts)  # HTML, PDF, XLSX each
    for contract_id in contracts:
        html = settings.out_dir / "scorecards" / PERIOD / f"{contract_id}.html"
        assert html.exists()
        assert any(line.startswith(f"scorecard {contract_id}: {html}") for line in lines)
    assert any(line.startswith(f"monthly_report {AREA}:") for line in lines)
    assert any(line.startswith(f"lcjb_pack {AREA}:") for line in lines)
    assert lines[-1].startswith(f"{AREA} {PERIOD}: {len(contracts) + 2} documents in ")
    with session_scope(settings) as session:
        kinds = {a.kind for a in session.exec(select(Artifact).where(Artifact.area_code == AREA,
                                                                     Artifact.period == PERIOD)).all()}
    assert {"scorecard", "monthly_report", "lcjb_pack"} <= kinds
    assert any((settings.out_dir / "reports" / AREA / PERIOD).glob("monthly.*"))
    assert any((settings.out_dir / "lcjb" / AREA / PERIOD).iterdir())


def test_one_failing_document_fails_the_area_naming_it_after_the_others(writable_demo_home, monkeypatch):
    import reports.scorecard

    settings = get_settings(writable_demo_home)
    contracts = _contracts(settings)
    broken = contracts[0]
    real = reports.scorecard.render_scorecard

    def render(session, out_dir, contract_id, *args, **kwargs):
        if contract_id == broken:
            raise ValueError("a template fault")
        return real(session, out_dir, contract_id, *args, **kwargs)

    monkeypatch.setattr(reports.scorecard, "render_scorecard", render)
    _clear(settings, contracts)
    lines: list[str] = []
    with pytest.raises(RuntimeError, match=rf"1 of {len(contracts) + 2} documents of {AREA} for {PERIOD} failed: "
                                           rf"scorecard {broken}: ValueError: a template fault"):
        pipeline.render_area(settings, AREA, PERIOD, echo=lines.append)
    for contract_id in contracts[1:]:
        assert (settings.out_dir / "scorecards" / PERIOD / f"{contract_id}.html").exists()
    assert any(line.startswith(f"monthly_report {AREA}:") for line in lines)


def test_an_area_without_system_returns_gets_no_lcjb_pack_and_succeeds(writable_demo_home):
    settings = get_settings(writable_demo_home)
    with session_scope(settings) as session:
        session.exec(delete(SystemMeasureValue).where(SystemMeasureValue.area_code == AREA))
    _clear(settings, _contracts(settings))
    lines: list[str] = []
    result = pipeline.render_area(settings, AREA, PERIOD, echo=lines.append)
    assert "lcjb_pack" not in result["documents"]
    assert f"lcjb_pack {AREA}: not rendered, no system measures are stored for the area" in "\n".join(lines)
    assert not (settings.out_dir / "lcjb" / AREA).exists()
    assert (settings.out_dir / "reports" / AREA / PERIOD / "monthly.pdf").exists()


def test_the_judge_step_leaves_the_thresholds_and_documents_do_not_simulate_them(writable_demo_home, monkeypatch):
    """`judge` simulates the shortfall rule's thresholds once into the home's cache; a document rendered in a
    process of its own (as each Airflow task is) reads them, and the figures are the same without the cache."""
    import json

    from contracts import fairness

    settings = get_settings(writable_demo_home)
    stored = json.loads(settings.threshold_cache_path.read_text())["thresholds"]
    assert len(stored) >= 10  # the demo's contracts x KPIs, written by `cjmonitor demo`'s judge step
    contract_id = _contracts(settings)[0]
    html = settings.out_dir / "scorecards" / PERIOD / f"{contract_id}.html"
    fairness.use_threshold_store(None)
    fairness.cusum_threshold.cache_clear()  # as a new process

    def no_simulation(*args, **kwargs):
        raise AssertionError("a document simulated a threshold the judge step had stored")

    with monkeypatch.context() as patch:
        patch.setattr(fairness, "_simulate", no_simulation)
        render_one(settings, "scorecard", contract_id, PERIOD, formats=("html",))
    cached = html.read_text()
    settings.threshold_cache_path.unlink()
    fairness.use_threshold_store(None)
    fairness.cusum_threshold.cache_clear()
    render_one(settings, "scorecard", contract_id, PERIOD, formats=("html",))
    assert html.read_text() == cached  # simulated afresh: the same page
    assert settings.threshold_cache_path.exists()  # and stored again for the next document
    fairness.use_threshold_store(None)
