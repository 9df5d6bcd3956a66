"""`cjmonitor demo` end to end on a small world: real files, a real SQLite database, real numbers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sqlmodel import select

from cjmonitor import pipeline
from cjmonitor.db import session_scope
from cjmonitor.demo import build_world
from cjmonitor.settings import get_settings
from contracts.models import CrcRecord, Judgement, KpiValue, Submission


def _world(demo_summary):
    return build_world(seed=demo_summary["seed"], areas=demo_summary["areas"], months=demo_summary["months"])


def test_demo_loads_every_good_return_and_rejects_every_malformed_one(demo_settings, demo_summary):
    with session_scope(demo_settings) as session:
        submissions = session.exec(select(Submission)).all()
    rejected = sorted(s.file_name for s in submissions if s.status == "rejected")
    assert rejected == sorted(demo_summary["malformed_files"])
    accepted = [s for s in submissions if s.status == "accepted"]
    assert len(accepted) == demo_summary["files"] - len(rejected)
    # The corrected file is version 2 and current; the rejected version 1 is kept and not current.
    for name in demo_summary["malformed_files"]:
        versions = sorted((s for s in submissions if s.file_name.split("_v2")[0].rsplit(".", 1)[0] == name.rsplit(".", 1)[0]),
                          key=lambda s: s.version)
        assert [(s.version, s.status, s.is_current) for s in versions] == [(1, "rejected", False), (2, "accepted", True)]
    late = {(s.provider_id, s.return_type, s.period) for s in submissions if s.is_late}
    assert late == {(r["provider_id"], r["return_type"], r["period"]) for r in demo_summary["late_returns"]}


def test_derived_kpis_match_the_rates_the_generator_set(demo_settings, demo_summary):
    """Each derived KPI is a binomial draw around the generator's true rate: z-scores behave like N(0, 1)."""
    world = _world(demo_summary)
    with session_scope(demo_settings) as session:
        values = pd.DataFrame([v.model_dump() for v in session.exec(select(KpiValue).where(KpiValue.source == "derived")).all()])
    start = pd.Period(demo_summary["start"], "M")
    z = []
    for row in values.itertuples():
        key = (row.contract_id, row.measure_code)
        if key not in world.true_rates or row.denominator < 20 or row.measure_code == "em_violation_response":
            continue  # violations cluster within orders, so they are not independent trials
        month = (pd.Period(row.period, "M") - start).n
        p = world.true_rates[key][month]
        z.append((row.value - p) / np.sqrt(p * (1 - p) / row.denominator))
    z = np.asarray(z)
    assert len(z) > 500
    assert abs(z.mean()) < 0.1
    assert 0.85 < z.std() < 1.15
    assert np.mean(np.abs(z) > 1.96) < 0.08


def test_one_named_contract_month_comes_back_within_sampling_error(demo_settings, demo_summary):
    world = _world(demo_summary)
    its = world.truth["its_effects"][0]
    contract_id, measure = its["contract_id"], its["measure"]
    with session_scope(demo_settings) as session:
        value = session.exec(select(KpiValue).where(KpiValue.contract_id == contract_id, KpiValue.measure_code == measure,
                                                    KpiValue.period == "2023-06")).one()
    truth = world.true_rates[(contract_id, measure)][5]
    assert 0.68 < truth < 0.76, "the generator sets this contract's sentence-plan rate to about 72% before renegotiation"
    se = np.sqrt(truth * (1 - truth) / value.denominator)
    assert abs(value.value - truth) < 3.3 * se


def test_failing_provider_is_red_and_verdict_is_not_met(demo_settings, demo_summary):
    with session_scope(demo_settings) as session:
        judged = pd.DataFrame([j.model_dump() for j in session.exec(select(Judgement)).all()])
    failing = judged[judged["contract_id"].isin(demo_summary["failing_contracts"])
                     & (judged["measure_code"] == demo_summary["failing_measure"])]
    assert len(failing) > 0
    assert (failing["rag"] == "Red").mean() > 0.8
    assert (failing["verdict"] == "not met").mean() > 0.6
    others = judged[~judged["contract_id"].isin(demo_summary["failing_contracts"])
                    & (judged["measure_code"] == demo_summary["failing_measure"])]
    assert (others["rag"] == "Red").mean() < 0.2
    assert set(judged["rag"]) <= {"Green", "Amber", "Red", "No data"}
    assert set(judged["verdict"]) <= {"met", "not met", "inconclusive", "insufficient volume"}


def test_person_identifiers_never_reach_the_database(demo_settings, demo_home):
    with session_scope(demo_settings) as session:
        keys = session.exec(select(CrcRecord.person_key).limit(2000)).all()
    assert all(len(k) == 32 and not k.startswith("PX") for k in keys)
    raw = (demo_home / "var" / "cjmonitor.db").read_bytes()
    lines = next((demo_home / "var" / "drop").glob("*_crc_caseload_*.csv")).read_text().splitlines()[1:21]
    samples = [line.split(",")[3] for line in lines]
    assert all(s.startswith("PX") for s in samples)
    assert not any(s.encode() in raw for s in samples)


def test_scorecards_and_index_are_written_and_say_the_rag_in_words(demo_home, demo_summary):
    index = demo_home / "out" / "index.html"
    html = index.read_text()
    assert "Commissioning documents, December 2025" in html
    cards = sorted((demo_home / "out" / "scorecards" / "2025-12").glob("*.html"))
    assert len(cards) == demo_summary["areas"] * 4
    failing = (demo_home / "out" / "scorecards" / "2025-12" / f"{demo_summary['failing_contracts'][0]}.html").read_text()
    assert "Settled accommodation on the first night" in failing
    assert ">Red<" in failing and "not met" in failing
    assert "<svg" in failing and "Provenance" in failing and "sha256" in failing
    for card in cards:
        assert f'href="{card.relative_to(demo_home / "out")}"' in html


