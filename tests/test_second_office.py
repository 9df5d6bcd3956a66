"""A second office from nothing but the README ("Set up your own office"), as a new user would (#15).

`cjmonitor init` a fresh home, write a register (a women's centre declared as a local service, and a
through-the-gate contract under the CRC Schedule 9 framework), `register check`, `db upgrade`, `register
apply`, drop two months of synthetic returns in `var/drop`, `cjmonitor run`, then the monthly report and the
evidence pack. Every KPI is checked against a count made here, by hand, from the rows this test wrote, with
its own list of the 2020 England and Wales bank holidays (Good Friday 10 April, Easter Monday 13 April, VE
Day 8 May, spring 25 May), not with cjmonitor's working-day code.
"""

from __future__ import annotations

import csv
import json
import random
import re
import statistics
from datetime import date, timedelta
from html import unescape
from pathlib import Path

import openpyxl
import pytest
import yaml
from click.testing import CliRunner

from cjmonitor.cli import cli

AREA = "E23000039"
WC, TTG = "DOR-WC-2020", "DOR-TTG-2020"
PERIODS = ("2020-04", "2020-05")
BANK_HOLIDAYS_2020 = {date(2020, 1, 1), date(2020, 4, 10), date(2020, 4, 13), date(2020, 5, 8), date(2020, 5, 25),
                      date(2020, 8, 31), date(2020, 12, 25), date(2020, 12, 28)}

# The register as a contract manager writes it from the README's table of keys and the init template.
REGISTER = """\
office:
  name: "Office of the Police and Crime Commissioner for Dorset"
  areas: [E23000039]

providers:
  - {id: harbour-womens-centre, name: "Harbour Women's Centre CIC", return_mode: person}
  - {id: wessex-resettlement, name: "Wessex Resettlement Ltd", kind: private}

services:
  - id: womens_centre
    name: "Women's centre"
    return:
      type: womens_referrals
      period_column: referral_date
      unique: [person_id, referral_date]
      columns:
        - {name: contract_id, type: text, required: true}
        - {name: person_id, type: person_key, required: true}
        - {name: referral_date, type: date, required: true}
        - {name: first_seen_date, type: date, not_before: referral_date}
        - {name: outcome, type: text, allowed: [completed, disengaged, ongoing]}
    kpis:
      - code: wc_seen_5wd
        name: "Seen within 5 working days of referral"
        direction: higher
        denominator: {all: true}
        numerator: {within_working_days: {from: referral_date, to: first_seen_date, days: 5}}
      - code: wc_completed
        name: "Referrals closed as completed"
        direction: higher
        denominator: {column_in: {column: outcome, values: [completed, disengaged]}}
        numerator: {column_in: {column: outcome, values: [completed]}}
      - code: wc_days_to_seen
        name: "Median days from referral to first seen"
        direction: lower
        median_days: {from: referral_date, to: first_seen_date}
      - code: wc_referrals
        name: "Referrals received"
        direction: higher
        volume: {all: true}

contracts:
  - id: DOR-WC-2020
    name: "Women's centre: Dorset"
    area: E23000039
    provider: harbour-womens-centre
    service: womens_centre
    start: 2020-04-01
    end: 2023-03-31
    annual_value_gbp: 420000
    return_due_day: 10
    kpis:
      - {code: wc_seen_5wd, target: 0.85, tolerance: 0.05, min_volume: 20, service_credit_pct: 1.0}
      - {code: wc_completed, target: 0.60, tolerance: 0.05, min_volume: 10}
      - {code: wc_days_to_seen, target: 4, tolerance: 1, min_volume: 10}    # days
      - {code: wc_referrals, target: 30, tolerance: 5}                      # referrals a month
    payment: {service_credit_cap_pct: 10}
    variations: []
  - id: DOR-TTG-2020
    name: "Through the gate: Dorset"
    area: E23000039
    provider: wessex-resettlement
    service: ttg
    framework: crc_sch9_2014
    start: 2020-04-01
    end: 2021-03-31
    annual_value_gbp: 250000
    kpis:
      - {code: ttg_plan_5wd, target: 0.80, tolerance: 0.05, min_volume: 10}
      - {code: ttg_settled_accommodation, target: 0.70, tolerance: 0.05, min_volume: 5}

recipients:
  - {email: commissioning@dorset-pcc.example.org, name: "Commissioning team", scopes: ["area:E23000039"]}
"""

