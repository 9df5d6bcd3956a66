"""KPI derivations against values worked out by hand on tiny returns, and the verdict boundaries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlmodel import select

from cjmonitor import pipeline
from cjmonitor.db import session_scope
from cjmonitor.demo import build_world, load_world
from cjmonitor.settings import get_settings
from contracts.judge import TargetTerms, judge_frame, rag
from contracts.models import KpiValue

CRC = "CRC-E23000005"  # Greater Manchester, northstar-rehab
TTG = "TTG-E23000005"  # gateway-resettlement
EM = "EM-E23000005"  # sentinel-monitoring
HLT = "HLT-E23000005"  # riverside-health
AREA = "E23000005"

# 2024-03-01 is a Friday. Working days: Mon 4th = 1, Tue 5th = 2, ... Fri 8th = 5, Mon 11th = 6.
CRC_ROWS = """contract_id,area_code,order_ref,person_id,order_type,start_date,first_appointment_date,sentence_plan_date,upw_hours_ordered,upw_hours_delivered,end_date,outcome,age_band,sex,risk_band
{c},{a},S1,P1,CO,2024-03-01,2024-03-08,2024-03-20,,,,ongoing,25-34,M,low
{c},{a},S2,P2,CO,2024-03-01,2024-03-11,2024-03-22,100,10,,ongoing,25-34,F,medium
{c},{a},S3,P3,LICENCE,2024-03-01,2024-03-04,,,,,ongoing,35-49,M,high
{c},{a},S4,P4,LICENCE,2024-03-01,2024-03-05,2024-03-21,,,,ongoing,18-20,M,low
{c},{a},E1,P5,CO,2023-05-01,2023-05-02,2023-05-10,100,100,2024-03-15,completed,25-34,M,low
{c},{a},E2,P6,SSO,2023-06-01,2023-06-02,2023-06-10,200,50,2024-03-16,revoked_breach,25-34,M,low
{c},{a},E3,P7,LICENCE,2023-07-01,2023-07-03,2023-07-10,,,2024-03-17,completed,21-24,M,low
{c},{a},E4,P8,LICENCE,2023-08-01,2023-08-02,2023-08-10,,,2024-03-18,revoked_reoffence,50+,F,low
{c},{a},E5,P9,LICENCE,2023-09-01,2023-09-04,2023-09-10,,,2024-03-19,completed,25-34,M,low
"""
# Starts S1-S4 (start 2024-03-01, a Friday):
#   first contact wd: S1 Fri 8th = 5, S2 Mon 11th = 6, S3 Mon 4th = 1, S4 Tue 5th = 2 -> within 5: S1, S3, S4 = 3/4
#   plan wd: S1 Wed 20th = 13, S2 Fri 22nd = 15, S3 none, S4 Thu 21st = 14 -> within 15: S1, S2, S4 = 3/4
#   licence contact within 1 wd: S3 (1) yes, S4 (2) no -> 1/2
# Ends E1-E5: completed E1, E3, E5 -> 3/5; licences E3, E4, E5 completed E3, E5 -> 2/3
#   UPW on ending orders: ordered 100 + 200 = 300, delivered 100 + 50 = 150 -> 150/300
CRC_EXPECTED = {
    "crc_first_contact_5wd": (3, 4), "crc_plan_15wd": (3, 4), "crc_licence_contact_1wd": (1, 2),
    "crc_orders_completed": (3, 5), "crc_licences_completed": (2, 3), "crc_upw_hours_delivered": (150, 300),
}

TTG_ROWS = """contract_id,area_code,episode_ref,person_id,reception_date,resettlement_plan_date,release_date,accommodation_first_night,ete_on_release,age_band,sex
{c},{a},R1,P1,2024-03-01,2024-03-08,,,,25-34,M
{c},{a},R2,P2,2024-03-01,2024-03-11,,,,25-34,M
{c},{a},R3,P3,2024-03-01,,,,,25-34,M
{c},{a},L1,P4,2023-12-01,2023-12-04,2024-03-10,settled,Y,25-34,M
{c},{a},L2,P5,2023-12-01,2023-12-04,2024-03-11,homeless,N,25-34,M
{c},{a},L3,P6,2023-12-01,,2024-03-12,unknown,N,25-34,F
{c},{a},L4,P7,2024-03-01,2024-03-12,2024-03-12,unsettled,Y,25-34,M
"""
# Receptions in March: R1-R3 and L4 (received and released in March): plan within 5 wd: R1 (5) yes,
#   R2 (6) no, R3 none, L4 (7) no -> 1/4
# Releases L1-L4: settled 1/4; homeless 1/4; ETE 2/4; plan before release: L1, L2 yes, L3 none, L4 same day -> 2/4;
#   accommodation recorded: settled, homeless, unsettled -> 3/4
TTG_EXPECTED = {
    "ttg_plan_5wd": (1, 4), "ttg_settled_accommodation": (1, 4), "ttg_homeless_on_release": (1, 4),
    "ttg_ete_on_release": (2, 4), "ttg_plan_before_release": (2, 4), "ttg_accommodation_recorded": (3, 4),
}

EM_ROWS = """contract_id,area_code,order_ref,person_id,order_start,tag_fitted_at,curfew_hours,violations,violations_responded_in_time,order_end,outcome
{c},{a},S1,P1,2024-03-04 10:00,2024-03-05 09:59,10,0,0,,ongoing
{c},{a},S2,P2,2024-03-04 10:00,2024-03-05 10:01,10,0,0,,ongoing
{c},{a},S3,P3,2024-03-04 10:00,2024-03-07 10:00,10,0,0,,ongoing
{c},{a},S4,P4,2024-03-30 23:00,2024-03-31 23:30,10,0,0,,ongoing
{c},{a},E1,P5,2024-01-04 10:00,2024-01-04 12:00,10,0,0,2024-03-20,completed
{c},{a},E2,P6,2024-01-04 10:00,2024-01-04 12:00,10,3,2,2024-03-20,breached
{c},{a},E3,P7,2024-01-04 10:00,2024-01-04 12:00,10,2,2,2024-03-21,revoked
"""
# Starts: hours to fit S1 23.98, S2 24.02, S3 72; S4 reads 24.5 on the wall clock, but the clocks went forward
#   on 31 March 2024, so 23:00 GMT on the 30th to 23:30 BST on the 31st is 23.5 hours -> within 24 h: S1, S4 = 2/4;
#   within 48 h: S1, S2, S4 = 3/4
# Ends: completed 1/3; breach or revoked 2/3; violation-free 1/3; violations responded 4/5
EM_EXPECTED = {
    "em_tag_24h": (2, 4), "em_tag_48h": (3, 4), "em_orders_completed": (1, 3), "em_breach_rate": (2, 3),
    "em_violation_free": (1, 3), "em_violation_response": (4, 5),
}

HEALTH_ROWS = """contract_id,area_code,referral_ref,person_id,service,referral_date,assessed_date,treatment_start_date,released_from_prison,continuity_of_care
{c},{a},H1,P1,liaison_diversion,2024-03-01,2024-03-05,,N,NA
{c},{a},H2,P2,liaison_diversion,2024-03-01,2024-03-06,,N,NA
{c},{a},H3,P3,substance_misuse,2024-03-01,2024-03-08,2024-03-22,Y,N
{c},{a},H4,P4,substance_misuse,2024-03-01,,2024-03-21,Y,Y
{c},{a},H5,P5,substance_misuse,2024-03-01,2024-03-11,,N,NA
"""
# assessed within 5 wd: H1 (2), H2 (3), H3 (5) yes; H4 none; H5 (6) no -> 3/5; assessed at all 4/5
# L&D within 2 wd: H1 yes, H2 no -> 1/2; continuity: released H3 N, H4 Y -> 1/2
# substance misuse H3-H5: treatment within 21 days: H3 21 days yes, H4 20 yes, H5 none -> 2/3; started 2/3
HEALTH_EXPECTED = {
    "hl_assessed_5wd": (3, 5), "hl_assessed_any": (4, 5), "hl_ld_assessed_2wd": (1, 2),
    "hl_continuity_21d": (1, 2), "hl_treatment_21d": (2, 3), "hl_treatment_started": (2, 3),
}

RETURNS = [
    ("northstar-rehab_crc_caseload_2024-03.csv", CRC_ROWS, CRC, CRC_EXPECTED),
    ("gateway-resettlement_ttg_resettlement_2024-03.csv", TTG_ROWS, TTG, TTG_EXPECTED),
    ("sentinel-monitoring_em_orders_2024-03.csv", EM_ROWS, EM, EM_EXPECTED),
    ("riverside-health_health_referrals_2024-03.csv", HEALTH_ROWS, HLT, HEALTH_EXPECTED),
]


@pytest.fixture(scope="module")
def derived(tmp_path_factory):
    settings = get_settings(tmp_path_factory.mktemp("kpis"))
    pipeline.upgrade_db(settings)
    load_world(settings, build_world(seed=1, areas=5, months=24))
    settings.ensure_dirs()
    for name, rows, contract, _expected in RETURNS:
        (settings.drop_dir / name).write_text(rows.format(c=contract, a=AREA))
    summary = pipeline.ingest(settings)
    assert summary.accepted == len(RETURNS), summary.outcomes
    pipeline.derive(settings)
    with session_scope(settings) as session:
        values = session.exec(select(KpiValue).where(KpiValue.period == "2024-03")).all()
    return {(v.contract_id, v.measure_code): (v.numerator, v.denominator) for v in values}


CASES = [(contract, code, expected) for _n, _r, contract, measures in RETURNS for code, expected in measures.items()]


@pytest.mark.parametrize("contract, code, expected", CASES, ids=[c[1] for c in CASES])
def test_kpi_matches_the_hand_count(derived, contract, code, expected):
    assert derived[(contract, code)] == pytest.approx(expected)


def test_every_person_level_measure_is_covered_here():
    from contracts.catalogue import MEASURES

    covered = {code for _c, code, _e in CASES}
    assert {m.code for m in MEASURES if m.service_type != "reoffending"} == covered


@pytest.mark.parametrize("value, direction, expected", [
    (0.85, "higher", "Green"), (0.8501, "higher", "Green"), (0.80, "higher", "Amber"), (0.7999, "higher", "Red"),
    (0.35, "lower", "Green"), (0.38, "lower", "Amber"), (0.3801, "lower", "Red"), (float("nan"), "higher", "No data"),
])
def test_rag_boundaries(value, direction, expected):
    target = 0.85 if direction == "higher" else 0.35
    tolerance = 0.05 if direction == "higher" else 0.03
    assert rag(value, TargetTerms(target, tolerance, 20, direction)) == expected


def test_verdict_boundaries():
    # Wilson 95% intervals: 180/200 = 0.900 (0.851 to 0.934); 170/200 = 0.85 (0.794 to 0.893);
    # 150/200 = 0.75 (0.686 to 0.805); 18/19 below the minimum volume of 20.
    frame = pd.DataFrame({
        "numerator": [180, 170, 150, 18, 50], "denominator": [200, 200, 200, 19, 200],
        "target": [0.85] * 4 + [0.35], "tolerance": [0.05] * 4 + [0.03], "min_volume": [20] * 5,
        "direction": ["higher"] * 4 + ["lower"],
    })
    judged = judge_frame(frame, 0.05)
    assert list(judged["verdict"]) == ["met", "inconclusive", "not met", "insufficient volume", "met"]
    assert judged.loc[0, "ci_low"] == pytest.approx(0.8506, abs=1e-4)
    assert judged.loc[2, "ci_high"] == pytest.approx(0.8050, abs=1e-4)
    assert list(judged["rag"]) == ["Green", "Green", "Red", "Green", "Green"]
    # At alpha 0.001 the interval of 150/200 (0.657 to 0.826) still lies below 0.85.
    assert judge_frame(frame.iloc[[2]], 0.001)["verdict"].iloc[0] == "not met"
    assert np.isclose(judged.loc[4, "value"], 0.25)

