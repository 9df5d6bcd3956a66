"""A seeded, deterministic synthetic commissioning world.

``generate_world`` writes 36 (by default) months of providers' returns for the 42
criminal-justice areas of England and Wales into a drop folder, as real CSV and
XLSX files following the naming convention and the declared return specs, plus a
``truth.json`` manifest of the effects injected into the data so that any tool can
check it recovers them:

* one CRC contract renegotiated at month 18: +8 points on the sentence-plan KPI;
* one service that reduces 12-month proven reoffending by 5 points against
  comparable unserved people, with selection on observed covariates (so a naive
  comparison is biased and matching is needed);
* one provider persistently below target (settled accommodation on release);
* one area whose whole trend shifts (for synthetic control);
* one service rolled out to 4 areas at different months (an employment-support service in resettlement:
  +10 points on ETE on release from each area's start; staggered DiD), drawn from its own random stream;
* seasonality in volumes and rates; a few late returns; a few malformed files,
  each followed by a corrected ``_v2``.

Everything here is synthetic: person identifiers are random strings, providers
are fictional. The same seed and options give the same bytes.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from cjmonitor import progress
from cjmonitor.demo_system import SYSTEM_PROVIDER, write_system_measures
from cjmonitor.errors import ConfigError
from contracts.catalogue import (
    CONTRACT_PREFIX,
    MEASURES,
    MEASURES_BY_CODE,
    SERVICE_NAMES,
    SERVICE_TYPES,
    measures_for,
)
from contracts.geography import AREAS, AREAS_BY_NAME, AreaInfo
from contracts.returns import SPECS, SYSTEM_RETURN_TYPE

log = logging.getLogger(__name__)

DEFAULT_START = "2023-01"
DEFAULT_MONTHS = 36
DEFAULT_SEED = 20231
MIN_AREAS = 5

# Areas carrying the injected effects come first, so a small world (--areas 5) still has them all.
PRIORITY_AREAS = ("Greater Manchester", "West Midlands", "West Yorkshire", "Lancashire", "South Wales")
ITS_AREA, ITS_MEASURE, ITS_MONTH, ITS_LEVEL = "Greater Manchester", "crc_plan_15wd", 18, 0.08
REOFFENDING_AREA, REOFFENDING_ATT = "West Midlands", -0.05
REOFFENCES_PER_REOFFENDER_EXTRA = 2.8  # a reoffender has 1 + Poisson(2.8) proven reoffences in 12 months
SYNTH_AREA, SYNTH_MEASURE, SYNTH_MONTH, SYNTH_EFFECT = "West Yorkshire", "crc_orders_completed", 20, 0.10
# Equality monitoring: care leavers complete their orders 10 points less often than the contract-month rate,
# in every area (a disproportionality to find); ethnic groups differ in share only, not in outcome.
CARE_LEAVER_MEASURE, CARE_LEAVER_DIFFERENCE = "crc_orders_completed", -0.10
ETHNICITY_SHARES = {"Asian": 0.07, "Black": 0.08, "Mixed": 0.04, "White": 0.77, "Other": 0.02, "Not stated": 0.02}
CARE_LEAVER_SHARE_BY_AGE = {"18-20": 0.25, "21-24": 0.2, "25-34": 0.08, "35-49": 0.03, "50+": 0.01}
# A staggered roll-out (issue #17): areas and start months drawn from their own random stream ([seed, 6]), so
# nothing else in the world changes; the effect is constant from each area's start (so the ATT is the effect).
ROLLOUT_SERVICE, ROLLOUT_MEASURE, ROLLOUT_EFFECT, ROLLOUT_AREAS = "ttg", "ttg_ete_on_release", 0.10, 4
FAILING_PROVIDER, FAILING_MEASURE, FAILING_SHORTFALL = "gateway-resettlement", "ttg_settled_accommodation", -0.14
AGGREGATE_PROVIDERS = ("cymru-health",)  # health contracts in Wales report aggregates only (kpi_aggregate)
XLSX_PROVIDER = "riverside-health"  # sends Excel
FOLLOW_UP_MONTHS = 18  # 12 months' follow-up and a 6-month waiting period

# Typical national levels (domain.md) for each measure's underlying probability.
BASE_RATES = {
    "crc_first_contact_5wd": 0.94,
    "crc_plan_15wd": 0.86,
    "crc_orders_completed": 0.74,
    "ttg_plan_5wd": 0.91,
    "ttg_settled_accommodation": 0.86,
    "ttg_ete_on_release": 0.15,
    "em_tag_24h": 0.965,
    "em_violation_response": 0.92,
    "em_orders_completed": 0.80,
    "hl_assessed_5wd": 0.87,
    "hl_continuity_21d": 0.40,
    "hl_treatment_21d": 0.62,
}

# (provider id, name, kind, service type, regions served)
PROVIDERS: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    ("northstar-rehab", "Northstar Rehabilitation Ltd", "private", "crc", ("North East", "North West", "Yorkshire and the Humber")),
    ("midshires-probation", "Midshires Probation Partnership", "private", "crc", ("East Midlands", "West Midlands", "Wales")),
    ("southern-community-justice", "Southern Community Justice CIC", "voluntary", "crc", ("London", "South East", "South West", "East of England")),
    ("gateway-resettlement", "Gateway Resettlement Partnership", "voluntary", "ttg", ("North West", "North East")),
    ("open-door-resettlement", "Open Door Resettlement Trust", "voluntary", "ttg", ("Yorkshire and the Humber", "East Midlands", "West Midlands", "Wales")),
    ("new-leaf-resettlement", "New Leaf Resettlement Ltd", "private", "ttg", ("London", "South East", "South West", "East of England")),
    ("sentinel-monitoring", "Sentinel Monitoring Services Ltd", "private", "em", ()),
    ("riverside-health", "Riverside Health and Justice NHS Trust", "NHS trust", "health", ("North West", "North East", "Yorkshire and the Humber")),
    ("heartlands-health", "Heartlands Liaison and Diversion NHS Trust", "NHS trust", "health", ("East Midlands", "West Midlands", "East of England")),
    ("capital-health", "Capital and Coast Health in Justice NHS Trust", "NHS trust", "health", ("London", "South East", "South West")),
    ("cymru-health", "Cymru Justice Health Partnership", "NHS trust", "health", ("Wales",)),
)

# Monthly events per million population at scale 1.
VOLUME_PER_MILLION = {"crc": 30.0, "ttg": 30.0, "em": 8.0, "health": 12.0, "cohort": 60.0}


@dataclass
class ContractInfo:
    id: str
    area: AreaInfo
    provider_id: str
    service_type: str
    index: int
    annual_value_gbp: float


@dataclass
class World:
    """The generated world: its entities, the true rates and the manifest of injected effects."""

    seed: int
    start: str
    months: int
    scale: float
    areas: list[AreaInfo]
    providers: list[tuple[str, str, str, str, tuple[str, ...]]]
    contracts: list[ContractInfo]
    true_rates: dict[tuple[str, str], np.ndarray]  # (contract id, measure) -> probability per month
    truth: dict = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def period(self, month_index: int) -> str:
        return month_label(self.start, month_index)

    def contract(self, contract_id: str) -> ContractInfo:
        for contract in self.contracts:
            if contract.id == contract_id:
                return contract
        raise KeyError(contract_id)


def month_label(start: str, offset: int) -> str:
    year, month = (int(part) for part in start.split("-"))
    total = year * 12 + (month - 1) + offset
    return f"{total // 12:04d}-{total % 12 + 1:02d}"


def month_start(label: str) -> date:
    year, month = (int(part) for part in label.split("-"))
    return date(year, month, 1)


def month_end(label: str) -> date:
    first = month_start(label)
    return (pd.Timestamp(first) + pd.offsets.MonthEnd(0)).date()


def return_deadline(period: str) -> datetime:
    """Returns are due by the 15th of the month after the period."""
    nxt = month_start(month_label(period, 1))
    return datetime(nxt.year, nxt.month, 15, 23, 59, tzinfo=UTC)


def _select_areas(n_areas: int) -> list[AreaInfo]:
    if not MIN_AREAS <= n_areas <= len(AREAS):
        raise ConfigError(f"--areas must be between {MIN_AREAS} and {len(AREAS)}, got {n_areas}")
    chosen = [AREAS_BY_NAME[name] for name in PRIORITY_AREAS]
    chosen += [area for area in AREAS if area.name not in PRIORITY_AREAS]
    return sorted(chosen[:n_areas], key=lambda area: area.name)


def _provider_for(service_type: str, area: AreaInfo) -> str:
    for provider_id, _name, _kind, service, regions in PROVIDERS:
        if service == service_type and (not regions or area.region in regions):
            return provider_id
    raise AssertionError(f"no {service_type} provider for {area.region}")


def build_world(*, seed: int = DEFAULT_SEED, areas: int = 42, months: int = DEFAULT_MONTHS,
                start: str = DEFAULT_START, scale: float = 1.0) -> World:
    """Entities and true monthly rates of the world, without writing anything."""
    if not 24 <= months <= 120:
        raise ConfigError(f"--months must be between 24 and 120 (the injected effects need 18 months before and 6 after), got {months}")
    if not 0 < scale <= 200:
        raise ConfigError(f"--scale must be a positive number up to 200, got {scale}")
    try:
        month_start(start)
    except ValueError:
        raise ConfigError(f"--start must be a month as YYYY-MM, got {start!r}") from None
    rng = np.random.default_rng(seed)
    chosen = _select_areas(areas)
    contracts: list[ContractInfo] = []
    for area in chosen:
        for service_type in SERVICE_TYPES:
            contracts.append(ContractInfo(
                id=f"{CONTRACT_PREFIX[service_type]}-{area.code}",
                area=area,
                provider_id=_provider_for(service_type, area),
                service_type=service_type,
                index=len(contracts),
                annual_value_gbp=round(area.population_m * {"crc": 5.5e6, "ttg": 1.2e6, "em": 0.9e6, "health": 1.5e6}[service_type], -3),
            ))
    used_providers = {contract.provider_id for contract in contracts}
    providers = [p for p in PROVIDERS if p[0] in used_providers]

    t = np.arange(months)
    # Shared national factors, each area loading on them differently: donors for synthetic control.
    common = 0.025 * np.sin(2 * np.pi * t / 30.0) + 0.0008 * (t - months / 2)
    season = 0.015 * np.cos(2 * np.pi * (t + month_start(start).month - 1 - 11) / 12.0)  # a dip around November-January
    loadings = {area.code: rng.uniform(0.5, 1.5) for area in chosen}
    true_rates: dict[tuple[str, str], np.ndarray] = {}
    for contract in contracts:
        for measure in measures_for(contract.service_type):
            if measure.code not in BASE_RATES:
                continue
            base = BASE_RATES[measure.code] + rng.normal(0, 0.015)
            rate = base + loadings[contract.area.code] * common + season
            if contract.area.name == ITS_AREA and measure.code == ITS_MEASURE:
                rate = rate - 0.14 + ITS_LEVEL * (t >= ITS_MONTH)  # struggling before renegotiation
            if contract.area.name == SYNTH_AREA and measure.code == SYNTH_MEASURE:
                rate = rate + SYNTH_EFFECT * (t >= SYNTH_MONTH)
            if contract.provider_id == FAILING_PROVIDER and measure.code == FAILING_MEASURE:
                rate = rate + FAILING_SHORTFALL
            true_rates[(contract.id, measure.code)] = np.clip(rate, 0.02, 0.99)

    rollout = _inject_rollout(seed, chosen, contracts, true_rates, months, start)
    start_label = start
    crc_by_area = {c.area.name: c.id for c in contracts if c.service_type == "crc"}
    truth = {
        "seed": seed,
        "areas": len(chosen),
        "start": start_label,
        "months": months,
        "scale": scale,
        "its_effects": [{
            "contract_id": crc_by_area[ITS_AREA],
            "measure": ITS_MEASURE,
            "intervention": month_label(start_label, ITS_MONTH),
            "level_change": ITS_LEVEL,
            "slope_change": 0.0,
        }],
        # Reoffenders have 1 + Poisson(2.8) proven reoffences, so the frequency effect is ATT x 3.8 per person.
        "reoffending_effects": [{"contract_id": crc_by_area[REOFFENDING_AREA], "att": REOFFENDING_ATT,
                                 "frequency_att": round(REOFFENDING_ATT * (1 + REOFFENCES_PER_REOFFENDER_EXTRA), 4)}],
        "failing_contracts": sorted(
            c.id for c in contracts if c.provider_id == FAILING_PROVIDER
        ),
        "failing_measure": FAILING_MEASURE,
        "synth_effects": [{
            "area_code": AREAS_BY_NAME[SYNTH_AREA].code,
            "measure": SYNTH_MEASURE,
            "intervention": month_label(start_label, SYNTH_MONTH),
            "effect": SYNTH_EFFECT,
        }],
        "late_returns": [],
        "malformed_files": [],
        "rollout_effects": [rollout],
    }
    return World(seed=seed, start=start_label, months=months, scale=scale, areas=chosen, providers=providers,
                 contracts=contracts, true_rates=true_rates, truth=truth)


def _inject_rollout(seed: int, chosen: list[AreaInfo], contracts: list[ContractInfo],
                    true_rates: dict[tuple[str, str], np.ndarray], months: int, start: str) -> dict:
    """Add the roll-out's effect to the true rates of the adopting areas; its manifest entry (truth.json)."""
    draw = np.random.default_rng([seed, 6])
    n = min(ROLLOUT_AREAS, len(chosen) - 1)  # at least one area never adopts
    picked = sorted(draw.choice(len(chosen), size=n, replace=False).tolist())
    # Distinct start months, at least 6 months of history before and 6 months after.
    offsets = sorted(draw.choice(np.arange(6, months - 6), size=n, replace=False).tolist())
    adopters = []
    t = np.arange(months)
    for area_index, offset in zip(picked, offsets, strict=True):
        area = chosen[area_index]
        contract = next(c for c in contracts if c.area.code == area.code and c.service_type == ROLLOUT_SERVICE)
        key = (contract.id, ROLLOUT_MEASURE)
        true_rates[key] = np.clip(true_rates[key] + ROLLOUT_EFFECT * (t >= offset), 0.02, 0.99)
        adopters.append({"area_code": area.code, "contract_id": contract.id, "start": month_label(start, int(offset))})
    return {"service": ROLLOUT_SERVICE, "measure": ROLLOUT_MEASURE, "effect": ROLLOUT_EFFECT,
            "areas": sorted(adopters, key=lambda a: a["start"]),
            "never_treated": sorted(a.code for i, a in enumerate(chosen) if i not in picked)}