# Referrals placed on purpose across the bank holidays: each is within 5 working days only because the
# bank holidays do not count (without them: 7, 7 and 6 weekdays).
HOLIDAY_CASES = {
    "2020-04": [(date(2020, 4, 8), date(2020, 4, 17)), (date(2020, 4, 9), date(2020, 4, 20))],
    "2020-05": [(date(2020, 5, 7), date(2020, 5, 15))],
}


def working_days(start: date, end: date, holidays=BANK_HOLIDAYS_2020) -> int:
    """Weekdays in [start, end) that are not bank holidays, counted one day at a time."""
    days, day = 0, start
    while day < end:
        days += day.weekday() < 5 and day not in holidays
        day += timedelta(days=1)
    return days


def womens_rows(period: str, seed: int) -> list[dict]:
    rng = random.Random(seed)
    year, month = map(int, period.split("-"))
    pairs = [*HOLIDAY_CASES[period]]
    while len(pairs) < 32:
        referral = date(year, month, rng.randint(1, 28))
        pairs.append((referral, None if rng.random() < 0.1 else referral + timedelta(days=rng.randint(0, 12))))
    return [{"contract_id": WC, "person_id": f"WC-{period}-{i:03d}", "referral_date": referral.isoformat(),
             "first_seen_date": seen.isoformat() if seen else "",
             "outcome": rng.choice(["completed", "completed", "disengaged", "ongoing", ""])}
            for i, (referral, seen) in enumerate(pairs)]


def ttg_rows(period: str, seed: int) -> list[dict]:
    rng = random.Random(seed)
    year, month = map(int, period.split("-"))
    rows = []
    for i in range(36):
        reception = date(year, month, rng.randint(1, 26))
        plan = None if rng.random() < 0.15 else reception + timedelta(days=rng.randint(0, 10))
        release = None if rng.random() < 0.4 else reception + timedelta(days=rng.randint(0, 3))
        rows.append({"contract_id": TTG, "area_code": AREA, "episode_ref": f"EP-{period}-{i:03d}",
                     "person_id": f"TG-{period}-{i:03d}", "reception_date": reception.isoformat(),
                     "resettlement_plan_date": plan.isoformat() if plan else "",
                     "release_date": release.isoformat() if release else "",
                     "accommodation_first_night": rng.choice(["settled", "settled", "unsettled", "homeless", "unknown"])
                     if release else "",
                     "ete_on_release": rng.choice(["Y", "N"]) if release else "",
                     "age_band": rng.choice(["18-20", "21-24", "25-34", "35-49", "50+"]), "sex": rng.choice(["M", "F"])})
    return rows


def _d(text: str) -> date | None:
    return date.fromisoformat(text) if text else None


def hand_counts(wc: list[dict], ttg: list[dict]) -> dict[str, dict]:
    """(numerator, denominator, value) per KPI code, counted from the rows as written."""
    seen = [(_d(r["referral_date"]), _d(r["first_seen_date"])) for r in wc]
    within = sum(s is not None and 0 <= working_days(f, s) <= 5 for f, s in seen)
    closed = [r["outcome"] for r in wc if r["outcome"] in ("completed", "disengaged")]
    days = [(s - f).days for f, s in seen if s is not None]
    plans = [(_d(r["reception_date"]), _d(r["resettlement_plan_date"])) for r in ttg]
    planned = sum(p is not None and working_days(f, p) <= 5 for f, p in plans)
    releases = [r["accommodation_first_night"] for r in ttg if r["release_date"]]
    return {
        "wc_seen_5wd": {"numerator": within, "denominator": len(wc), "value": within / len(wc)},
        "wc_completed": {"numerator": closed.count("completed"), "denominator": len(closed),
                         "value": closed.count("completed") / len(closed)},
        "wc_days_to_seen": {"numerator": len(days), "value": float(statistics.median(days))},
        "wc_referrals": {"numerator": len(wc), "value": float(len(wc))},
        "ttg_plan_5wd": {"numerator": planned, "denominator": len(ttg), "value": planned / len(ttg)},
        "ttg_settled_accommodation": {"numerator": releases.count("settled"), "denominator": len(releases),
                                      "value": releases.count("settled") / len(releases)},
    }


