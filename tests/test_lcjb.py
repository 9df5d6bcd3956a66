"""Issue #19, the rest: cjs_system_measures as an ingested return, and the quarterly LCJB pack per area."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pandas as pd
import pytest
import yaml
from sqlmodel import select

from contracts.models import Area, Artifact, Submission, SystemMeasureValue

PERIOD = "2025-12"  # the small demo world's latest month, a quarter's last


def _settings(home):
    from cjmonitor.settings import get_settings

    return get_settings(home)


def _session(home):
    from cjmonitor.db import session_scope

    return session_scope(_settings(home))


def _pdf_text(path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout


def test_demo_loads_system_returns_through_the_drop_folder(demo_home):
    truth = json.loads((demo_home / "var" / "truth.json").read_text())
    with _session(demo_home) as session:
        subs = session.exec(select(Submission).where(Submission.return_type == "cjs_system_measures")).all()
        stored = session.exec(select(SystemMeasureValue.source, SystemMeasureValue.period)).all()
        areas = session.exec(select(Area.code)).all()
    assert len(subs) == 36 and all(s.status == "accepted" and s.is_current and s.provider_id == "lcjb" for s in subs)
    assert not any(s.is_late for s in subs)
    frame = pd.DataFrame(stored, columns=["source", "period"])
    # every stored figure came from one of those submissions, and each month's from its own
    by_id = {s.id: s.period for s in subs}
    ids = frame["source"].str.extract(r"^submission:(\d+):")[0].astype(int)
    assert (ids.map(by_id) == frame["period"]).all()
    files = sorted(_settings(demo_home).drop_dir.glob("lcjb_cjs_system_measures_*.csv"))
    assert len(files) == 36
    rows = sum(len(pd.read_csv(f)) for f in files)
    assert len(frame) == rows  # nothing lost, nothing twice
    assert {link["area_code"] for link in truth["interdependencies"]} <= set(areas) | {
        link["area_code"] for link in truth["interdependencies"]}


def _month_file(home, period):
    return pd.read_csv(_settings(home).drop_dir / f"lcjb_cjs_system_measures_{period}.csv", dtype=str, keep_default_na=False)


def _stored(home, period):
    with _session(home) as session:
        rows = session.exec(select(SystemMeasureValue).where(SystemMeasureValue.period == period)).all()
        return {(r.area_code, r.agency, r.measure, r.breakdown, r.group): (r.value, r.source) for r in rows}


def test_a_bad_system_return_is_rejected_whole_and_a_new_version_replaces_the_old(writable_demo_home, tmp_path):
    from cjmonitor import pipeline

    home = writable_demo_home
    settings = _settings(home)
    period = "2025-06"
    before = _stored(home, period)
    good = _month_file(home, period)
    inbox = tmp_path / "in"
    inbox.mkdir()
    bad = good.copy()
    bad.loc[3, "period"] = "2025-05"  # another month's figure in this month's file
    bad.loc[7, "measure"] = "made_up_measure"
    bad_path = inbox / f"lcjb_cjs_system_measures_{period}_v2.csv"
    bad.to_csv(bad_path, index=False)
    summary = pipeline.ingest(settings, paths=[bad_path])
    assert summary.rejected == 1 and summary.accepted == 0
    problems = summary.outcomes[0]["problems"]
    assert {"row": 9, "column": "measure"} in [{k: p[k] for k in ("row", "column")} for p in problems]
    assert "made_up_measure" in json.dumps(problems)
    (report,) = summary.error_reports
    assert "made_up_measure" in open(report, encoding="utf-8").read()
    assert _stored(home, period) == before  # nothing stored, nothing lost
    wrong = good.copy()
    wrong.loc[3, "period"] = "2025-05"  # another month's figure in this month's file: refused
    wrong_path = inbox / f"lcjb_cjs_system_measures_{period}_v2.csv"
    wrong.to_csv(wrong_path, index=False)
    summary = pipeline.ingest(settings, paths=[wrong_path])
    assert summary.rejected == 1
    (problem,) = summary.outcomes[0]["problems"]
    assert problem["row"] == 5 and problem["column"] == "period" and "2025-05" in problem["message"]
    assert _stored(home, period) == before

    # A corrected version that drops one area's rows: those figures go, the rest are replaced.
    dropped = good["area_code"].iloc[0]
    fixed = good[good["area_code"] != dropped].copy()
    first = fixed.index[(fixed["measure"] == "file_quality") & (fixed["breakdown"] == "")][0]
    fixed.loc[first, ["numerator", "value"]] = [fixed.loc[first, "denominator"], "100"]
    fixed_path = inbox / f"lcjb_cjs_system_measures_{period}_v3.csv"
    fixed.to_csv(fixed_path, index=False)
    summary = pipeline.ingest(settings, paths=[fixed_path])
    assert summary.accepted == 1, summary.outcomes
    after = _stored(home, period)
    assert len(after) == len(fixed) and not any(key[0] == dropped for key in after)
    key = tuple(fixed.loc[first, ["area_code", "agency", "measure", "breakdown", "group"]])
    assert after[key][0] == 100.0 and after[key][1].endswith(fixed_path.name)
    with _session(home) as session:
        versions = session.exec(select(Submission).where(Submission.return_type == "cjs_system_measures",
                                                         Submission.period == period)
                                .order_by(Submission.version)).all()
    assert [(s.version, s.status, s.is_current) for s in versions] == [
        (1, "accepted", False), (2, "rejected", False), (3, "rejected", False), (4, "accepted", True)]
    # The same bytes again are a duplicate, not a new version.
    assert pipeline.ingest(settings, paths=[fixed_path]).duplicate == 1


def test_an_unregistered_sender_of_system_measures_is_not_loaded(writable_demo_home, tmp_path):
    from cjmonitor import pipeline

    path = tmp_path / "nobody_cjs_system_measures_2025-06.csv"
    shutil.copy(_settings(writable_demo_home).drop_dir / "lcjb_cjs_system_measures_2025-06.csv", path)
    summary = pipeline.ingest(_settings(writable_demo_home), paths=[path])
    assert summary.unrecognised == 1 and "provider 'nobody' is not configured" in summary.outcomes[0]["message"]


def _packs(home):
    return sorted((home / "out" / "lcjb").glob(f"*/{PERIOD}/lcjb.pdf"))


def test_the_demo_writes_an_lcjb_pack_for_every_area(demo_home):
    with _session(demo_home) as session:
        areas = sorted(session.exec(select(Area.code)).all())
        artifacts = session.exec(select(Artifact).where(Artifact.kind == "lcjb_pack")).all()
    assert [p.parent.parent.name for p in _packs(demo_home)] == areas
    assert len(artifacts) == 3 * len(areas) and {a.period for a in artifacts} == {PERIOD}
    for area in areas:
        folder = demo_home / "out" / "lcjb" / area / PERIOD
        assert (folder / "lcjb.html").stat().st_size > 5000 and (folder / "lcjb.xlsx").stat().st_size > 3000
    index = (demo_home / "out" / "index.html").read_text(encoding="utf-8")
    for area in areas:
        assert f'href="lcjb/{area}/{PERIOD}/lcjb.pdf"' in index


def test_pack_pdf_has_the_funnel_trends_links_and_services(demo_home):
    from contracts.system import read_system_measures

    pdf = demo_home / "out" / "lcjb" / "E23000005" / PERIOD / "lcjb.pdf"
    text = _pdf_text(pdf)
    assert "The funnel: from recorded crime to reoffending" in text
    assert "Partners' commentary" in text or "Partners’ commentary" in text
    assert "Timeliness: is it changing?" in text
    assert "Commissioned services beside the system they depend on" in text
    assert "caused" not in text.lower().replace("not show that one agency's results caused", "")
    # The funnel's recorded-crime volume is the quarter's stored figures for the area, summed.
    with _session(demo_home) as session:
        frame = read_system_measures(session, area_code="E23000005")
    crime = frame[(frame["agency"] == "police") & (frame["measure"] == "recorded_crime")
                  & frame["period"].isin(["2025-10", "2025-11", "2025-12"])]["value"].sum()
    assert f"{crime:,.0f}" in text
    no_league = re.findall(r"\brank(?:ed|ing)?\b", text.lower())
    assert no_league == [] or all(w == "ranked" for w in no_league)  # "never ranked" is the only use


def test_small_world_pack_says_why_there_are_no_links(demo_home):
    html = (demo_home / "out" / "lcjb" / "E23000014" / PERIOD / "lcjb.html").read_text(encoding="utf-8")
    assert "not analysed: the panel has 5 areas; cluster-robust inference needs at least 10" in html


WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}


def test_the_injected_file_quality_link_is_in_its_area_pack(writable_demo_home):
    """Twelve areas' system measures with the demo's injected links (West Midlands: file quality -> ineffective
    trials two months later): the sentence is in West Midlands' pack, said as an association, and in no other."""
    from cjmonitor import pipeline
    from cjmonitor.demo_system import FILE_QUALITY_LINK, simulate_system
    from contracts.geography import AREAS, AREAS_BY_NAME
    from contracts.system import store_system_measures

    home = writable_demo_home
    with _session(home) as session:
        office = sorted(session.exec(select(Area.code)).all())
    extra = [a.code for a in AREAS if a.code not in office][:7]
    path = home / "var" / "register.yaml"
    register = yaml.safe_load(path.read_text())
    register["office"]["areas"] = office + extra
    path.write_text(yaml.safe_dump(register, sort_keys=False))
    pipeline.apply_register_file(_settings(home), path)
    areas = [AREAS_BY_NAME[name] for name in sorted({a.name for a in AREAS if a.code in office + extra})]
    panel = simulate_system(areas, months=36, start="2023-01", seed=7, breakdowns=False)
    (link,) = [i for i in panel.interdependencies if i["cause"]["measure"] == "file_quality"]
    west_midlands = AREAS_BY_NAME[FILE_QUALITY_LINK["area"]].code
    assert link["area_code"] == west_midlands
    with _session(home) as session:
        store_system_measures(session, panel.frame(include_breakdowns=False), source="test: 12 areas")
    settings = _settings(home)
    html = open(pipeline.lcjb_pack(settings, west_midlands, PERIOD)["html"], encoding="utf-8").read()
    section = html[html.index('id="links"'):html.index('id="services"')]
    sentences = [s for s in re.findall(r"<li>(.*?)</li>", section, re.S) if "in this area" in s]
    found = [s for s in sentences if "file quality" in s.lower() and "ineffective trials" in s.lower()]
    assert found, section
    assert "associated with" in found[0] and "caused" not in found[0]
    assert f"{WORDS[link['lag_months']]} months later" in found[0]
    other = next(code for code in office if code != west_midlands)
    html = open(pipeline.lcjb_pack(settings, other, PERIOD)["html"], encoding="utf-8").read()
    section = html[html.index('id="links"'):html.index('id="services"')]
    assert not [s for s in re.findall(r"<li>(.*?)</li>", section, re.S)
                if "in this area" in s and "file quality" in s.lower()]