# ---------------------------------------------------------------- record generators


def _dates_in_month(rng: np.random.Generator, period: str, n: int) -> np.ndarray:
    first = np.datetime64(month_start(period))
    days = (np.datetime64(month_end(period)) - first).astype(int) + 1
    return first + rng.integers(0, days, n).astype("timedelta64[D]")


def _busday_after(starts: np.ndarray, working_days: np.ndarray) -> np.ndarray:
    from contracts.workdays import working_days_after  # bank holidays are not working days, as at ingest

    return working_days_after(starts, working_days)


def _volume(rng: np.random.Generator, world: World, area: AreaInfo, kind: str, month_index: int, boost: float = 1.0) -> int:
    month = (month_start(world.start).month - 1 + month_index) % 12
    seasonal = 1.0 + 0.08 * np.cos(2 * np.pi * (month - 2) / 12.0)
    mean = VOLUME_PER_MILLION[kind] * area.population_m * world.scale * seasonal * boost
    return int(rng.poisson(mean))


def _ids(rng: np.random.Generator, prefix: str, n: int) -> list[str]:
    return [f"{prefix}{value:09d}" for value in rng.integers(0, 10**9, n)]


def _fmt_dates(values: np.ndarray) -> list[str]:
    return ["" if pd.isna(v) else str(v)[:10] for v in values]