def _write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def cjmonitor(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == code, f"cjmonitor {' '.join(map(str, args))} -> {result.exit_code}:\n{result.output}"
    return result.output


def spc_footnote(text: str) -> str:
    """The scorecard's SPC footnote: which charts it draws."""
    found = re.search(r"SPC \(NHS Making Data Count\): (.*?), limits recalculated", text)
    assert found, "the scorecard has its SPC footnote"
    return found.group(1)


def expected_spc_footnote(home: Path, contract_id: str, period: str) -> str:
    """The footnote the scorecard's view implies: each chart kind it holds, with how many KPIs use it."""
    from cjmonitor.db import session_scope
    from cjmonitor.settings import get_settings
    from outcomes.spc import CHART_NAMES, CHARTS
    from reports.views import build_scorecard_view

    with session_scope(get_settings(home)) as session:
        kinds = [c.chart for c in build_scorecard_view(session, contract_id, period, 0.05).charts.values()
                 if c is not None]
    if not kinds:
        return "no KPI has enough months for a chart yet"
    named = ", ".join(f"{CHART_NAMES[k]} ({kinds.count(k)} KPI{'' if kinds.count(k) == 1 else 's'})"
                      for k in CHARTS if k in kinds)
    return f"{named} of the monthly figures (each KPI's table says which chart and why: a p-chart, or Laney's p′ for large volumes, for a rate; XmR for a measure without a denominator; a run chart below the minimum number of months)"


def page_text(path: Path) -> str:
    html = path.read_text()
    html = re.sub(r"<(svg|style|script)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


@pytest.fixture(scope="module")
def office(tmp_path_factory) -> dict:
    """The README's steps, in order, in a fresh home."""
    home = tmp_path_factory.mktemp("second-office") / "dorset"
    out = cjmonitor("init", home)
    assert "register check" in out and (home / "register.yaml").exists() and (home / "sources.toml").exists()
    # README.txt gives the next commands; the user follows them with their own register in place of the example.
    readme = (home / "README.txt").read_text()
    assert "cjmonitor register check" in readme and "cjmonitor db upgrade" in readme and "cjmonitor run" in readme
    assert f"{home}/var/drop" in readme  # where the returns go, with nothing to configure
    register = home / "register.yaml"
    register.write_text(REGISTER)
    assert "valid" in cjmonitor("register", "check", register)
    cjmonitor("db", "upgrade", "--home", home)
    cjmonitor("register", "apply", register, "--home", home, "--dry-run")
    applied = cjmonitor("register", "apply", register, "--home", home)
    assert f"+ contract {WC}" in applied and f"+ contract {TTG}" in applied
    rows = {}
    for seed, period in enumerate(PERIODS, start=1):
        rows[(WC, period)] = womens_rows(period, seed)
        rows[(TTG, period)] = ttg_rows(period, 100 + seed)
        _write_csv(home / "var" / "drop" / f"harbour-womens-centre_womens_referrals_{period}.csv", rows[(WC, period)])
        _write_csv(home / "var" / "drop" / f"wessex-resettlement_ttg_resettlement_{period}.csv", rows[(TTG, period)])
    run = json.loads(cjmonitor("run", "--home", home, "--json", "-q"))
    for period in PERIODS[:-1]:  # `run` renders the latest month; earlier months on request
        cjmonitor("render", "--home", home, "--period", period, "-q")
    cjmonitor("report", "monthly", "--home", home, "--area", AREA, "--period", PERIODS[-1])
    cjmonitor("pack", "--home", home, "--contract", WC, "--as-of", PERIODS[-1])
    cjmonitor("pack", "--home", home, "--contract", TTG, "--as-of", PERIODS[-1])
    counts = {(contract, period): hand_counts(rows[(WC, period)], rows[(TTG, period)])
              for contract in (WC, TTG) for period in PERIODS}
    return {"home": home, "register": register, "run": run, "rows": rows, "counts": counts}


def _judged(home: Path, contract: str, period: str) -> dict[str, dict]:
    card = json.loads(cjmonitor("scorecard", "--home", home, "--contract", contract, "--period", period, "--json"))
    return {m["code"]: m for m in card["measures"]}


def test_the_bank_holidays_matter_in_the_data():
    """The hand count of the working-day KPI would differ if bank holidays counted as working days."""
    for period, pairs in HOLIDAY_CASES.items():
        for referral, seen in pairs:
            assert working_days(referral, seen) == 5 and working_days(referral, seen, holidays=set()) > 5, period


@pytest.mark.parametrize("period", PERIODS)
def test_the_local_services_kpis_equal_hand_counts(office, period):
    judged = _judged(office["home"], WC, period)
    hand = office["counts"][(WC, period)]
    assert set(judged) == {"wc_seen_5wd", "wc_completed", "wc_days_to_seen", "wc_referrals"}
    for code in ("wc_seen_5wd", "wc_completed"):
        assert (judged[code]["numerator"], judged[code]["denominator"]) == (hand[code]["numerator"], hand[code]["denominator"])
        assert judged[code]["value"] == pytest.approx(hand[code]["value"])
    assert judged["wc_days_to_seen"]["value"] == pytest.approx(hand["wc_days_to_seen"]["value"])
    assert judged["wc_days_to_seen"]["numerator"] == hand["wc_days_to_seen"]["numerator"]
    assert judged["wc_referrals"]["value"] == hand["wc_referrals"]["value"] == 32
    # the register's targets, in their own units
    assert {c: (judged[c]["target"], judged[c]["tolerance"]) for c in judged} == {
        "wc_seen_5wd": (0.85, 0.05), "wc_completed": (0.60, 0.05), "wc_days_to_seen": (4, 1), "wc_referrals": (30, 5)}
    # RAG from the hand value: a median of more than 5 days (target 4, tolerance 1) is Red
    median = hand["wc_days_to_seen"]["value"]
    assert judged["wc_days_to_seen"]["rag"] == ("Green" if median <= 4 else "Amber" if median <= 5 else "Red")
    assert judged["wc_referrals"]["rag"] == "Green"  # 32 referrals against 30 contracted


@pytest.mark.parametrize("period", PERIODS)
def test_the_ttg_contracts_kpis_equal_hand_counts(office, period):
    judged = _judged(office["home"], TTG, period)
    hand = office["counts"][(TTG, period)]
    assert set(judged) == {"ttg_plan_5wd", "ttg_settled_accommodation"}  # only the KPIs the register gave it
    for code in judged:
        assert (judged[code]["numerator"], judged[code]["denominator"]) == (hand[code]["numerator"], hand[code]["denominator"])
        assert judged[code]["value"] == pytest.approx(hand[code]["value"])
    assert (judged["ttg_plan_5wd"]["target"], judged["ttg_settled_accommodation"]["target"]) == (0.80, 0.70)


def test_the_scorecards_show_the_registers_targets_in_their_units(office):
    home, period = office["home"], PERIODS[-1]
    hand = office["counts"][(WC, period)]
    folder = home / "out" / "scorecards" / period
    text = page_text(folder / f"{WC}.html")
    assert "Women's centre: Dorset" in text and "Harbour Women's Centre CIC" in text
    assert f"{100 * hand['wc_seen_5wd']['value']:.1f}% 85.0%" in text
    assert f"{hand['wc_days_to_seen']['value']:.1f} days 4.0 days or less" in text
    assert " 32 30 Green inconclusive 21.9 to 45.2 32 0 " in text  # a volume has no "of": it is its own count
    assert not re.search(r"\d{3,}\.\d%", text), "a days or count KPI printed as a percentage"
    # The SPC footnote names the charts this scorecard draws (not "a p-chart" for a days or count KPI).
    assert spc_footnote(text) == expected_spc_footnote(home, WC, period)
    sheet = openpyxl.load_workbook(folder / f"{WC}.xlsx")["kpis"]
    header, *rows = [r for r in sheet.iter_rows(values_only=True) if any(v is not None for v in r)]
    kpis = {row[header.index("code")]: dict(zip(header, row, strict=True)) for row in rows}
    assert {c: (k["target"], k["unit"]) for c, k in kpis.items()} == {
        "wc_seen_5wd": (0.85, "percent"), "wc_completed": (0.6, "percent"), "wc_days_to_seen": (4, "days"),
        "wc_referrals": (30, "count")}
    assert kpis["wc_seen_5wd"]["numerator"] == hand["wc_seen_5wd"]["numerator"]
    assert kpis["wc_days_to_seen"]["value"] == pytest.approx(hand["wc_days_to_seen"]["value"])
    ttg = page_text(folder / f"{TTG}.html")
    assert "Through the gate: Dorset" in ttg and "80.0%" in ttg and "70.0%" in ttg
    assert (home / "out" / "scorecards" / PERIODS[0] / f"{WC}.html").exists()


def test_the_monthly_report_shows_each_kpi_against_its_target(office):
    home, period = office["home"], PERIODS[-1]
    hand = office["counts"][(WC, period)]
    folder = home / "out" / "reports" / AREA / period
    text = page_text(folder / "monthly.html")
    assert "Summary matrix: every contract and KPI" in text  # one row per contract x KPI, with its target
    assert f"Seen within 5 working days of referral {100 * hand['wc_seen_5wd']['value']:.1f}% 85.0%" in text
    assert f"Median days from referral to first seen {hand['wc_days_to_seen']['value']:.1f} days 4.0 days" in text
    assert "Referrals received 32 30 Green" in text
    tg = office["counts"][(TTG, period)]["ttg_plan_5wd"]["value"]
    assert f"Resettlement plan within 5 working days of reception {100 * tg:.1f}% 80.0%" in text
    assert not re.search(r"\d{3,}\.\d%", text), "a days or count KPI printed as a percentage"
    sheet = openpyxl.load_workbook(folder / "monthly.xlsx")["kpis"]
    header, *rows = list(sheet.iter_rows(values_only=True))
    table = {(r[header.index("contract_id")], r[header.index("measure_code")]): dict(zip(header, r, strict=True))
             for r in rows if r[0] is not None}
    assert table[(WC, "wc_days_to_seen")]["target"] == 4 and table[(WC, "wc_days_to_seen")]["unit"] == "days"
    assert table[(TTG, "ttg_settled_accommodation")]["target"] == 0.7


def test_the_evidence_pack_shows_the_registers_targets_in_their_units(office):
    home, period = office["home"], PERIODS[-1]
    text = page_text(home / "out" / "packs" / WC / period / "pack.html")
    hand = office["counts"][(WC, period)]
    assert "Median days from referral to first seen 4.0 days [x]" in text  # a median is not pooled over months
    pooled = sum(office["counts"][(WC, p)]["wc_seen_5wd"]["numerator"] for p in PERIODS) / sum(
        office["counts"][(WC, p)]["wc_seen_5wd"]["denominator"] for p in PERIODS)
    assert f"Seen within 5 working days of referral 85.0% {100 * pooled:.1f}%" in text
    assert "Referrals received 30 32 0 of 2 0 Green" in text  # 32 a month on average, against 30
    assert f"({hand['wc_days_to_seen']['value']:.1f} days)" in text
    assert not re.search(r"\d{3,}\.\d%", text), "a days or count KPI printed as a percentage"
    # the funnel plot compares proportions only
    assert "Median days from referral to first seen 60" not in text
    ttg = page_text(home / "out" / "packs" / TTG / period / "pack.html")
    assert "Resettlement plan within 5 working days of reception 80.0%" in ttg


def test_export_then_apply_changes_nothing(office, tmp_path):
    home = office["home"]
    exported = tmp_path / "exported.yaml"
    exported.write_text(cjmonitor("register", "export", "--home", home))
    workbook = tmp_path / "exported.xlsx"
    cjmonitor("register", "export", "--home", home, "--xlsx", workbook)
    for path in (exported, workbook):
        result = json.loads(cjmonitor("register", "apply", path, "--home", home, "--json"))
        assert not result["added"] and not result["changed"] and not result["closed"], (path.name, result)
    assert yaml.safe_load(exported.read_text())["contracts"][0]["kpis"]


def test_a_changed_target_is_a_variation_and_earlier_months_keep_the_old_terms(office, tmp_path):
    home, register = office["home"], office["register"]
    changed = register.read_text().replace(
        "{code: wc_seen_5wd, target: 0.85,", "{code: wc_seen_5wd, target: 0.80,")
    assert changed != register.read_text()
    register.write_text(changed)
    cjmonitor("register", "check", register)
    applied = json.loads(cjmonitor("register", "apply", register, "--home", home, "--effective", "2020-05", "--json"))
    assert applied["changed"], applied
    history = json.loads(cjmonitor("targets", "--home", home, "--contract", WC, "--json"))
    terms = sorted((t["valid_from"], t["valid_to"], t["target"]) for t in history["targets"]
                   if t["measure_code"] == "wc_seen_5wd")
    assert terms == [("2020-04-01", "2020-04-30", 0.85), ("2020-05-01", None, 0.80)]
    assert [(v["effective_date"], v["measure_code"]) for v in history["variations"]] == [("2020-05-01", "wc_seen_5wd")]
    text = cjmonitor("targets", "--home", home, "--contract", WC)
    assert "0.8" in text or "80" in text
    cjmonitor("run", "--home", home, "-q")
    assert _judged(home, WC, "2020-04")["wc_seen_5wd"]["target"] == 0.85
    assert _judged(home, WC, "2020-05")["wc_seen_5wd"]["target"] == 0.80


def test_working_days_are_antisymmetric_across_weekends_and_bank_holidays():
    """A declared return stores each date pair once (alphabetical: first_seen_date before referral_date) and negates
    it: the count must be exactly antisymmetric. numpy's busday_count alone is not (Sunday 10 May 2020 to Monday
    18 May counts 5 one way and -6 the other), which made a referral from a weekend miss its 5 working days."""
    import pandas as pd

    from contracts.workdays import working_days as counted

    pairs = [(date(2020, 5, 10), date(2020, 5, 18)), (date(2020, 4, 8), date(2020, 4, 17)),
             (date(2020, 5, 9), date(2020, 5, 11)), (date(2020, 4, 10), date(2020, 4, 15)), (date(2020, 5, 4), date(2020, 5, 4))]
    start, end = pd.Series([a for a, _ in pairs]), pd.Series([b for _, b in pairs])
    forward, backward = counted(start, end).tolist(), counted(end, start).tolist()
    assert forward == [working_days(a, b) for a, b in pairs] == [5, 5, 0, 1, 0]
    assert backward == [-n for n in forward]


def test_a_days_kpis_tolerance_is_in_days_and_cannot_be_negative(tmp_path):
    """`target: 4, tolerance: 1` is 4 days with a day's tolerance (once refused as "a tolerance is a proportion");
    a negative tolerance is still refused, naming the key."""
    register = tmp_path / "register.yaml"
    register.write_text(REGISTER)
    assert "valid" in cjmonitor("register", "check", register)
    register.write_text(REGISTER.replace("{code: wc_days_to_seen, target: 4, tolerance: 1,",
                                         "{code: wc_days_to_seen, target: 4, tolerance: -1,"))
    result = CliRunner().invoke(cli, ["register", "check", str(register)])
    assert result.exit_code == 2
    assert "contracts[0].kpis[2].tolerance: a tolerance cannot be negative; got -1" in result.output
    register.write_text(REGISTER.replace("{code: wc_seen_5wd, target: 0.85, tolerance: 0.05,",
                                         "{code: wc_seen_5wd, target: 0.85, tolerance: 5,"))
    result = CliRunner().invoke(cli, ["register", "check", str(register)])
    assert "contracts[0].kpis[0].tolerance: a tolerance is a proportion; got 5: write 0.05 for 5 points" in result.output


def test_vary_takes_a_days_kpis_target_in_days(office):
    """`cjmonitor vary` on a median-days KPI: 3 days with half a day's tolerance, not "a proportion between 0 and 1"."""
    home = office["home"]
    cjmonitor("vary", "--home", home, "--contract", WC, "--from", "2020-06", "--description", "Faster first contact",
              "--measure", "wc_days_to_seen", "--target", "3", "--tolerance", "0.5")
    history = json.loads(cjmonitor("targets", "--home", home, "--contract", WC, "--json"))
    assert ("2020-06-01", 3.0, 0.5) in [(t["valid_from"], t["target"], t["tolerance"]) for t in history["targets"]
                                        if t["measure_code"] == "wc_days_to_seen"]
    refused = CliRunner().invoke(cli, ["vary", "--home", str(home), "--contract", WC, "--from", "2020-07",
                                       "--description", "x", "--measure", "wc_seen_5wd", "--target", "85"])
    assert refused.exit_code == 2 and "the target is a proportion between 0 and 1" in refused.output