def _apply_commentary(home, notes):
    from cjmonitor import pipeline

    path = home / "var" / "register.yaml"
    register = yaml.safe_load(path.read_text())
    register["office"]["lcjb_commentary"] = notes
    path.write_text(yaml.safe_dump(register, sort_keys=False))
    return pipeline.apply_register_file(_settings(home), path)


def test_partners_commentary_is_shown_as_written_and_escaped(writable_demo_home):
    from cjmonitor import pipeline

    home = writable_demo_home
    words = "Listing changed in November <b>after</b> the estates work & a new trial list; watch Q1."
    _apply_commentary(home, [{"area": "E23000003", "period": PERIOD, "partner": "HMCTS North West", "text": words},
                             {"area": "E23000003", "period": "2025-09", "partner": "CPS", "text": "Older words."}])
    result = pipeline.lcjb_pack(_settings(home), "E23000003", PERIOD)
    html = open(result["html"], encoding="utf-8").read()
    assert "Listing changed in November &lt;b&gt;after&lt;/b&gt; the estates work &amp; a new trial list" in html
    assert "<b>after</b>" not in html and "Older words." not in html
    text = " ".join(_pdf_text(result["pdf"]).split())
    assert "HMCTS North West" in text and "Listing changed in November <b>after</b> the estates work & a new" in text
    # export -> apply changes nothing, commentary included
    from contracts.register import export_register

    with _session(home) as session:
        exported = export_register(session)
    assert exported["office"]["lcjb_commentary"][0]["partner"] in ("CPS", "HMCTS North West")