def _age_sex(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    age = rng.choice(["18-20", "21-24", "25-34", "35-49", "50+"], n, p=[0.08, 0.14, 0.36, 0.31, 0.11])
    sex = rng.choice(["M", "F"], n, p=[0.86, 0.14])
    return age, sex


def _crc_rows(rng, world: World, contract: ContractInfo, m: int) -> pd.DataFrame:
    period = world.period(m)
    rate = {code: world.true_rates[(contract.id, code)][m] for code in ("crc_first_contact_5wd", "crc_plan_15wd", "crc_orders_completed")}
    tag = f"{contract.area.code}{period.replace('-', '')}"
    # Orders allocated in the month.
    n = _volume(rng, world, contract.area, "crc", m)
    start = _dates_in_month(rng, period, n)
    order_type = rng.choice(["CO", "SSO", "LICENCE"], n, p=[0.4, 0.25, 0.35])
    contact_ok = rng.random(n) < rate["crc_first_contact_5wd"]
    # Licences are seen on the day of release or the next working day when contact is on time (SL002R).
    on_time_wd = np.where(order_type == "LICENCE", rng.integers(0, 2, n), rng.integers(0, 6, n))
    contact_wd = np.where(contact_ok, on_time_wd, rng.integers(6, 16, n))
    plan_ok = rng.random(n) < rate["crc_plan_15wd"]
    plan_wd = np.where(plan_ok, rng.integers(3, 16, n), rng.integers(16, 31, n))
    has_upw = rng.random(n) < 0.45
    upw = np.where(has_upw, rng.choice([40, 60, 80, 100, 120, 150, 200, 240, 300], n), np.nan)
    age, sex = _age_sex(rng, n)
    starts = pd.DataFrame({
        "order_ref": [f"O{tag}S{i:05d}" for i in range(n)],
        "person_id": _ids(rng, "PX", n),
        "order_type": order_type,
        "start_date": _fmt_dates(start),
        "first_appointment_date": _fmt_dates(_busday_after(start, contact_wd)),
        "sentence_plan_date": _fmt_dates(_busday_after(start, plan_wd)),
        "upw_hours_ordered": upw,
        "upw_hours_delivered": np.where(has_upw, np.floor(np.nan_to_num(upw) * rng.uniform(0, 0.2, n)), np.nan),
        "end_date": "",
        "outcome": "ongoing",
        "age_band": age,
        "sex": sex,
        "risk_band": rng.choice(["low", "medium", "high"], n, p=[0.35, 0.5, 0.15]),
    })
    # Orders ending in the month (started 6-18 months earlier).
    k = _volume(rng, world, contract.area, "crc", m)
    end = _dates_in_month(rng, period, k)
    began = end - rng.integers(180, 540, k).astype("timedelta64[D]")
    completed = rng.random(k) < rate["crc_orders_completed"]
    outcome = np.where(completed, "completed", rng.choice(["revoked_breach", "revoked_reoffence", "other"], k, p=[0.6, 0.3, 0.1]))
    has_upw = rng.random(k) < 0.45
    upw = np.where(has_upw, rng.choice([40, 60, 80, 100, 120, 150, 200, 240, 300], k), np.nan)
    age, sex = _age_sex(rng, k)
    ends = pd.DataFrame({
        "order_ref": [f"O{tag}E{i:05d}" for i in range(k)],
        "person_id": _ids(rng, "PX", k),
        "order_type": rng.choice(["CO", "SSO", "LICENCE"], k, p=[0.4, 0.25, 0.35]),
        "start_date": _fmt_dates(began),
        "first_appointment_date": _fmt_dates(_busday_after(began, rng.integers(0, 8, k))),
        "sentence_plan_date": _fmt_dates(_busday_after(began, rng.integers(3, 20, k))),
        "upw_hours_ordered": upw,
        "upw_hours_delivered": np.where(has_upw & completed, upw, np.where(has_upw, np.floor(np.nan_to_num(upw) * 0.5), np.nan)),
        "end_date": _fmt_dates(end),
        "outcome": outcome,
        "age_band": age,
        "sex": sex,
        "risk_band": rng.choice(["low", "medium", "high"], k, p=[0.35, 0.5, 0.15]),
    })
    return pd.concat([starts, ends], ignore_index=True)


def _ttg_rows(rng, world: World, contract: ContractInfo, m: int) -> pd.DataFrame:
    period = world.period(m)
    rate = {code: world.true_rates[(contract.id, code)][m] for code in ("ttg_plan_5wd", "ttg_settled_accommodation", "ttg_ete_on_release")}
    tag = f"{contract.area.code}{period.replace('-', '')}"
    n = _volume(rng, world, contract.area, "ttg", m)
    reception = _dates_in_month(rng, period, n)
    plan_ok = rng.random(n) < rate["ttg_plan_5wd"]
    plan_wd = np.where(plan_ok, rng.integers(0, 6, n), rng.integers(6, 20, n))
    age, sex = _age_sex(rng, n)
    receptions = pd.DataFrame({
        "episode_ref": [f"T{tag}R{i:05d}" for i in range(n)],
        "person_id": _ids(rng, "PT", n),
        "reception_date": _fmt_dates(reception),
        "resettlement_plan_date": _fmt_dates(_busday_after(reception, plan_wd)),
        "release_date": "",
        "accommodation_first_night": "",
        "ete_on_release": "",
        "age_band": age,
        "sex": sex,
    })
    k = _volume(rng, world, contract.area, "ttg", m)
    release = _dates_in_month(rng, period, k)
    received = release - rng.integers(20, 360, k).astype("timedelta64[D]")
    settled = rng.random(k) < rate["ttg_settled_accommodation"]
    accommodation = np.where(settled, "settled", rng.choice(["unsettled", "homeless", "unknown"], k, p=[0.45, 0.45, 0.1]))
    ete = np.where(rng.random(k) < rate["ttg_ete_on_release"], "Y", "N")
    age, sex = _age_sex(rng, k)
    releases = pd.DataFrame({
        "episode_ref": [f"T{tag}L{i:05d}" for i in range(k)],
        "person_id": _ids(rng, "PT", k),
        "reception_date": _fmt_dates(received),
        "resettlement_plan_date": _fmt_dates(_busday_after(received, rng.integers(0, 8, k))),
        "release_date": _fmt_dates(release),
        "accommodation_first_night": accommodation,
        "ete_on_release": ete,
        "age_band": age,
        "sex": sex,
    })
    return pd.concat([receptions, releases], ignore_index=True)


def _fmt_datetimes(values: np.ndarray) -> list[str]:
    return [str(v)[:16].replace("T", " ") for v in values]


def _em_rows(rng, world: World, contract: ContractInfo, m: int) -> pd.DataFrame:
    period = world.period(m)
    rate = {code: world.true_rates[(contract.id, code)][m] for code in ("em_tag_24h", "em_violation_response", "em_orders_completed")}
    tag = f"{contract.area.code}{period.replace('-', '')}"
    n = _volume(rng, world, contract.area, "em", m)
    start = _dates_in_month(rng, period, n).astype("datetime64[m]") + rng.integers(8 * 60, 18 * 60, n).astype("timedelta64[m]")
    fit_ok = rng.random(n) < rate["em_tag_24h"]
    minutes = np.where(fit_ok, rng.integers(60, 24 * 60, n), rng.integers(24 * 60 + 30, 96 * 60, n))
    starts = pd.DataFrame({
        "order_ref": [f"M{tag}S{i:05d}" for i in range(n)],
        "person_id": _ids(rng, "PM", n),
        "order_start": _fmt_datetimes(start),
        "tag_fitted_at": _fmt_datetimes(start + minutes.astype("timedelta64[m]")),
        "curfew_hours": rng.choice([8, 10, 12], n),
        "violations": 0,
        "violations_responded_in_time": 0,
        "order_end": "",
        "outcome": "ongoing",
    })
    k = _volume(rng, world, contract.area, "em", m)
    end = _dates_in_month(rng, period, k)
    began = (end - rng.integers(30, 180, k).astype("timedelta64[D]")).astype("datetime64[m]") + np.timedelta64(10 * 60, "m")
    violations = rng.poisson(1.6, k)
    responded = rng.binomial(violations, rate["em_violation_response"])
    completed = rng.random(k) < rate["em_orders_completed"]
    ends = pd.DataFrame({
        "order_ref": [f"M{tag}E{i:05d}" for i in range(k)],
        "person_id": _ids(rng, "PM", k),
        "order_start": _fmt_datetimes(began),
        "tag_fitted_at": _fmt_datetimes(began + rng.integers(60, 30 * 60, k).astype("timedelta64[m]")),
        "curfew_hours": rng.choice([8, 10, 12], k),
        "violations": violations,
        "violations_responded_in_time": responded,
        "order_end": _fmt_dates(end),
        "outcome": np.where(completed, "completed", rng.choice(["breached", "revoked"], k, p=[0.7, 0.3])),
    })
    return pd.concat([starts, ends], ignore_index=True)


def _health_rows(rng, world: World, contract: ContractInfo, m: int) -> pd.DataFrame:
    period = world.period(m)
    rate = {code: world.true_rates[(contract.id, code)][m] for code in ("hl_assessed_5wd", "hl_continuity_21d", "hl_treatment_21d")}
    tag = f"{contract.area.code}{period.replace('-', '')}"
    n = _volume(rng, world, contract.area, "health", m)
    referral = _dates_in_month(rng, period, n)
    service = rng.choice(["liaison_diversion", "substance_misuse"], n, p=[0.55, 0.45])
    assessed_ok = rng.random(n) < rate["hl_assessed_5wd"]
    assessed_wd = np.where(assessed_ok, rng.integers(0, 6, n), rng.integers(6, 25, n))
    released = (service == "substance_misuse") & (rng.random(n) < 0.5)
    continuity = released & (rng.random(n) < rate["hl_continuity_21d"])
    treated_fast = np.where(released, continuity, rng.random(n) < rate["hl_treatment_21d"]) & (service == "substance_misuse")
    treat_days = np.where(treated_fast, rng.integers(1, 22, n), rng.integers(22, 90, n))
    has_treatment = (service == "substance_misuse") & (treated_fast | (rng.random(n) < 0.5))
    treatment = np.where(has_treatment, referral + treat_days.astype("timedelta64[D]"), np.datetime64("NaT"))
    return pd.DataFrame({
        "referral_ref": [f"H{tag}R{i:05d}" for i in range(n)],
        "person_id": _ids(rng, "PH", n),
        "service": service,
        "referral_date": _fmt_dates(referral),
        "assessed_date": _fmt_dates(_busday_after(referral, assessed_wd)),
        "treatment_start_date": _fmt_dates(treatment),
        "released_from_prison": np.where(released, "Y", "N"),
        "continuity_of_care": np.where(released, np.where(continuity, "Y", "N"), "NA"),
    })


def cohort_rows(rng: np.random.Generator, n: int, cohort_start: date, att: float) -> pd.DataFrame:
    """A proven-reoffending cohort with selection on observed covariates and a known effect.

    Younger people with more previous offences and higher risk scores are more
    likely to be served *and* more likely to reoffend, so the naive served-minus-unserved
    difference is biased upwards; the true effect of being served is ``att`` on the
    probability scale for every served person.
    """
    age = np.clip(rng.gamma(6.0, 5.5, n) + 16, 18, 80).astype(int)
    sex = np.where(rng.random(n) < 0.85, "M", "F")
    prior = rng.negative_binomial(1.2, 0.12, n)
    offence = rng.choice(["theft", "violence", "drugs", "public_order", "burglary", "other"], n, p=[0.24, 0.22, 0.14, 0.12, 0.08, 0.2])
    sentence = rng.choice(["custody_short", "community", "suspended"], n, p=[0.3, 0.45, 0.25])
    risk_lin = -1.0 - 0.035 * (age - 30) + 0.06 * np.minimum(prior, 40) + 0.4 * (offence == "theft") + 0.3 * (sentence == "custody_short") + rng.normal(0, 0.5, n)
    risk_score = np.round(100 / (1 + np.exp(-risk_lin)), 1)
    logit_reoffend = -1.25 - 0.03 * (age - 30) + 0.045 * np.minimum(prior, 40) + 0.45 * (offence == "theft") \
        + 0.35 * (sentence == "custody_short") + 0.3 * (sex == "M") + 0.012 * (risk_score - 30)
    p0 = np.clip(1 / (1 + np.exp(-logit_reoffend)), 0.08, 0.92)
    logit_served = -1.3 + 0.03 * (risk_score - 30) - 0.03 * (age - 30) + 0.5 * (sentence == "custody_short") + 0.02 * np.minimum(prior, 40)
    served = rng.random(n) < 1 / (1 + np.exp(-logit_served))
    p = np.where(served, p0 + att, p0)
    reoffended = rng.random(n) < p
    count = np.where(reoffended, 1 + rng.poisson(REOFFENCES_PER_REOFFENDER_EXTRA, n), 0)
    days = np.where(reoffended, rng.integers(1, 366, n), -1)
    dates = np.datetime64(cohort_start) + rng.integers(0, 90, n).astype("timedelta64[D]")
    return pd.DataFrame({
        "person_id": _ids(rng, "PC", n),
        "cohort_date": _fmt_dates(dates),
        "age": age,
        "sex": sex,
        "offence_group": offence,
        "prior_offences": prior,
        "risk_score": risk_score,
        "sentence_type": sentence,
        "served": served.astype(int),
        "reoffended_12m": reoffended.astype(int),
        "reoffences_12m": count,
        "days_to_first": pd.Series(days).where(days >= 0).astype("Int64"),
        "custodial_first": _custodial_first(reoffended, prior, sentence, served, att),
    })


def _custodial_first(reoffended: np.ndarray, prior: np.ndarray, sentence: np.ndarray, served: np.ndarray,
                     att: float) -> pd.Series:
    """Spec v3: whether a reoffender's first proven reoffence led to custody (blank for non-reoffenders).

    Drawn from its own generator seeded by the cohort, so the other columns' random streams are unchanged.
    Custody is likelier with more previous offences and a custodial index sentence; where the service
    works (``att`` < 0) its reoffenders are a little less often sent to custody.
    """
    rng = np.random.default_rng([int(prior.sum()) % 2**32, len(prior), 17])
    p = np.clip(0.22 + 0.012 * np.minimum(prior, 20) + 0.12 * (sentence == "custody_short")
                + np.where(served & (att < 0), -0.06, 0.0), 0.02, 0.95)
    custody = rng.random(len(prior)) < p
    return pd.Series(np.where(reoffended, custody.astype(int).astype(str), ""), dtype=object).replace("", pd.NA)


ROW_MAKERS = {"crc": ("crc_caseload", _crc_rows), "ttg": ("ttg_resettlement", _ttg_rows), "em": ("em_orders", _em_rows), "health": ("health_referrals", _health_rows)}


# ---------------------------------------------------------------- writing


def _normalise_xlsx(data: bytes) -> bytes:
    """Give every zip entry a fixed timestamp so that the same workbook has the same bytes."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(2020, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            content = source.read(info.filename)
            if info.filename == "docProps/core.xml":  # openpyxl stamps the save time here
                content = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>2020-01-01T00:00:00Z", content)
            target.writestr(fixed, content)
    return out.getvalue()


def frame_bytes(frame: pd.DataFrame, extension: str, sheet_name: str = "return") -> bytes:
    if extension == "csv":
        return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        frame.to_excel(writer, index=False, sheet_name=sheet_name)
        fixed = datetime(2020, 1, 1)
        writer.book.properties.created = fixed
        writer.book.properties.modified = fixed
    return _normalise_xlsx(buffer.getvalue())


def _write(path: Path, data: bytes, received_at: datetime) -> None:
    path.write_bytes(data)
    stamp = received_at.timestamp()
    os.utime(path, (stamp, stamp))


def _malform(rng: np.random.Generator, frame: pd.DataFrame, return_type: str, how: int) -> pd.DataFrame:
    bad = frame.copy()
    spec = SPECS[return_type]
    date_columns = [c.name for c in spec.columns if c.kind in ("date", "datetime") and c.required]
    if how == 0:  # a renamed required column
        return bad.rename(columns={date_columns[0]: date_columns[0].replace("_", " ").title()})
    if how == 1:  # impossible dates and text in a number column
        rows = rng.choice(len(bad), size=min(3, len(bad)), replace=False)
        bad[date_columns[0]] = bad[date_columns[0]].astype(object)
        bad.loc[bad.index[rows], date_columns[0]] = "31/02/2024"
        number_columns = [c.name for c in spec.columns if c.kind in ("int", "float")]
        if number_columns:
            bad[number_columns[0]] = bad[number_columns[0]].astype(object)
            bad.loc[bad.index[rows[:1]], number_columns[0]] = "see notes"
        return bad
    # a duplicated key and an unknown category
    dup = bad.iloc[[0]]
    bad = pd.concat([bad, dup], ignore_index=True)
    allowed = [c.name for c in spec.columns if c.allowed]
    bad[allowed[-1]] = bad[allowed[-1]].astype(object)
    bad.loc[1, allowed[-1]] = "unknown-value"
    return bad


def _with_equality_fields(rng: np.random.Generator, frame: pd.DataFrame, completion_rate: float | None) -> pd.DataFrame:
    """Add ethnicity group and care-leaver flag (a separate random stream, so the other columns never change).

    For ended orders the flag is drawn given the outcome, with P(care leaver | completed) = c (p + d) / p and
    P(care leaver | not) = c (1 - p - d) / (1 - p), so that care leavers complete at p + d while the
    contract-month completion rate stays p (d = CARE_LEAVER_DIFFERENCE, c the care-leaver share for the age band).
    """
    n = len(frame)
    ethnicity = rng.choice(list(ETHNICITY_SHARES), n, p=list(ETHNICITY_SHARES.values()))
    share = frame["age_band"].map(CARE_LEAVER_SHARE_BY_AGE).to_numpy(dtype=float) if "age_band" in frame \
        else np.full(n, CARE_LEAVER_SHARE_BY_AGE["25-34"])
    chance = share.copy()
    if completion_rate is not None and "outcome" in frame:
        p, d = completion_rate, CARE_LEAVER_DIFFERENCE
        ended = (frame["end_date"] != "").to_numpy()
        completed = (frame["outcome"] == "completed").to_numpy()
        chance = np.where(ended & completed, share * (p + d) / p, chance)
        chance = np.where(ended & ~completed, share * (1 - p - d) / (1 - p), chance)
    care_leaver = rng.random(n) < np.clip(chance, 0, 1)
    return frame.assign(ethnicity_group=ethnicity, care_leaver=np.where(care_leaver, "Y", "N"))


def generate_world(drop_dir: Path, truth_path: Path, *, seed: int = DEFAULT_SEED, areas: int = 42,
                   months: int = DEFAULT_MONTHS, start: str = DEFAULT_START, scale: float = 1.0) -> World:
    """Write the world's returns into ``drop_dir`` and its manifest to ``truth_path``."""
    world = build_world(seed=seed, areas=areas, months=months, start=start, scale=scale)
    drop_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 1])
    month_periods = [world.period(m) for m in range(months)]

    # Which (provider, return type, period) come late, and which arrive malformed.
    monthly_keys: list[tuple[str, str, str]] = []
    for provider_id, _name, _kind, service_type, _regions in world.providers:
        return_type = ROW_MAKERS[service_type][0]
        if provider_id in AGGREGATE_PROVIDERS:
            return_type = "kpi_aggregate"
        for period in month_periods:
            monthly_keys.append((provider_id, return_type, period))
    pick = np.random.default_rng([seed, 2])
    late_idx = set(pick.choice(len(monthly_keys), size=4, replace=False).tolist())
    malformed_candidates = [i for i, key in enumerate(monthly_keys) if key[1] != "kpi_aggregate" and i not in late_idx]
    malformed_idx = pick.choice(malformed_candidates, size=3, replace=False).tolist()
    malformed_how = {idx: how for how, idx in enumerate(malformed_idx)}

    per_file: dict[tuple[str, str, str], list[pd.DataFrame]] = {}
    equality_rng = np.random.default_rng([seed, 4])
    world.truth["breakdown_effects"] = [{"measure": CARE_LEAVER_MEASURE, "group": "care_leaver",
                                         "difference": CARE_LEAVER_DIFFERENCE}]
    for m, period in progress.track(list(enumerate(month_periods)), "Simulating months of casework"):
        for contract in world.contracts:
            return_type, maker = ROW_MAKERS[contract.service_type]
            frame = maker(rng, world, contract, m)
            if return_type == "crc_caseload":
                frame = _with_equality_fields(equality_rng, frame, world.true_rates[(contract.id, CARE_LEAVER_MEASURE)][m])
            frame.insert(0, "area_code", contract.area.code)
            frame.insert(0, "contract_id", contract.id)
            if contract.provider_id in AGGREGATE_PROVIDERS:
                per_file.setdefault((contract.provider_id, "kpi_aggregate", period), []).append(_aggregate_health(frame, contract.id, period))
            else:
                per_file.setdefault((contract.provider_id, return_type, period), []).append(frame)

    files: list[str] = []
    for index, key in progress.track(list(enumerate(monthly_keys)), "Writing return files"):
        provider_id, return_type, period = key
        frame = pd.concat(per_file[key], ignore_index=True)
        frame = frame[list(SPECS[return_type].column_names)]
        extension = "xlsx" if provider_id == XLSX_PROVIDER else "csv"
        deadline = return_deadline(period)
        if index in late_idx:
            received = deadline + timedelta(days=int(pick.integers(3, 21)), hours=2)
            world.truth["late_returns"].append({"provider_id": provider_id, "return_type": return_type, "period": period})
        else:
            received = deadline - timedelta(days=int(pick.integers(1, 12)), hours=int(pick.integers(1, 12)))
        name = f"{provider_id}_{return_type}_{period}.{extension}"
        if index in malformed_how:
            bad = _malform(pick, frame, return_type, malformed_how[index])
            _write(drop_dir / name, frame_bytes(bad, extension), received)
            world.truth["malformed_files"].append(name)
            files.append(name)
            name = f"{provider_id}_{return_type}_{period}_v2.{extension}"
            received = received + timedelta(days=2)
        _write(drop_dir / name, frame_bytes(frame, extension), received)
        files.append(name)

    files += _write_cohorts(world, drop_dir)
    world.files = files
    world.truth["files"] = len(files)
    # Issue #19: the LCJB's system measures, one cjs_system_measures return a month, through the drop folder.
    world.truth["interdependencies"] = write_system_measures(world, drop_dir)
    world.files += sorted(p.name for p in drop_dir.glob(f"{SYSTEM_PROVIDER}_{SYSTEM_RETURN_TYPE}_*.csv"))
    world.truth["files"] = len(world.files)
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    truth_path.write_text(json.dumps(world.truth, indent=2, sort_keys=True) + "\n")
    log.info("wrote %d return files for %d areas into %s", len(files), len(world.areas), drop_dir)
    return world


