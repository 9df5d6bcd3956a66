"""A staggered roll-out in the pipeline (issue #17, item 5): declared in the register, analysed across areas,
shown in the evidence packs and monthly reports, recovered from the demo world's injected effect."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from cjmonitor.db import session_scope
from cjmonitor.settings import get_settings
from contracts.models import ContractVariation, Finding
from contracts.register import RegisterError, parse_yaml_text, validate
from tests.test_register import BASE


def _rollout_findings(settings) -> list[Finding]:
    with session_scope(settings) as session:
        return list(session.exec(select(Finding).where(Finding.method == "staggered_did")).all())


def test_the_demo_world_declares_its_roll_out_in_the_register(demo_settings, demo_summary):
    (effect,) = demo_summary["rollout_effects"]
    assert effect["measure"] == "ttg_ete_on_release" and effect["effect"] == 0.1
    assert len(effect["areas"]) == 4 and len({a["start"] for a in effect["areas"]}) == 4, "4 areas, 4 start months"
    assert effect["never_treated"], "at least one area never adopts"
    with session_scope(demo_settings) as session:
        stored = {(v.contract_id, v.effective_date.strftime("%Y-%m"), v.measure_code) for v in session.exec(
            select(ContractVariation).where(ContractVariation.kind == "rollout")).all()}
    assert stored == {(a["contract_id"], a["start"], effect["measure"]) for a in effect["areas"]}


def test_the_roll_out_is_stored_once_and_its_interval_covers_the_injected_effect(demo_settings, demo_summary):
    (effect,) = demo_summary["rollout_effects"]
    (found,) = _rollout_findings(demo_settings)  # one finding per roll-out, not one per area
    assert found.contract_id is None and found.measure_code == effect["measure"] and found.cohort == effect["service"]
    assert found.ci_low < effect["effect"] < found.ci_high, (found.estimate, found.ci_low, found.ci_high)
    assert found.estimate == pytest.approx(effect["effect"], abs=0.05)
    assert found.verdict == "increase", "a 10-point rise in 4 areas is distinguishable from noise"
    parameters = json.loads(found.parameters)
    assert parameters["control"] == "notyet" and "not yet treated" in parameters["control_sentence"]
    assert [(a["contract_id"], a["start"]) for a in parameters["areas"]] == \
        [(a["contract_id"], a["start"]) for a in effect["areas"]]
    assert parameters["never_treated"] == effect["never_treated"]
    # The stored result is the estimator's own: its ATT, headline and event-time table.
    result = parameters["result"]
    assert result["att"]["estimate"] == pytest.approx(found.estimate)
    assert parameters["headline"] == result["headline"] and "not yet treated" in parameters["headline"]
    post = [row["estimate"] for row in parameters["event_time"] if row["e"] >= 0]
    assert len(post) >= 12 and any(row["e"] < 0 for row in parameters["event_time"]), "an event study both sides"
    assert sum(post) / len(post) == pytest.approx(effect["effect"], abs=0.05)
    # Each cohort here is a single area: the result says its group-time intervals are too narrow.
    assert any("single unit" in caveat for caveat in parameters["caveats"])
    # The Goodman-Bacon decomposition of TWFE on the same panel: weights sum to 1 and reproduce TWFE.
    bacon = parameters["bacon"]
    assert bacon["twfe"] == pytest.approx(result["twfe"])
    assert sum(k["weight"] for k in bacon["by_kind"].values()) == pytest.approx(1.0)
    assert sum(k["weight"] * k["average"] for k in bacon["by_kind"].values()) == pytest.approx(bacon["twfe"])
    assert "two-by-two comparisons" in bacon["headline"]
    # The never-treated comparison is kept alongside.
    assert parameters["att_never_treated"]["estimate"] is not None
    assert isinstance(parameters["caveats"], list)


def test_a_roll_out_is_not_also_read_area_by_area_with_its(demo_settings, demo_summary):
    (effect,) = demo_summary["rollout_effects"]
    with session_scope(demo_settings) as session:
        its = session.exec(select(Finding).where(Finding.method == "its_binomial_segmented",
                                                 Finding.measure_code == effect["measure"])).all()
    assert its == []


def test_every_evidence_pack_of_the_roll_out_shows_it_and_the_monthly_report_lists_it(demo_home, demo_summary):
    (effect,) = demo_summary["rollout_effects"]
    packs = demo_home / "out" / "packs"
    for adopter in effect["areas"]:
        (html_path,) = sorted((packs / adopter["contract_id"]).glob("*/pack.html"))[-1:]
        html = html_path.read_text()
        assert "Roll-out across areas" in html, adopter
        assert f"joined a staggered roll-out from {adopter['start']}" in html
        assert "effect by months since each area started" in html and "two-by-two comparisons" in html
    for never in effect["never_treated"]:
        html = sorted((packs / f"TTG-{never}").glob("*/pack.html"))[-1].read_text()
        assert "Roll-out across areas" not in html, "an area outside the roll-out's pack does not show it"
    for adopter in effect["areas"]:
        html = sorted((demo_home / "out" / "reports" / adopter["area_code"]).glob("*/monthly.html"))[-1].read_text()
        assert "Staggered roll-out" in html and adopter["contract_id"] in html, adopter
    for never in effect["never_treated"]:
        html = sorted((demo_home / "out" / "reports" / never).glob("*/monthly.html"))[-1].read_text()
        assert "Staggered roll-out" not in html


def test_a_rerun_of_the_analysis_changes_no_roll_out_finding(writable_demo_home):
    from cjmonitor import pipeline

    settings = get_settings(writable_demo_home)

    def rows():
        return sorted((f.measure_code, f.cohort, f.estimate, f.ci_low, f.ci_high, f.parameters, f.input_hash,
                       str(f.created_at)) for f in _rollout_findings(settings))

    before = rows()
    summary = pipeline.analyse(settings)
    assert summary["staggered_did"] == 1
    assert rows() == before and len(before) == 1


ROLLOUT = """    variations:
      - date: 2025-04-01
        kind: renegotiation
        description: "Accommodation target raised to 85%"
        kpis: [{code: ttg_settled_accommodation, target: 0.85}]
      - date: 2025-06-01
        kind: rollout
        description: "Employment support starts in Dorset"
        kpi: ttg_ete_on_release
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(RegisterError) as caught:
        validate(parse_yaml_text(text, "register.yaml"))
    return [f"{p.where} {p.message}" for p in caught.value.problems]


def test_a_rollout_variation_is_valid_and_needs_its_kpi_once():
    old = ROLLOUT.split("      - date: 2025-06-01")[0]
    assert old in BASE
    validate(parse_yaml_text(BASE.replace(old, ROLLOUT), "register.yaml"))  # valid: no exception
    without_kpi = BASE.replace(old, ROLLOUT.replace("        kpi: ttg_ete_on_release\n", ""))
    (problem,) = [p for p in _problems(without_kpi) if "names the KPI it aims at" in p]
    assert problem.startswith("register.yaml:")
    twice = BASE.replace(old, ROLLOUT + ROLLOUT.split("kpis: [{code: ttg_settled_accommodation, target: 0.85}]\n")[1]
                         .replace("2025-06-01", "2025-09-01"))
    assert any("a second rollout aimed at ttg_ete_on_release" in p for p in _problems(twice))