def test_commentary_for_an_area_outside_the_office_is_refused(writable_demo_home):
    from contracts.register import RegisterError

    with pytest.raises(RegisterError, match=r"lcjb_commentary.*not one of office.areas|area 'E23000039' is not one"):
        _apply_commentary(writable_demo_home, [{"area": "E23000039", "period": PERIOD, "partner": "CPS", "text": "x"}])


def test_pack_is_quarterly_only(writable_demo_home):
    from cjmonitor import pipeline
    from cjmonitor.errors import ConfigError

    with pytest.raises(ConfigError, match="quarter's last month"):
        pipeline.lcjb_pack(_settings(writable_demo_home), "E23000003", "2025-11")


def test_suppression_holds_in_the_pack(writable_demo_home):
    """The intruder test: with the threshold above a stage's volume, that count (and the conversion that would
    give it back) is not anywhere in the funnel; the stage shows [c]."""
    from contracts.pathway import build_pathway
    from contracts.system import read_system_measures
    from reports.lcjb import render_lcjb_pack

    home = writable_demo_home
    with _session(home) as session:
        frame = read_system_measures(session, breakdowns=True)
        view = build_pathway(frame, "W15000003", PERIOD, months=3).to_dict()
        stage = min((s for s in view["stages"] if s["volume"]), key=lambda s: s["volume"])
        threshold = int(stage["volume"]) + 1
        paths = render_lcjb_pack(session, home / "out", "W15000003", PERIOD, code_version="test", threshold=threshold)
    html = paths["html"].read_text(encoding="utf-8")
    funnel = html[html.index('id="funnel"'):html.index('id="timeliness"')]
    row = next(r for r in re.findall(r"<tr>.*?</tr>", funnel, re.S) if stage["label"] in r)
    assert "[c]" in row
    assert f"{stage['volume']:,.0f}" not in funnel
    xlsx = pd.read_excel(paths["xlsx"], sheet_name="funnel")
    assert (xlsx.loc[xlsx["label"] == stage["label"], "volume"].astype(str) == "[c]").all()