def _aggregate_health(frame: pd.DataFrame, contract_id: str, period: str) -> pd.DataFrame:
    """What an aggregate-only provider reports: numerator and denominator per KPI."""
    referral = pd.to_datetime(frame["referral_date"])
    assessed = pd.to_datetime(frame["assessed_date"])
    treatment = pd.to_datetime(frame["treatment_start_date"], errors="coerce")
    from contracts.workdays import working_days_array

    wd = working_days_array(referral.values, assessed.values)
    released = frame["released_from_prison"] == "Y"
    substance = frame["service"] == "substance_misuse"
    within = ((treatment - referral).dt.days <= 21).fillna(False)
    rows = [
        ("hl_assessed_5wd", int((wd <= 5).sum()), len(frame)),
        ("hl_continuity_21d", int((frame["continuity_of_care"] == "Y").sum()), int(released.sum())),
        ("hl_treatment_21d", int((within & substance).sum()), int(substance.sum())),
    ]
    return pd.DataFrame([
        {"contract_id": contract_id, "measure_code": code, "period": period, "numerator": num, "denominator": den}
        for code, num, den in rows
    ])


def _write_cohorts(world: World, drop_dir: Path) -> list[str]:
    """Quarterly reoffending cohorts, each sent once its 18-month follow-up has run (only those inside the window)."""
    rng = np.random.default_rng([world.seed, 3])
    equality_rng = np.random.default_rng([world.seed, 5])
    files = []
    crc_contracts = [c for c in world.contracts if c.service_type == "crc"]
    for q_start in range(0, world.months - FOLLOW_UP_MONTHS, 3):
        period = world.period(q_start)
        by_provider: dict[str, list[pd.DataFrame]] = {}
        for contract in crc_contracts:
            effect = REOFFENDING_ATT if contract.area.name == REOFFENDING_AREA else 0.0
            boost = 5.0 if effect else 1.0
            n = int(rng.poisson(VOLUME_PER_MILLION["cohort"] * contract.area.population_m * world.scale * boost))
            frame = _with_equality_fields(equality_rng, cohort_rows(rng, max(n, 40), month_start(period), effect), None)
            frame.insert(0, "area_code", contract.area.code)
            frame.insert(0, "contract_id", contract.id)
            by_provider.setdefault(contract.provider_id, []).append(frame)
        delivered = return_deadline(world.period(q_start + FOLLOW_UP_MONTHS)) - timedelta(days=5)
        for provider_id, frames in sorted(by_provider.items()):
            name = f"{provider_id}_reoffending_cohort_{period}.csv"
            frame = pd.concat(frames, ignore_index=True)[list(SPECS["reoffending_cohort"].column_names)]
            _write(drop_dir / name, frame_bytes(frame, "csv"), delivered)
            files.append(name)
    return files


