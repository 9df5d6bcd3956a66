"""Incremental derive and judge: unchanged months and series are skipped, changed ones recomputed exactly, and the
result is always the full recomputation's, table against table.

One world of 5 areas and 24 months, loaded without its last month and without one reoffending cohort; then, step
by step on the same home: a rerun (nothing computed), the new month (that month, and the series with a value in
it), a resubmission of an old month (that month, and the series of its contracts that changed), a late cohort
(its quarter's month), a contract variation (no month; that contract's series), a period-scoped forced run.
After each step the KPI values and judgements are compared with the legacy full recomputation
(``derive_kpis`` over every month, ``judge_all``) run on a copy of the database.
"""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from click.testing import CliRunner
from sqlmodel import select

from cjmonitor import pipeline
from cjmonitor.cli import cli
from cjmonitor.db import session_scope
from cjmonitor.demo import build_world, load_world
from cjmonitor.settings import get_settings
from contracts.judge import judge_all
from contracts.kpis import derive_kpis
from contracts.models import InputChecksum, Judgement, KpiValue
from contracts.returns import RETURN_TYPES, SYSTEM_RETURN_TYPE, parse_file_name
from tests.conftest import copy_world, demo_db_copy
from tests.db_checksums import table_checksums, table_rows

SEED, AREAS, MONTHS = 9, 5, 24
LAST = "2024-12"  # the world's last month (start 2023-01)
ALL_TYPES = (*RETURN_TYPES, SYSTEM_RETURN_TYPE)


@pytest.fixture(scope="module")
def world(generated_world, tmp_path_factory):
    """A home with the world's register and every return but the last month's and the first reoffending cohort's."""
    home = tmp_path_factory.mktemp("incremental")
    settings = get_settings(home)
    pipeline.upgrade_db(settings)
    load_world(settings, build_world(seed=SEED, areas=AREAS, months=MONTHS))
    staging = home / "staging"
    copy_world(generated_world(seed=SEED, areas=AREAS, months=MONTHS), staging)
    files = sorted(p for p in staging.iterdir() if p.is_file())
    parsed = {p: parse_file_name(p.name, ALL_TYPES) for p in files}
    last = [p for p in files if parsed[p] is not None and parsed[p].period == LAST]
    cohorts = sorted(p for p in files if parsed[p] is not None and parsed[p].return_type == "reoffending_cohort")
    assert last and cohorts, "the world needs a last month and a reoffending cohort"
    held = {*last, cohorts[0]}
    summary = pipeline.ingest(settings, paths=[p for p in files if p not in held])
    assert summary.accepted > 100
    return {"settings": settings, "last": last, "cohort": cohorts[0], "cohort_period": parsed[cohorts[0]].period,
            "staging": staging}


def _full_recompute(settings, tmp_path) -> tuple[list, list]:
    """KPI values and judgements as the legacy full recomputation makes them, on a copy of the database."""
    copy = get_settings(tmp_path / "full")
    demo_db_copy(settings.home, copy.home)
    with session_scope(copy) as session:
        derive_kpis(session, home=settings.home, alpha=settings.alpha)
        judge_all(session, settings.alpha)
    return table_rows(copy, "kpi_value"), table_rows(copy, "judgement")


def _assert_same_as_full(settings, tmp_path) -> None:
    values, judgements = _full_recompute(settings, tmp_path)
    assert table_rows(settings, "kpi_value") == values
    assert table_rows(settings, "judgement") == judgements


def _series_with_values_in(settings, period: str) -> set[str]:
    with session_scope(settings) as session:
        return {f"{c}|{m}" for c, m in session.exec(select(KpiValue.contract_id, KpiValue.measure_code)
                                                   .where(KpiValue.period == period)).all()}


def _run_both(settings):
    return pipeline.derive(settings), pipeline.judge(settings)


def test_01_first_run_computes_every_month_and_series(world, tmp_path):
    settings = world["settings"]
    derived, judged = _run_both(settings)
    with session_scope(settings) as session:
        months = set(session.exec(select(KpiValue.period).distinct()).all())
        series = set(session.exec(select(KpiValue.contract_id, KpiValue.measure_code).distinct()).all())
        checksums = session.exec(select(InputChecksum)).all()
    assert (derived.computed, derived.skipped) == (len(months), 0) and len(months) == MONTHS - 1
    assert (judged.computed, judged.skipped) == (len(series), 0)
    assert derived.rows_written == derived.stored > 0 and judged.rows_written == judged.stored > 0
    assert {c.scope for c in checksums if c.step == "derive"} == months
    assert sum(c.rows for c in checksums if c.step == "derive") == derived.stored
    assert sum(c.rows for c in checksums if c.step == "judge") == judged.stored
    assert "computed 23 months, skipped 0 (inputs unchanged)" in derived.summary()
    _assert_same_as_full(settings, tmp_path)