def test_rerun_is_idempotent(writable_demo_home):
    demo_settings = get_settings(writable_demo_home)  # run_all rewrites every document: not the shared home
    with session_scope(demo_settings) as session:
        before = (len(session.exec(select(Submission)).all()), len(session.exec(select(KpiValue)).all()),
                  len(session.exec(select(Judgement)).all()))
    result = pipeline.run_all(demo_settings, "2025-12")
    assert result["ingest"]["accepted"] == 0 and result["ingest"]["rejected"] == 0
    assert result["ingest"]["duplicate"] == before[0]
    with session_scope(demo_settings) as session:
        after = (len(session.exec(select(Submission)).all()), len(session.exec(select(KpiValue)).all()),
                 len(session.exec(select(Judgement)).all()))
    assert after == before


def test_demo_json_summary(demo_home, demo_settings):
    # What `cjmonitor demo --json --areas 5 --months 36 --seed 7` printed when the shared demo home was built
    # (tests/conftest.py keeps it): one demo run serves this test and every other.
    summary = json.loads((demo_home / "demo-summary.json").read_text())
    assert summary["areas"] == 5 and summary["contracts"] == 20
    assert summary["submissions_rejected"] == 3
    assert summary["submissions_loaded"] == summary["files_written"] - 3
    assert summary["scorecards"] == 20 and summary["period"] == "2025-12"
    with session_scope(demo_settings) as session:  # the summary is what the database holds, not a promise
        assert len(session.exec(select(Submission).where(Submission.status == "accepted")).all()) == \
            summary["submissions_loaded"]
    assert set(summary["stage_seconds"]) >= {"Ingesting returns", "Deriving KPIs", "Writing return files",
                                             "Rendering scorecards"}
    assert any(stage.startswith("Rendering evidence packs, monthly reports") for stage in summary["stage_seconds"])
    assert all(seconds >= 0 for seconds in summary["stage_seconds"].values())


@pytest.mark.parametrize("measure", ["crc_plan_15wd", "ttg_settled_accommodation", "em_tag_24h", "hl_assessed_5wd"])
def test_every_service_type_has_kpis_every_month(demo_settings, demo_summary, measure):
    with session_scope(demo_settings) as session:
        periods = set(session.exec(select(KpiValue.period).where(KpiValue.measure_code == measure)).all())
    assert len(periods) == demo_summary["months"]


def parameters_naive(finding) -> float:
    return json.loads(finding.parameters)["naive_difference"]


def test_reoffending_effect_is_recovered_and_the_naive_comparison_is_not(demo_settings, demo_summary):
    from contracts.models import Finding

    (effect,) = demo_summary["reoffending_effects"]
    with session_scope(demo_settings) as session:
        findings = {f.contract_id: f for f in session.exec(select(Finding).where(Finding.method == "psm_nn_1to5_replacement",
                                                                           Finding.measure_code == "reo_binary_12m")).all()}
    found = findings[effect["contract_id"]]
    assert found.ci_low < effect["att"] < found.ci_high, (found.estimate, found.ci_low, found.ci_high)
    assert found.estimate < parameters_naive(found) - 0.05, "matching removes most of the selection bias"
    parameters = json.loads(found.parameters)
    naive_low, naive_high = parameters["naive_ci"]
    assert not naive_low < effect["att"] < naive_high, "selection on covariates biases the naive comparison"
    assert parameters["naive_difference"] > 0
    # Contracts whose service has no effect: intervals mostly cover zero.
    others = [f for cid, f in findings.items() if cid != effect["contract_id"]]
    assert others and sum(f.ci_low < 0 < f.ci_high for f in others) >= len(others) - 1


def test_synthetic_control_sees_the_area_whose_trend_shifted(demo_settings, demo_summary):
    from contracts.models import Finding

    (effect,) = demo_summary["synth_effects"]
    with session_scope(demo_settings) as session:
        (found,) = session.exec(select(Finding).where(Finding.method == "synthetic_control")).all()
    assert found.area_code == effect["area_code"] and found.measure_code == effect["measure"]
    assert found.estimate == pytest.approx(effect["effect"], abs=0.05)
    parameters = json.loads(found.parameters)
    assert parameters["rank"] == 1, "the treated area's change is the largest of all areas"


def test_renegotiation_effect_is_recovered_by_its(demo_settings, demo_summary):
    from contracts.models import Finding

    (effect,) = demo_summary["its_effects"]
    with session_scope(demo_settings) as session:
        findings = session.exec(select(Finding).where(Finding.method == "its_binomial_segmented",
                                                      Finding.contract_id == effect["contract_id"],
                                                      Finding.measure_code == effect["measure"])).all()
    (found,) = findings
    assert found.ci_low < effect["level_change"] < found.ci_high, (found.estimate, found.ci_low, found.ci_high)
    assert found.verdict == "increase"
    parameters = json.loads(found.parameters)
    assert parameters["intervention"] == effect["intervention"]
    assert "points" in parameters["sentence"]


def test_index_links_every_document_and_every_link_resolves(demo_home):
    import re

    out = demo_home / "out"
    html = (out / "index.html").read_text()
    links = re.findall(r'href="([^"]+)"', html)
    assert any(link.startswith("packs/") and link.endswith(".pdf") for link in links)
    assert any(link.startswith("reports/") and link.endswith(".pdf") for link in links)
    for link in links:
        assert not link.startswith(("/", "http")), "links are relative, so the site works from the file system"
        if link.startswith("#"):
            assert f'id="{link[1:]}"' in html, f"anchor {link} has no target on the page"
            continue
        assert (out / link).is_file(), link
