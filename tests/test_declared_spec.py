"""Declared local services: parsing, round trip, and what a bad declaration is told."""

from __future__ import annotations

import copy

import pytest

from contracts.declared import ServiceSpecError, parse_service, parse_services

WOMENS_CENTRE = {
    "id": "womens_centre",
    "name": "Women's centre",
    "return": {
        "type": "womens_referrals",
        "period_column": "referral_date",
        "unique": ["person_id", "referral_date"],
        "columns": [
            {"name": "contract_id", "type": "text", "required": True},
            {"name": "person_id", "type": "person_key", "required": True},
            {"name": "referral_date", "type": "date", "required": True},
            {"name": "first_seen_date", "type": "date", "not_before": "referral_date"},
            {"name": "outcome", "type": "text", "allowed": ["completed", "disengaged", "ongoing"]},
        ],
    },
    "kpis": [
        {"code": "wc_seen_5wd", "name": "Seen within 5 working days of referral", "direction": "higher",
         "denominator": {"all": True},
         "numerator": {"within_working_days": {"from": "referral_date", "to": "first_seen_date", "days": 5}}},
        {"code": "wc_completed", "name": "Referrals closed as completed", "direction": "higher",
         "denominator": {"column_in": {"column": "outcome", "values": ["completed", "disengaged"]}},
         "numerator": {"column_in": {"column": "outcome", "values": ["completed"]}}},
    ],
}


def problems_of(d: dict) -> dict[str, str]:
    with pytest.raises(ServiceSpecError) as caught:
        parse_service(d)
    return dict(caught.value.problems)


def test_the_issue_example_parses_and_round_trips_exactly():
    spec = parse_service(WOMENS_CENTRE)
    assert (spec.id, spec.name, spec.return_type) == ("womens_centre", "Women's centre", "womens_referrals")
    assert [k.code for k in spec.kpis] == ["wc_seen_5wd", "wc_completed"]
    assert [(k.direction, k.unit, k.kind) for k in spec.kpis] == [("higher", "percent", "proportion")] * 2
    assert spec.to_dict() == WOMENS_CENTRE
    assert parse_service(spec.to_dict()) == spec
    # The return spec is the one validation already uses for built-in returns.
    rs = spec.return_spec
    assert rs.return_type == "womens_referrals" and rs.key == ("person_id", "referral_date")
    assert rs.period_columns == ("referral_date",) and rs.order_rules == (("referral_date", "first_seen_date"),)
    assert rs.column("person_id").pseudonymise and rs.column("person_id").kind == "str"
    assert rs.column("outcome").allowed == ("completed", "disengaged", "ongoing")
    assert rs.column("first_seen_date").required is False and rs.column("referral_date").kind == "date"


def test_every_kind_of_kpi_round_trips():
    d = copy.deepcopy(WOMENS_CENTRE)
    d["description"] = "Referral, assessment and support for women in contact with the justice system."
    d["return"]["columns"].append({"name": "sessions", "type": "int", "min": 0, "max": 200, "description": "Sessions"})
    d["kpis"] += [
        {"code": "wc_days_to_seen", "name": "Median days to first appointment", "direction": "lower",
         "median_days": {"from": "referral_date", "to": "first_seen_date", "working_days": True},
         "denominator": {"not": {"column_in": {"column": "outcome", "values": ["disengaged"]}}}},
        {"code": "wc_starts", "name": "Referrals received", "direction": "higher", "volume": {"all": True}},
        {"code": "wc_custom", "name": "Analyst's measure", "direction": "higher", "unit": "percent of women",
         "sql": "kpis/wc_custom.sql", "description": "See the SQL file."},
        {"code": "wc_mixed", "name": "Seen in 10 days and completed or ongoing", "direction": "higher",
         "denominator": {"column_not_null": "outcome"},
         "numerator": {"and": [{"within_days": {"from": "referral_date", "to": "first_seen_date", "days": 10}},
                               {"or": [{"column_in": {"column": "outcome", "values": ["completed"]}},
                                       {"column_in": {"column": "outcome", "values": ["ongoing"]}}]}]}},
    ]
    spec = parse_service(d)
    assert spec.to_dict() == d and parse_service(spec.to_dict()) == spec
    kinds = {k.code: (k.kind, k.unit) for k in spec.kpis}
    assert kinds["wc_days_to_seen"] == ("median_days", "days") and kinds["wc_starts"] == ("volume", "count")
    assert kinds["wc_custom"] == ("sql", "percent of women")
    assert spec.kpi("wc_days_to_seen").definition == {
        "median_days": {"from": "referral_date", "to": "first_seen_date", "working_days": True},
        "denominator": {"not": {"column_in": {"column": "outcome", "values": ["disengaged"]}}}}


def test_a_numerator_naming_a_missing_column_is_pointed_at():
    d = copy.deepcopy(WOMENS_CENTRE)
    d["kpis"][0]["numerator"]["within_working_days"]["to"] = "first_seen"
    problems = problems_of(d)
    key = "services[0].kpis[0].numerator.within_working_days.to"
    assert key in problems and "no column 'first_seen'" in problems[key] and "first_seen_date" in problems[key]


def test_a_date_rule_between_a_date_and_a_text_column_is_refused():
    d = copy.deepcopy(WOMENS_CENTRE)
    d["kpis"][0]["numerator"]["within_working_days"]["to"] = "outcome"
    problems = problems_of(d)
    message = problems["services[0].kpis[0].numerator.within_working_days.to"]
    assert "'outcome' is a text column" in message and "date column" in message


