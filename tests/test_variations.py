"""Contract variations as data: restated targets close the old terms, judgement follows the terms in force."""

from __future__ import annotations

import json
from datetime import date

import pytest
from click.testing import CliRunner
from sqlmodel import select

from cjmonitor import pipeline
from cjmonitor.cli import cli
from cjmonitor.db import session_scope
from cjmonitor.demo import build_world, load_world
from cjmonitor.settings import get_settings
from contracts.errors import ContractsError
from contracts.models import ContractVariation, Judgement, KpiValue, Target
from contracts.variations import NewTerms, record_variation

TTG, MEASURE = "TTG-E23000014", "ttg_settled_accommodation"  # not in the demo roll-out of seed 1 (its contracts carry a rollout variation)


@pytest.fixture
def settings(tmp_path):
    settings = get_settings(tmp_path)
    pipeline.upgrade_db(settings)
    load_world(settings, build_world(seed=1, areas=5, months=24))  # contracts start 2023-01
    return settings


def _terms(session):
    return [(t.valid_from, t.valid_to, t.value, t.tolerance) for t in session.exec(
        select(Target).where(Target.contract_id == TTG, Target.measure_code == MEASURE).order_by(Target.valid_from)).all()]


def test_a_restated_target_closes_the_old_terms_and_judgement_follows(settings):
    with session_scope(settings) as session:
        result = record_variation(session, TTG, date(2024, 7, 1), "renegotiation", "Target restated to 75%",
                                  measure_code=MEASURE, terms=NewTerms(target=0.75))
    assert result["terms"]["replaces"]["value"] == 0.85 and result["terms"]["tolerance"] == 0.05  # kept
    with session_scope(settings) as session:
        assert _terms(session) == [(date(2023, 1, 1), date(2024, 6, 30), 0.85, 0.05), (date(2024, 7, 1), None, 0.75, 0.05)]
        # The same variation again changes nothing (idempotent), a new tolerance updates the same row.
        record_variation(session, TTG, date(2024, 7, 1), "renegotiation", "Target restated to 75%",
                         measure_code=MEASURE, terms=NewTerms(target=0.75))
    with session_scope(settings) as session:
        assert len(_terms(session)) == 2
        assert len(session.exec(select(ContractVariation).where(ContractVariation.contract_id == TTG)).all()) == 1
        # 80 of 100 in June (old target 85%: Amber) and in July (new target 75%: Green).
        for period in ("2024-06", "2024-07"):
            session.add(KpiValue(contract_id=TTG, measure_code=MEASURE, period=period, numerator=80, denominator=100,
                                 value=0.8, source="derived"))
    pipeline.judge(settings)
    with session_scope(settings) as session:
        judged = {j.period: j for j in session.exec(select(Judgement).where(Judgement.contract_id == TTG)).all()}
    assert (judged["2024-06"].target, judged["2024-06"].rag) == (0.85, "Amber")
    assert (judged["2024-07"].target, judged["2024-07"].rag) == (0.75, "Green")


@pytest.mark.parametrize("kwargs, words", [
    ({"effective": date(2024, 7, 15)}, "first of a month"),
    ({"effective": date(2022, 7, 1)}, "must come after it"),
    ({"measure_code": "crc_plan_15wd", "terms": NewTerms(target=0.9)}, "is not a KPI of TTG-E23000014"),
    ({"measure_code": None, "terms": NewTerms(target=0.9)}, "need --measure"),
    ({"measure_code": MEASURE, "terms": NewTerms(target=85)}, "between 0 and 1"),
    ({"contract_id": "NOPE"}, "no contract 'NOPE'"),
])
def test_bad_variations_are_refused_and_nothing_is_written(settings, kwargs, words):
    call = {"contract_id": TTG, "effective": date(2024, 7, 1), "measure_code": MEASURE, "terms": NewTerms(target=0.8), **kwargs}
    with pytest.raises(ContractsError, match=words), session_scope(settings) as session:
        record_variation(session, call["contract_id"], call["effective"], "renegotiation", "x",
                         measure_code=call["measure_code"], terms=call["terms"])
    with session_scope(settings) as session:
        assert not session.exec(select(ContractVariation).where(ContractVariation.contract_id == TTG)).all()
        assert len(_terms(session)) == 1


def test_variations_must_be_recorded_in_date_order(settings):
    with session_scope(settings) as session:
        record_variation(session, TTG, date(2024, 7, 1), "renegotiation", "x", measure_code=MEASURE, terms=NewTerms(0.8))
    with pytest.raises(ContractsError, match="record variations in date order"), session_scope(settings) as session:
        record_variation(session, TTG, date(2024, 3, 1), "other", "y", measure_code=MEASURE, terms=NewTerms(0.7))
    with session_scope(settings) as session:
        mine = select(ContractVariation).where(ContractVariation.contract_id == TTG)
        assert len(session.exec(mine).all()) == 1  # the refused one left nothing behind


def test_vary_and_targets_commands(settings):
    runner = CliRunner()
    home = ["--home", str(settings.home)]
    result = runner.invoke(cli, ["vary", *home, "--contract", TTG, "--from", "2024-07", "--measure", MEASURE,
                                 "--target", "0.75", "--credit-pct", "3", "--description", "Restated"])
    assert result.exit_code == 0, result.output
    assert "target 75% (was 85%)" in result.output and "service credit 3%" in result.output
    history = json.loads(runner.invoke(cli, ["targets", *home, "--contract", TTG, "--json"]).output)
    mine = [t for t in history["targets"] if t["measure_code"] == MEASURE]
    assert [(t["valid_to"], t["target"]) for t in mine] == [("2024-06-30", 0.85), (None, 0.75)]
    assert history["variations"][0]["description"] == "Restated"
    bad = runner.invoke(cli, ["vary", *home, "--contract", TTG, "--from", "2024-13", "--description", "x"])
    assert bad.exit_code == 2 and "YYYY-MM" in bad.output