def test_lcjb_packs_go_to_area_recipients_only(demo_home):
    from cjmonitor.distribute import in_scope, period_documents

    with _session(demo_home) as session:
        documents = [d for d in period_documents(session, PERIOD) if d["kind"] == "lcjb_pack"]
    assert len(documents) == 15
    for document in documents:
        assert in_scope(document, [("area", document["area_code"])])
        assert not in_scope(document, [("area", "E23000039")])
        assert not in_scope(document, [("contract", f"CRC-{document['area_code']}")])
        assert not in_scope(document, [("provider", "lcjb")])


def test_cli_report_lcjb(writable_demo_home):
    from click.testing import CliRunner

    from cjmonitor.cli import cli

    result = CliRunner().invoke(cli, ["report", "lcjb", "--home", str(writable_demo_home), "--area", "E23000010",
                                      "--period", PERIOD, "--json"])
    assert result.exit_code == 0, result.output
    paths = json.loads(result.stdout)
    assert paths["pdf"].endswith(f"lcjb/E23000010/{PERIOD}/lcjb.pdf")
    bad = CliRunner().invoke(cli, ["report", "lcjb", "--home", str(writable_demo_home), "--area", "E23000010",
                                   "--period", "2025-10"])
    assert bad.exit_code != 0 and "quarter's last month" in bad.output


def test_the_index_is_shared_by_the_processes_of_a_home_and_never_served_stale(writable_demo_home, monkeypatch):
    """Each rendering task under Airflow is its own process. The first LCJB pack files the indexed system measures
    (with the panel analysis) in var/cache; a process with nothing in memory renders from that copy without reading
    the table, to the same bytes; once the table changes, the copy no longer matches and the table is read."""
    from pathlib import Path

    import contracts.system
    from cjmonitor.documents import render_one
    from reports import system_index as shared

    settings = _settings(writable_demo_home)
    cache = settings.threshold_cache_path.parent / "system-index.pickle"
    cache.unlink(missing_ok=True)  # the demo's own run wrote one
    with _session(writable_demo_home) as session:
        area = session.exec(select(Area.code).order_by(Area.code)).first()
    monkeypatch.setattr(shared, "_INDEXES", {})
    monkeypatch.setattr(shared, "_SAVED", set())
    _kind, paths, _wall, _cpu = render_one(settings, "lcjb_pack", area, PERIOD, cache={})
    assert cache.exists()
    first = {p: Path(p).read_bytes() for p in paths if not p.endswith(".pdf")}

    def refuse(*_args, **_kwargs):
        raise AssertionError("the system measures were read from the table although the shared index was current")

    monkeypatch.setattr(contracts.system, "read_system_measures", refuse)
    monkeypatch.setattr(shared, "_INDEXES", {})  # as a fresh task process
    render_one(settings, "lcjb_pack", area, PERIOD, cache={})
    assert {p: Path(p).read_bytes() for p in first} == first

    with _session(writable_demo_home) as session:  # a figure withdrawn: the table's fingerprint changes
        session.delete(session.exec(select(SystemMeasureValue).where(SystemMeasureValue.area_code == area)).first())
    monkeypatch.setattr(shared, "_INDEXES", {})
    monkeypatch.setattr(shared, "_CACHE_FILE", cache)
    with pytest.raises(AssertionError, match="read from the table"), _session(writable_demo_home) as session:
        shared.system_index(session)