def test_column_checks():
    d = copy.deepcopy(WOMENS_CENTRE)
    cols = d["return"]["columns"]
    cols[3]["type"] = "timestamp"
    cols[4]["allowed"] = "completed"
    cols.append({"name": "order", "type": "text"})
    cols.append({"name": "Outcome Notes", "type": "text"})
    cols.append({"name": "outcome", "type": "text"})
    problems = problems_of(d)
    assert "not one of text, person_key, date" in problems["services[0].return.columns[3].type"]
    assert "non-empty list" in problems["services[0].return.columns[4].allowed"]
    assert "reserved" in problems["services[0].return.columns[5].name"]
    assert "must start with a letter" in problems["services[0].return.columns[6].name"]
    assert "declared twice" in problems["services[0].return.columns[7].name"]


def test_unique_and_period_column_must_name_real_columns():
    d = copy.deepcopy(WOMENS_CENTRE)
    d["return"]["unique"] = ["person_id", "referal_date"]
    d["return"]["period_column"] = "outcome"
    problems = problems_of(d)
    assert "no column 'referal_date'" in problems["services[0].return.unique[1]"]
    assert "date column with required: true" in problems["services[0].return.period_column"]
    d["return"]["period_column"] = "first_seen_date"  # a date, but optional
    assert "optional date column" in problems_of(d)["services[0].return.period_column"]


def test_kpi_vocabulary_and_codes():
    d = copy.deepcopy(WOMENS_CENTRE)
    d["kpis"][1]["code"] = "wc_seen_5wd"
    d["kpis"][0]["direction"] = "up"
    d["kpis"][1]["numerator"] = {"column_in": {"column": "outcome", "values": ["complete"]}}
    d["kpis"].append({"code": "wc_x", "name": "x", "direction": "higher", "denominator": {"everything": True},
                      "numerator": {"all": True, "not": {"all": True}}})
    d["kpis"].append({"code": "ttg_plan_5wd", "name": "x", "direction": "higher", "volume": {"all": True}})
    d["kpis"].append({"code": "wc_y", "name": "y", "direction": "lower"})
    problems = problems_of(d)
    assert "also used by kpis[0]" in problems["services[0].kpis[1].code"]
    assert "higher or lower" in problems["services[0].kpis[0].direction"]
    assert "'complete' can never occur" in problems["services[0].kpis[1].numerator.column_in.values"]
    assert "unknown condition 'everything'" in problems["services[0].kpis[2].denominator.everything"]
    assert "exactly one of" in problems["services[0].kpis[2].numerator"]
    assert "built-in KPI code" in problems["services[0].kpis[3].code"]
    assert "exactly one derivation" in problems["services[0].kpis[4]"]


def test_the_contract_id_column_and_built_in_names():
    d = copy.deepcopy(WOMENS_CENTRE)
    d["id"] = "ttg"
    d["return"]["type"] = "ttg_resettlement"
    d["return"]["columns"] = d["return"]["columns"][1:]
    problems = problems_of(d)
    assert "built-in service" in problems["services[0].id"]
    assert "built-in return type" in problems["services[0].return.type"]
    assert "needs a contract_id column" in problems["services[0].return.columns"]


def test_services_may_not_share_ids_types_or_codes():
    other = copy.deepcopy(WOMENS_CENTRE)
    other["id"] = "iom"
    with pytest.raises(ServiceSpecError) as caught:
        parse_services([WOMENS_CENTRE, other])
    messages = [m for _, m in caught.value.problems]
    assert any("return type 'womens_referrals' is also used by services[0]" in m for m in messages)
    assert any("KPI code 'wc_seen_5wd' is also used by services[0]" in m for m in messages)


def test_save_and_load_services(tmp_path):
    from sqlalchemy import inspect
    from sqlmodel import select

    from cjmonitor import pipeline
    from cjmonitor.db import session_scope
    from cjmonitor.settings import get_settings
    from contracts.declared import load_services, save_services
    from contracts.models import Measure

    settings = get_settings(tmp_path)
    pipeline.upgrade_db(settings)
    spec = parse_service(WOMENS_CENTRE)
    with session_scope(settings) as session:
        save_services(session, [spec])
        save_services(session, [spec])  # idempotent
    with session_scope(settings) as session:
        assert load_services(session) == {"womens_centre": spec}
        measure = session.get(Measure, "wc_completed")
        assert (measure.service_type, measure.direction, measure.unit) == ("womens_centre", "higher", "percent")
        assert len(session.exec(select(Measure).where(Measure.service_type == "womens_centre")).all()) == 2
        columns = {c["name"] for c in inspect(session.connection()).get_columns("declared_womens_referrals")}
    assert {"submission_id", "contract_id", "period", "person_key", "person_id", "outcome",
            "cd__first_seen_date__referral_date", "wd__first_seen_date__referral_date"} <= columns
    # A widened spec adds its columns to the same table.
    wider = copy.deepcopy(WOMENS_CENTRE)
    wider["return"]["columns"].append({"name": "closed_date", "type": "date"})
    with session_scope(settings) as session:
        save_services(session, [parse_service(wider)])
        columns = {c["name"] for c in inspect(session.connection()).get_columns("declared_womens_referrals")}
        assert load_services(session)["womens_centre"].column("closed_date").type == "date"
    assert {"closed_date", "cd__closed_date__referral_date", "wd__closed_date__first_seen_date"} <= columns

    # A column's type cannot change under stored rows.
    retyped = copy.deepcopy(wider)
    retyped["return"]["columns"][4]["type"] = "int"
    del retyped["return"]["columns"][4]["allowed"]
    del retyped["kpis"][1]
    with pytest.raises(ServiceSpecError, match="column 'outcome' is stored as text, not int"):
        with session_scope(settings) as session:
            save_services(session, [parse_service(retyped)])
