"""Synthetic criminal-justice system measures for the demo world (issue #19).

Every catalogue measure (``contracts/system_measures.yaml``) for each area and month, at the
catalogue's national level (per million people for counts) with an area offset, a seasonal shape
shared by all areas, a national drift for the court backlogs, persistent (AR(1)) noise and
binomial/Poisson sampling noise. Two interdependencies are injected and recorded under the world's
truth key ``interdependencies``:

* police file quality in one area drops from month 20, and magistrates' ineffective trials there
  rise two months later (the effect runs through the file-quality series, lagged two months);
* Crown Court days from charge to completion rise in another area from month 16, and probation's
  order completions there fall three months later.

Proven reoffending is published about 18 months after the period, so its last 18 months are left
out, as in the real series. Breakdowns by sex, age band and ethnic group are generated for the
measures whose catalogue entry declares them; groups add up to the whole-area figure.

Everything here is synthetic. ``simulate_system(..., links=False)`` gives a world with no links, for
checking the false discovery rate of the interdependency analysis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from contracts.geography import AREAS, AREAS_BY_NAME, AreaInfo
from contracts.system import BREAKDOWN_GROUPS, SystemCatalogue, load_catalogue

SYSTEM_PROVIDER = "lcjb"  # file names: lcjb_cjs_system_measures_<YYYY-MM>.csv
REOFFENDING_PUBLICATION_LAG = 18

FILE_QUALITY_LINK = {
    "area": "West Midlands", "cause": ("police", "file_quality"), "effect": ("courts_magistrates", "ineffective_trial_rate"),
    "lag_months": 2, "from_month": 20, "cause_change": -20.0, "per_unit": -0.45,  # +9 points of ineffective trials
}
TIMELINESS_LINK = {
    "area": "West Yorkshire", "cause": ("courts_crown", "median_days_charge_to_completion"),
    "effect": ("probation", "order_completion_rate"), "lag_months": 3, "from_month": 16, "cause_change": 100.0,
    "per_unit": -0.1,  # -10 points of completed orders
}
LINKS = (FILE_QUALITY_LINK, TIMELINESS_LINK)

# Shares of each breakdown's groups (people dealt with by the system are mostly men and young adults).
GROUP_SHARES = {
    "sex": {"M": 0.85, "F": 0.15},
    "age_band": {"18-20": 0.08, "21-24": 0.12, "25-34": 0.33, "35-49": 0.33, "50+": 0.14},
    "ethnic_group": {"Asian": 0.08, "Black": 0.09, "Mixed": 0.05, "White": 0.74, "Other": 0.02, "Not stated": 0.02},
}
# Percent-point differences of a group's rate from the area's (a disproportionality to find in the view).
GROUP_DIFFERENCES = {("cps", "conviction_rate", "age_band", "18-20"): -4.0,
                     ("probation", "order_completion_rate", "age_band", "18-20"): -8.0}


def _month_label(start: str, offset: int) -> str:
    year, month = (int(part) for part in start.split("-"))
    total = year * 12 + (month - 1) + offset
    return f"{total // 12:04d}-{total % 12 + 1:02d}"


@dataclass
class SystemPanel:
    """Whole-area figures as arrays [measure, area, month]; NaN where a figure is not published."""

    keys: list[tuple[str, str]]
    units: list[str]
    area_codes: list[str]
    periods: list[str]
    numerator: np.ndarray
    denominator: np.ndarray
    value: np.ndarray
    interdependencies: list[dict] = field(default_factory=list)
    breakdowns: pd.DataFrame | None = None

    def frame(self, include_breakdowns: bool = True) -> pd.DataFrame:
        """The long cjs_system_measures frame."""
        m, a, t = self.value.shape
        index = np.indices((m, a, t)).reshape(3, -1)
        keep = ~np.isnan(self.value.reshape(-1))
        units = np.array(self.units)[index[0]]
        frame = pd.DataFrame({
            "area_code": np.array(self.area_codes)[index[1]],
            "period": np.array(self.periods)[index[2]],
            "agency": np.array([k[0] for k in self.keys])[index[0]],
            "measure": np.array([k[1] for k in self.keys])[index[0]],
            "numerator": self.numerator.reshape(-1),
            "denominator": self.denominator.reshape(-1),
            "value": self.value.reshape(-1),
            "unit": units,
            "breakdown": "",
            "group": "",
        })[keep]
        if include_breakdowns and self.breakdowns is not None:
            frame = pd.concat([frame, self.breakdowns], ignore_index=True)
        return frame.reset_index(drop=True)


def _ar1(rng: np.random.Generator, shape: tuple[int, ...], sd: float, phi: float) -> np.ndarray:
    """Stationary AR(1) noise along the last axis with marginal standard deviation ``sd``."""
    shocks = rng.normal(0.0, sd * np.sqrt(1 - phi**2), size=shape)
    out = np.empty(shape)
    out[..., 0] = rng.normal(0.0, sd, size=shape[:-1])
    for step in range(1, shape[-1]):
        out[..., step] = phi * out[..., step - 1] + shocks[..., step]
    return out


def _season(start: str, months: int, amplitude: float, peak_month: int) -> np.ndarray:
    first = int(start.split("-")[1]) - 1
    calendar = (np.arange(months) + first) % 12
    return amplitude * np.cos(2 * np.pi * (calendar - (peak_month - 1)) / 12.0)


SEASONS = {  # (amplitude as a share of the level for counts or in the value's unit, peak month)
    ("police", "recorded_crime"): (0.06, 7),
    ("prisons", "releases_to_area"): (0.05, 3),
    ("courts_magistrates", "ineffective_trial_rate"): (1.0, 1),  # winter illness, listing gaps
    ("courts_crown", "ineffective_trial_rate"): (1.2, 1),
    ("courts_crown", "median_days_charge_to_completion"): (6.0, 9),  # summer vacation
    ("probation", "order_completion_rate"): (-0.8, 12),
}
DRIFT = {("courts_crown", "outstanding_caseload"): 0.006, ("courts_magistrates", "outstanding_caseload"): 0.002,
         ("prisons", "remand_population"): 0.004}  # national growth per month (share of the level)


def simulate_system(areas: list[AreaInfo] | None = None, *, months: int = 36, start: str = "2023-01", seed: int = 20231,
                    links: bool = True, breakdowns: bool = True, catalogue: SystemCatalogue | None = None,
                    scale: float = 1.0) -> SystemPanel:
    """Generate every catalogue measure for ``areas`` x ``months`` (all 42 areas by default)."""
    catalogue = catalogue or load_catalogue()
    areas = list(areas or AREAS)
    rng = np.random.default_rng([seed, 19])
    measures = catalogue.measures
    m_count, a_count = len(measures), len(areas)
    population = np.array([area.population_m for area in areas]) * scale
    codes = [area.code for area in areas]
    periods = [_month_label(start, i) for i in range(months)]
    t = np.arange(months)
    numerator = np.full((m_count, a_count, months), np.nan)
    denominator = np.full((m_count, a_count, months), np.nan)
    value = np.full((m_count, a_count, months), np.nan)
    index = {item.key: i for i, item in enumerate(measures)}
    rates: dict[tuple[str, str], np.ndarray] = {}  # underlying level [area, month] before sampling

    def level(item) -> np.ndarray:
        amp, peak = SEASONS.get(item.key, (0.0, 1))
        season = _season(start, months, amp, peak)
        noise = _ar1(rng, (a_count, months), item.noise, item.persistence)
        if item.unit == "count":
            offset = rng.normal(0.0, 0.12, size=(a_count, 1))
            drift = DRIFT.get(item.key, 0.0) * (t - months / 2)
            return item.national * np.exp(offset + season + drift + noise)
        offset = rng.normal(0.0, 0.08 * item.national, size=(a_count, 1))
        return item.national + offset + season + noise

    for item in measures:
        rates[item.key] = level(item)

    # Trial outcomes: ineffective and cracked drawn, effective the rest (they share a denominator).
    for court in ("courts_magistrates", "courts_crown"):
        eff, cra = rates[(court, "effective_trial_rate")], rates[(court, "cracked_trial_rate")]
        ine = rates[(court, "ineffective_trial_rate")]
        rates[(court, "effective_trial_rate")] = 100.0 - np.clip(ine, 1, 60) - np.clip(cra, 5, 70)
        del eff

    injected = []
    if links:
        for link in LINKS:
            area_index = next((i for i, area in enumerate(areas) if area.name == link["area"]), None)
            if area_index is None:
                continue
            cause, effect = rates[link["cause"]], rates[link["effect"]]
            reference = cause[area_index, : link["from_month"]].mean()
            cause[area_index] = cause[area_index] + link["cause_change"] * (t >= link["from_month"])
            lagged = np.full(months, 0.0)
            lag = link["lag_months"]
            lagged[lag:] = cause[area_index, :-lag] - reference
            effect[area_index] = effect[area_index] + link["per_unit"] * lagged
            if link["effect"][1] == "ineffective_trial_rate":  # the extra ineffective trials come out of effective ones
                court = link["effect"][0]
                rates[(court, "effective_trial_rate")][area_index] -= link["per_unit"] * lagged
            injected.append({
                "area_code": AREAS_BY_NAME[link["area"]].code,
                "cause": {"agency": link["cause"][0], "measure": link["cause"][1]},
                "effect": {"agency": link["effect"][0], "measure": link["effect"][1]},
                "lag_months": lag, "from": _month_label(start, link["from_month"]),
                "size": round(link["per_unit"] * link["cause_change"], 3),
                "cause_change": link["cause_change"], "per_unit": link["per_unit"],
            })

    for item in measures:
        i = index[item.key]
        expected = rates[item.key]
        if item.unit == "count":
            mean = np.clip(expected, 0, None) * population[:, None]
            stock = item.persistence >= 0.8  # stocks (caseloads, populations) are counted, not sampled
            counts = np.round(mean) if stock else rng.poisson(mean).astype(float)
            numerator[i], value[i] = counts, counts
            continue
        size = catalogue.denominators[item.key] * population[:, None] * np.ones((1, months))
        den = rng.poisson(size).astype(float)
        denominator[i] = den
        if item.unit == "percent":
            p = np.clip(expected, 0.2, 99.5) / 100.0
            if item.measure in ("cracked_trial_rate", "ineffective_trial_rate", "effective_trial_rate"):
                continue  # drawn together below
            num = rng.binomial(den.astype(np.int64), p).astype(float)
            numerator[i] = num
            value[i] = np.round(np.where(den > 0, 100.0 * num / np.where(den > 0, den, 1), 0.0), 4)
        else:  # a median in days: its sampling noise shrinks with the number of cases
            spread = 0.6 * item.national / np.sqrt(np.maximum(den, 1))
            value[i] = np.round(np.clip(expected + rng.normal(0, 1, size=den.shape) * spread, 1, None))

    for court in ("courts_magistrates", "courts_crown"):
        keys = [(court, name) for name in ("effective_trial_rate", "cracked_trial_rate", "ineffective_trial_rate")]
        den = denominator[index[keys[0]]]
        for key in keys[1:]:
            denominator[index[key]] = den
        probabilities = np.stack([np.clip(rates[key], 0.5, 99.0) for key in keys], axis=-1)
        probabilities = probabilities / probabilities.sum(axis=-1, keepdims=True)
        draws = rng.multinomial(den.astype(np.int64), probabilities)
        for j, key in enumerate(keys):
            num = draws[..., j].astype(float)
            numerator[index[key]] = num
            value[index[key]] = np.round(np.where(den > 0, 100.0 * num / np.where(den > 0, den, 1), 0.0), 4)

    reoffending = index.get(("probation", "proven_reoffending_rate"))
    if reoffending is not None:
        for array in (numerator, denominator, value):
            array[reoffending, :, months - REOFFENDING_PUBLICATION_LAG:] = np.nan

    panel = SystemPanel(keys=[item.key for item in measures], units=[item.unit for item in measures],
                        area_codes=codes, periods=periods, numerator=numerator, denominator=denominator,
                        value=value, interdependencies=injected)
    if breakdowns:
        panel.breakdowns = _breakdowns(rng, panel, catalogue)
    return panel


def _breakdowns(rng: np.random.Generator, panel: SystemPanel, catalogue: SystemCatalogue) -> pd.DataFrame:
    """Group figures that add up to the whole-area figure: counts split by shares, percents group by group.

    For a percent measure the group numerators are redrawn with the group's rate and the whole-area
    numerator set to their sum, so groups and whole always agree.
    """
    frames = []
    for i, key in enumerate(panel.keys):
        item = catalogue.get(*key)
        # The breakdown carrying a group difference is drawn first; the others share its whole-area numerator.
        order = sorted(item.breakdowns, key=lambda b: not any(k[:3] == (*key, b) for k in GROUP_DIFFERENCES))
        for breakdown in order:
            shares = GROUP_SHARES[breakdown]
            groups = [g for g in BREAKDOWN_GROUPS[breakdown] if g in shares]
            probabilities = np.array([shares[g] for g in groups])
            probabilities = probabilities / probabilities.sum()
            observed = ~np.isnan(panel.value[i])
            base = panel.denominator[i] if item.unit == "percent" else panel.numerator[i]
            totals = np.where(observed, base, 0).astype(np.int64)
            split = rng.multinomial(totals, probabilities)  # [area, month, group]
            if item.unit == "percent":
                overall = np.where(observed, panel.value[i], 0) / 100.0
                nums = np.stack([rng.binomial(split[..., j], np.clip(
                    overall + GROUP_DIFFERENCES.get((*key, breakdown, g), 0.0) / 100.0, 0.001, 0.999))
                    for j, g in enumerate(groups)], axis=-1)
                if breakdown == order[0]:
                    total_num = nums.sum(axis=-1).astype(float)
                    den = panel.denominator[i]
                    panel.numerator[i] = np.where(observed, total_num, np.nan)
                    panel.value[i] = np.where(observed, np.round(100.0 * total_num / np.where(den > 0, den, 1), 4), np.nan)
                else:  # the same whole-area numerator shared among this breakdown's groups at one rate
                    nums = _share_total(rng, split, np.where(observed, panel.numerator[i], 0).astype(np.int64))
            for j, group in enumerate(groups):
                a_idx, t_idx = np.nonzero(observed)
                den_g = split[a_idx, t_idx, j].astype(float)
                if item.unit == "percent":
                    num_g = nums[a_idx, t_idx, j].astype(float)
                    val = np.round(np.where(den_g > 0, 100.0 * num_g / np.where(den_g > 0, den_g, 1), 0.0), 4)
                    den_col = den_g
                else:
                    num_g, val, den_col = den_g, den_g, np.full(len(den_g), np.nan)
                frames.append(pd.DataFrame({
                    "area_code": np.array(panel.area_codes)[a_idx], "period": np.array(panel.periods)[t_idx],
                    "agency": key[0], "measure": key[1], "numerator": num_g, "denominator": den_col, "value": val,
                    "unit": item.unit, "breakdown": breakdown, "group": group,
                }))
    return pd.concat(frames, ignore_index=True) if frames else None


def _share_total(rng: np.random.Generator, dens: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Group numerators adding up to ``total``: a multivariate hypergeometric draw from the group denominators."""
    nums = np.zeros_like(dens)
    for a, t in zip(*np.nonzero(total), strict=True):
        nums[a, t] = rng.multivariate_hypergeometric(dens[a, t], int(total[a, t]))
    return nums


def write_system_measures(world, folder: Path) -> list[dict]:
    """Write the demo world's system measures, one return file a month, and return the injected links.

    Called by ``cjmonitor.demo.generate_world``; the files are ``lcjb_cjs_system_measures_<YYYY-MM>.csv``
    in ``folder`` (the drop folder), ingested like every other return (or stored with ``cjmonitor system load``).
    """
    panel = simulate_system(world.areas, months=world.months, start=world.start, seed=world.seed, scale=1.0)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"{SYSTEM_PROVIDER}_cjs_system_measures_*.csv"):
        old.unlink()
    frame = panel.frame()
    for period, part in frame.groupby("period", sort=True):
        part.to_csv(folder / f"{SYSTEM_PROVIDER}_cjs_system_measures_{period}.csv", index=False, float_format="%.10g")
    return panel.interdependencies