def test_02_a_rerun_computes_nothing_and_changes_no_table(world):
    settings = world["settings"]
    before = table_checksums(settings)
    derived, judged = _run_both(settings)
    assert (derived.computed, derived.rows_written, derived.rows_deleted) == (0, 0, 0)
    assert (judged.computed, judged.rows_written, judged.rows_deleted) == (0, 0, 0)
    assert derived.skipped == MONTHS - 1 and judged.skipped > 0
    assert "computed 0 months, skipped 23 (inputs unchanged)" in derived.summary()
    assert table_checksums(settings) == before


def test_03_the_new_month_computes_that_month_and_the_series_with_a_value_in_it(world, tmp_path):
    settings = world["settings"]
    with session_scope(settings) as session:
        judged_before = {(j.contract_id, j.measure_code, j.period): j.spc_signals
                         for j in session.exec(select(Judgement)).all()}
    assert pipeline.ingest(settings, paths=world["last"]).accepted == len(world["last"])
    derived, judged = _run_both(settings)
    assert derived.computed_scopes == [LAST] and derived.skipped == MONTHS - 1
    assert set(judged.computed_scopes) == _series_with_values_in(settings, LAST)
    assert judged.skipped > 0  # e.g. the quarterly reoffending series have no December value
    # The series are judged whole, but only the rows that changed are rewritten: the new month's, and earlier
    # months whose SPC limits or signals moved with the new point.
    with session_scope(settings) as session:
        now = {(j.contract_id, j.measure_code, j.period): j.spc_signals for j in session.exec(select(Judgement)).all()}
    new_rows = {k for k in now if k not in judged_before}
    assert judged.rows_written >= len(new_rows) > 0
    assert judged.rows_written - len(new_rows) == judged.rows_deleted
    assert judged.rows_written < judged.stored / 2
    _assert_same_as_full(settings, tmp_path)


def _resubmit(settings, world, period: str) -> str:
    """A second version of one provider's return for ``period`` with one record's outcome changed."""
    originals = sorted(p for p in world["staging"].iterdir()
                       if (n := parse_file_name(p.name, ALL_TYPES)) is not None and n.period == period and n.return_type == "crc_caseload")
    source = originals[0]
    rows = list(csv.DictReader(io.StringIO(source.read_text())))
    changed = next(i for i, r in enumerate(rows) if r.get("outcome") == "completed" and r.get("end_date", "").startswith(period))
    rows[changed]["outcome"] = "revoked_breach"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    target = settings.drop_dir / source.name.replace(".csv", "_v2.csv")
    settings.drop_dir.mkdir(parents=True, exist_ok=True)
    target.write_text(out.getvalue())
    outcome = pipeline.ingest(settings, paths=[target]).outcomes[0]
    assert outcome["status"] == "accepted", outcome
    return parse_file_name(source.name).provider_id


def test_04_a_resubmission_recomputes_exactly_its_month(world, tmp_path):
    settings = world["settings"]
    period = "2024-03"
    with session_scope(settings) as session:
        before = {(v.contract_id, v.measure_code): (v.numerator, v.denominator)
                  for v in session.exec(select(KpiValue).where(KpiValue.period == period)).all()}
    _resubmit(settings, world, period)
    derived, judged = _run_both(settings)
    assert derived.computed_scopes == [period] and derived.skipped == MONTHS - 1
    with session_scope(settings) as session:
        after = {(v.contract_id, v.measure_code): (v.numerator, v.denominator)
                 for v in session.exec(select(KpiValue).where(KpiValue.period == period)).all()}
    moved = {f"{c}|{m}" for (c, m), nd in after.items() if before.get((c, m)) != nd}
    assert moved, "the resubmission changed no KPI value: the test would prove nothing"
    assert set(judged.computed_scopes) == moved  # the series whose values changed, and no other
    _assert_same_as_full(settings, tmp_path)


def _findings(settings) -> list:
    """The finding rows without their creation times."""
    from sqlmodel import SQLModel

    names = [c.name for c in SQLModel.metadata.tables["finding"].columns if c.name != "id"]
    return sorted((tuple(v for n, v in zip(names, row, strict=True) if n != "created_at")
                   for row in table_rows(settings, "finding")), key=repr)


def _full_cohort_findings(settings, tmp_path) -> list:
    from contracts.analysis import cohort_findings

    copy = get_settings(tmp_path / "full-findings")
    demo_db_copy(settings.home, copy.home)
    with session_scope(copy) as session:
        cohort_findings(session, settings.alpha)
    return _findings(copy)