# ---------------------------------------------------------------- the world's register


def world_register(world: World) -> dict:
    """The register of the demo world's office: what a real office writes, made from the world.

    Every contract carries its framework's KPIs at their default terms, the PbR terms for CRC contracts,
    and the world's injected changes as dated variations (a renegotiation, a service redesign and a roll-out).
    """
    start = month_start(world.start)
    end = date(start.year + 5, start.month, 1)
    variations: dict[str, list[dict]] = {}
    for effect in world.truth["its_effects"]:
        variations.setdefault(effect["contract_id"], []).append({
            "date": month_start(effect["intervention"]), "kind": "renegotiation", "kpi": effect["measure"],
            "description": f"Contract renegotiated from {month_label(world.start, ITS_MONTH)}: sentence-planning resources "
                           "increased and the service level restated."})
    for effect in world.truth.get("rollout_effects", []):
        for adopter in effect["areas"]:
            variations.setdefault(adopter["contract_id"], []).append({
                "date": month_start(adopter["start"]), "kind": "rollout", "kpi": effect["measure"],
                "description": f"The employment-support service (ETE brokerage on release) started in this area from "
                               f"{adopter['start']}, as part of its staggered roll-out across areas."})
    crc_of_area = {c.area.code: c.id for c in world.contracts if c.service_type == "crc"}
    for effect in world.truth["synth_effects"]:
        variations.setdefault(crc_of_area[effect["area_code"]], []).append({
            "date": month_start(effect["intervention"]), "kind": "service_redesign", "kpi": effect["measure"],
            "description": f"The area redesigned its probation pathway from {effect['intervention']} (co-commissioned "
                           "completion support); other areas did not."})
    contracts = []
    for contract in world.contracts:
        crc = contract.service_type == "crc"
        kpis = [{"code": m.code, "target": m.default_target, "tolerance": m.default_tolerance,
                 "min_volume": m.min_volume, "service_credit_pct": m.service_credit_pct}
                for m in measures_for(contract.service_type) + (measures_for("reoffending") if crc else [])]
        payment = {"service_credit_cap_pct": 10.0}
        if crc:
            payment.update({"pbr_price_per_reoffender_gbp": 3000.0, "pbr_threshold_points": 2.0,
                            "pbr_requires_significance": True, "pbr_frequency_price_gbp": 800.0,
                            "pbr_frequency_threshold_pct": 10.0})
        contracts.append({
            "id": contract.id, "name": f"{SERVICE_NAMES[contract.service_type]}: {contract.area.name}",
            "area": contract.area.code, "provider": contract.provider_id, "service": contract.service_type,
            "start": start, "end": end, "annual_value_gbp": contract.annual_value_gbp, "kpis": kpis,
            "payment": payment, "variations": sorted(variations.get(contract.id, []), key=lambda v: v["date"]),
        })
    recipients = []
    for area in sorted(world.areas, key=lambda a: a.code):
        slug = area.name.lower().replace(" and ", "-").replace(" ", "-")
        recipients.append({"email": f"opcc@{slug}.example.org", "name": f"Office of the commissioner, {area.name}",
                           "scopes": [f"area:{area.code}"]})
        recipients.append({"email": f"contracts@{slug}.example.org", "name": f"Contract management team, {area.name}",
                           "scopes": sorted(f"contract:{c.id}" for c in world.contracts if c.area.code == area.code)})
    for provider_id, name, _kind, _service, _regions in sorted(world.providers):
        recipients.append({"email": f"performance@{provider_id}.example.org", "name": f"Performance team, {name}",
                           "scopes": [f"provider:{provider_id}"]})
    return {
        "office": {"name": "Synthetic demo office (all areas of the generated world)",
                   "areas": [area.code for area in world.areas]},
        "providers": [{"id": pid, "name": name, "kind": kind,
                       "return_mode": "aggregate" if pid in AGGREGATE_PROVIDERS else "person"}
                      for pid, name, kind, _service, _regions in world.providers]
                     + [{"id": SYSTEM_PROVIDER, "name": "Local Criminal Justice Boards (system measures)",
                         "kind": "other"}],
        "services": [],
        "contracts": contracts,
        "recipients": recipients,
    }


def load_world(settings, world: World, path: Path | None = None) -> dict:
    """Write the world's register (``var/register.yaml`` by default) and apply it as any office would."""
    from cjmonitor.pipeline import apply_register_file
    from contracts.register import to_yaml

    path = path or settings.var_dir / "register.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_yaml(world_register(world), header=(
        f"# The register of the synthetic demo world (seed {world.seed}, {len(world.areas)} areas, from {world.start}).\n"
        "# Written by `cjmonitor demo`; applied with `cjmonitor register apply`, like any office's.\n")))
    return apply_register_file(settings, path)


def all_measures() -> list[str]:
    return [measure.code for measure in MEASURES]


__all__ = [
    "World", "build_world", "generate_world", "cohort_rows", "month_label", "month_start", "month_end",
    "return_deadline", "MEASURES_BY_CODE", "SERVICE_NAMES", "all_measures",
]