def test_045_analyse_runs_comparison_groups_once_per_cohort_change(world, tmp_path):
    settings = world["settings"]
    first = pipeline.analyse(settings)
    assert first["comparison_group"] > 0 and first["comparison_group_contracts_skipped"] == 0
    before = table_checksums(settings)
    again = pipeline.analyse(settings)
    assert again["comparison_group"] == 0 and again["comparison_group_contracts_skipped"] > 0
    assert table_checksums(settings) == before
    assert _findings(settings) == _full_cohort_findings(settings, tmp_path)


def test_05_a_late_reoffending_cohort_recomputes_its_quarter(world, tmp_path):
    settings = world["settings"]
    assert pipeline.ingest(settings, paths=[world["cohort"]]).accepted == 1
    derived, judged = _run_both(settings)
    assert derived.computed_scopes == [world["cohort_period"]]
    assert judged.computed and all(s.endswith("|reo_binary_12m") for s in judged.computed_scopes)
    _assert_same_as_full(settings, tmp_path)
    # The comparison groups of the cohort's contracts, and only theirs, are matched again.
    from contracts.incremental import cohort_changed

    cohort_contracts = {r["contract_id"] for r in csv.DictReader(io.StringIO(world["cohort"].read_text()))}
    with session_scope(settings) as session:
        _findings_made, counts = cohort_changed(session, settings.alpha)
    assert set(counts.computed_scopes) == cohort_contracts and counts.skipped > 0
    assert _findings(settings) == _full_cohort_findings(settings, tmp_path)


def test_06_a_variation_rejudges_that_contracts_series_and_derives_nothing(world, tmp_path):
    from contracts.variations import record_variation

    settings = world["settings"]
    with session_scope(settings) as session:
        contract_id = session.exec(select(KpiValue.contract_id).order_by(KpiValue.contract_id)).first()
        record_variation(session, contract_id, date(2024, 1, 1), "service_redesign", "Service redesigned")
    derived, judged = _run_both(settings)
    assert derived.computed == 0
    assert judged.computed and {s.split("|")[0] for s in judged.computed_scopes} == {contract_id}
    _assert_same_as_full(settings, tmp_path)


def test_07_a_scoped_forced_run_recomputes_its_months_and_changes_nothing(world):
    settings = world["settings"]
    before = table_checksums(settings)
    derived = pipeline.derive(settings, "2023-05", "2023-06", force=True)
    assert derived.computed_scopes == ["2023-05", "2023-06"] and derived.skipped == 0
    assert derived.rows_written == derived.rows_deleted > 0
    judged = pipeline.judge(settings, "2023-05", "2023-05")
    assert judged.computed == 0 and judged.skipped == len(_series_with_values_in(settings, "2023-05"))
    assert table_checksums(settings) == before


def test_08_changed_definitions_recompute_every_month(world, monkeypatch, tmp_path):
    """A change in the KPI definitions (here: alpha, which declared KPIs' intervals use) recomputes every month."""
    settings = world["settings"]
    monkeypatch.setenv("CJMONITOR_ALPHA", "0.1")
    changed = get_settings(settings.home)
    assert changed.alpha == 0.1
    derived, judged = _run_both(changed)
    assert derived.computed == MONTHS and derived.skipped == 0
    assert judged.skipped == 0 and judged.computed > 0
    monkeypatch.delenv("CJMONITOR_ALPHA")
    derived, judged = _run_both(get_settings(settings.home))
    assert derived.computed == MONTHS and judged.skipped == 0
    _assert_same_as_full(settings, tmp_path)


def test_09_cli_derive_and_judge_by_period(world):
    home = str(world["settings"].home)
    runner = CliRunner()
    result = runner.invoke(cli, ["derive", "--home", home, "--period", "2024-03"])
    assert result.exit_code == 0, result.output
    assert "derive in 2024-03: computed 0 months, skipped 1 (inputs unchanged)" in result.output
    result = runner.invoke(cli, ["judge", "--home", home, "--from", "2024-01", "--to", "2024-02", "--json"])
    assert result.exit_code == 0, result.output
    assert '"computed": 0' in result.output
    both = runner.invoke(cli, ["derive", "--home", home, "--period", "2024-03", "--from", "2024-01"])
    assert both.exit_code == 2 and "not both" in both.output
    empty = runner.invoke(cli, ["derive", "--home", home, "--from", "2024-05", "--to", "2024-01"])
    assert empty.exit_code != 0 and "--from must not be after --to" in empty.output
