"""The criminal-justice pathway for one area, from the stored system measures (issue #19).

Stages (``contracts/pathway.yaml``): recorded crime -> charge -> first hearing -> conviction ->
custody or community sentence -> completed order -> proven reoffending. For each stage: its volume
over the window (the ``months`` months ending at the period), the conversion from the previous stage
and its attrition, its timeliness, its trend (against the same window a year earlier), and the area
against the national figure (every area in the data) and against its most similar areas (nearest
neighbours on declared criteria, ``similar_areas`` in the same file, with ``area_profiles.csv``).

Stages are flows in the same months, not one cohort followed through the system: a conversion
compares volumes and says so. Counts are as stored; disclosure control is applied when the view is
published (``reports.pathway``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from contracts.errors import ContractsError

PATHWAY_PATH = Path(__file__).resolve().parent / "pathway.yaml"


class PathwayError(ContractsError):
    """The pathway cannot be built: a period, area or stage definition is wrong or its data are missing."""


@dataclass(frozen=True)
class Part:
    agency: str
    measure: str
    part: str = "value"  # numerator, denominator, value


@dataclass(frozen=True)
class StageDef:
    stage: str
    label: str
    volume: tuple[Part, ...]
    timeliness: tuple[Part, ...] = ()
    rate_of: tuple[Part, ...] = ()
    lagging: bool = False


@dataclass(frozen=True)
class SimilarityDef:
    data: Path
    k: int
    criteria: tuple[tuple[str, str, float], ...]  # column, transform, weight
    sources: dict[str, str]


@dataclass(frozen=True)
class PathwayDef:
    stages: tuple[StageDef, ...]
    similarity: SimilarityDef


def _parts(items, where: str) -> tuple[Part, ...]:
    out = []
    for index, item in enumerate(items or ()):
        if not isinstance(item, dict) or "agency" not in item or "measure" not in item:
            raise PathwayError(f"{where}[{index}]: each part needs an agency and a measure")
        part = item.get("part", "value")
        if part not in ("numerator", "denominator", "value"):
            raise PathwayError(f"{where}[{index}]: part '{part}' must be numerator, denominator or value")
        out.append(Part(item["agency"], item["measure"], part))
    return tuple(out)


@lru_cache(maxsize=4)
def load_pathway(path: Path | None = None) -> PathwayDef:
    path = path or PATHWAY_PATH
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PathwayError(f"{path}: cannot be read as YAML ({exc})") from None
    stages = []
    for index, entry in enumerate(data.get("stages") or ()):
        where = f"{path}: stages[{index}]"
        if not entry.get("volume"):
            raise PathwayError(f"{where}: a stage needs its volume parts")
        stages.append(StageDef(stage=entry["stage"], label=entry.get("label", entry["stage"]),
                               volume=_parts(entry["volume"], f"{where}.volume"),
                               timeliness=_parts(entry.get("timeliness"), f"{where}.timeliness"),
                               rate_of=_parts(entry.get("rate_of"), f"{where}.rate_of"),
                               lagging=bool(entry.get("lagging", False))))
    similar = data.get("similar_areas") or {}
    criteria = tuple((c["column"], c.get("transform", "none"), float(c.get("weight", 1.0)))
                     for c in similar.get("criteria") or ())
    if not criteria:
        raise PathwayError(f"{path}: similar_areas.criteria must declare at least one criterion")
    return PathwayDef(stages=tuple(stages), similarity=SimilarityDef(
        data=path.parent / similar.get("data", "area_profiles.csv"), k=int(similar.get("k", 7)), criteria=criteria,
        sources=dict(similar.get("sources") or {})))


def load_profiles(similarity: SimilarityDef) -> pd.DataFrame:
    """The areas' figures for the similarity criteria (density derived from population and land area)."""
    with similarity.data.open(newline="", encoding="utf-8") as handle:
        frame = pd.DataFrame(list(csv.DictReader(handle)))
    for column in frame.columns:
        if column not in ("area_code", "name"):
            frame[column] = pd.to_numeric(frame[column])
    frame["density"] = frame["population_m"] * 1e6 / frame["area_km2"]
    return frame.set_index("area_code")


def most_similar(area_code: str, profiles: pd.DataFrame, similarity: SimilarityDef,
                 among: list[str] | None = None) -> list[tuple[str, float]]:
    """The ``k`` nearest areas (code, distance) on the standardised, weighted criteria; ties by code."""
    if area_code not in profiles.index:
        raise PathwayError(f"area {area_code} has no row in {similarity.data.name}")
    columns = []
    for column, transform, weight in similarity.criteria:
        if column not in profiles.columns:
            raise PathwayError(f"similarity criterion '{column}' is not a column of {similarity.data.name}")
        values = profiles[column].astype(float)
        values = np.log(values) if transform == "log" else values
        columns.append(weight * (values - values.mean()) / values.std(ddof=0))
    z = pd.concat(columns, axis=1)
    distance = np.sqrt(((z - z.loc[area_code]) ** 2).sum(axis=1)).drop(area_code)
    if among is not None:
        distance = distance[distance.index.isin(among)]
    ordered = sorted(distance.items(), key=lambda item: (round(item[1], 12), item[0]))
    return [(code, float(d)) for code, d in ordered[: similarity.k]]


def _months_back(period: str, n: int) -> list[str]:
    year, month = int(period[:4]), int(period[5:7])
    total = year * 12 + month - 1
    return [f"{(total - i) // 12:04d}-{(total - i) % 12 + 1:02d}" for i in range(n - 1, -1, -1)]


@dataclass(frozen=True)
class Comparison:
    per_1000: float | None  # volume per 1,000 people
    conversion: float | None  # volume / the previous stage's volume
    rate: float | None  # for stages with a rate_of base (reoffending): volume / base
    timeliness: dict[str, float]


@dataclass(frozen=True)
class StageFigures:
    stage: str
    label: str
    window: tuple[str, str]
    volume: float | None
    previous_volume: float | None
    conversion: float | None
    attrition: float | None  # 1 - conversion
    base: float | None  # the rate's base (the reoffending cohort)
    rate: float | None
    timeliness: dict[str, float]  # measure label -> days (cases-weighted mean of the monthly medians)
    trend: float | None  # volume against the same window a year earlier, as a ratio minus 1
    national: Comparison
    similar: Comparison
    parts: tuple[dict, ...]  # the stored figures summed: agency, measure, part, months, total
    breakdowns: tuple[dict, ...]  # breakdown, group, numerator, denominator (summed over the window)
    note: str = ""


@dataclass(frozen=True)
class PathwayView:
    area_code: str
    period: str
    months: int
    stages: tuple[StageFigures, ...]
    similar_areas: tuple[tuple[str, float], ...]
    criteria: tuple[tuple[str, str, float], ...]
    sources: dict[str, str]
    population_m: float
    warnings: tuple[str, ...] = field(default_factory=tuple)
    caveat: str = ("Stages are flows in the same months, not one group of people followed through the system; "
                   "conversions compare volumes.")

    def to_dict(self) -> dict:
        return {"area_code": self.area_code, "period": self.period, "months": self.months,
                "population_m": self.population_m, "caveat": self.caveat,
                "similar_areas": [{"area_code": c, "distance": round(d, 3)} for c, d in self.similar_areas],
                "criteria": [{"column": c, "transform": t, "weight": w} for c, t, w in self.criteria],
                "sources": self.sources, "warnings": list(self.warnings),
                "stages": [_stage_dict(s) for s in self.stages]}


def _stage_dict(stage: StageFigures) -> dict:
    def comparison(c: Comparison) -> dict:
        return {"per_1000": c.per_1000, "conversion": c.conversion, "rate": c.rate, "timeliness": c.timeliness}

    return {"stage": stage.stage, "label": stage.label, "window": list(stage.window), "volume": stage.volume,
            "conversion": stage.conversion, "attrition": stage.attrition, "base": stage.base, "rate": stage.rate,
            "timeliness": stage.timeliness, "trend": stage.trend, "national": comparison(stage.national),
            "similar": comparison(stage.similar), "parts": list(stage.parts), "breakdowns": list(stage.breakdowns),
            "note": stage.note}


class PathwayStore:
    """Whole-area figures as area x month arrays per (agency, measure) for sums over areas and months, and the
    breakdown rows per area.

    An LCJB run builds every area's pathway from the same stored frame, so it builds the store once
    (``reports.system_index.SystemIndex``) and passes it to :func:`build_pathway`; reindexing a MultiIndex for each of a
    pack's ~400 sums had cost about a quarter of a second a pack."""

    COLUMNS = ("numerator", "denominator", "value")

    def __init__(self, monthly: pd.DataFrame):
        self.monthly = monthly
        self.area_list = sorted(monthly["area_code"].unique().tolist())
        blank = monthly["breakdown"].fillna("") == ""
        whole = monthly[blank]
        key = ["agency", "measure", "area_code", "period"]
        doubled = whole[whole.duplicated(key, keep=False)]
        if not doubled.empty:
            first = doubled.iloc[0]
            raise PathwayError(f"system measure {first['agency']}.{first['measure']} is stored twice for "
                               f"{first['area_code']} {first['period']}: reload the cjs_system_measures return")
        self.areas = {a: i for i, a in enumerate(sorted(whole["area_code"].unique()))}
        self.months = {m: j for j, m in enumerate(sorted(whole["period"].unique()))}
        rows = whole["area_code"].map(self.areas).to_numpy()
        cols = whole["period"].map(self.months).to_numpy()
        values = {c: pd.to_numeric(whole[c], errors="coerce").to_numpy(dtype=float) for c in self.COLUMNS}
        self.arrays: dict[tuple[str, str], dict[str, np.ndarray]] = {}
        for (agency, measure), at in whole.groupby(["agency", "measure"], sort=False).indices.items():
            arrays = {}
            for column in self.COLUMNS:
                grid = np.full((len(self.areas), len(self.months)), np.nan)
                grid[rows[at], cols[at]] = values[column][at]
                arrays[column] = grid
            self.arrays[(agency, measure)] = arrays
        groups = monthly[~blank]
        self._groups = {area: rows for area, rows in groups.groupby("area_code", sort=False)}
        self._no_groups = groups.iloc[0:0]

    def groups(self, area_code: str) -> pd.DataFrame:
        return self._groups.get(area_code, self._no_groups)

    def _cells(self, part: Part, areas: list[str], months: list[str], column: str) -> tuple[np.ndarray, int] | None:
        """The stored cells of ``column`` over areas x months (NaN where missing), and how many cells were asked."""
        arrays = self.arrays.get((part.agency, part.measure))
        if arrays is None:
            return None
        rows = [self.areas[a] for a in areas if a in self.areas]
        cols = [self.months[m] for m in months if m in self.months]
        return arrays[column][np.ix_(rows, cols)], len(areas) * len(months)

    def total(self, part: Part, areas: list[str], months: list[str]) -> tuple[float | None, int]:
        """The part summed over areas x months, and how many area-months carried it (None if any is missing)."""
        found = self._cells(part, areas, months, part.part)
        if found is None:
            return None, 0
        cells, asked = found
        present = int(np.count_nonzero(~np.isnan(cells)))
        if present < asked:
            return None, present
        return float(cells.sum()), asked

    def median_days(self, part: Part, areas: list[str], months: list[str]) -> float | None:
        found = self._cells(part, areas, months, "value")
        if found is None:
            return None
        values, asked = found
        if np.count_nonzero(~np.isnan(values)) < asked:
            return None
        weights = self._cells(part, areas, months, "denominator")[0]
        weights = np.where(np.isnan(weights), 1.0, weights)
        return float((values * weights).sum() / weights.sum()) if weights.sum() > 0 else None


def _ratio(top: float | None, bottom: float | None) -> float | None:
    if top is None or bottom is None or bottom == 0:
        return None
    return top / bottom


def build_pathway(frame: pd.DataFrame, area_code: str, period: str, *, months: int = 3,
                  population_m: dict[str, float] | None = None, definition: PathwayDef | None = None,
                  profiles: pd.DataFrame | None = None, labels: dict[tuple[str, str], str] | None = None,
                  store: PathwayStore | None = None) -> PathwayView:
    """The pathway view of ``area_code`` for the ``months`` months ending at ``period`` (YYYY-MM).

    ``frame`` holds stored system measures (``contracts.system.read_system_measures(..., breakdowns=True)``)
    for every area to compare with; ``population_m`` per area defaults to the profiles file's. ``store``: the
    frame's monthly rows already indexed (``PathwayStore``), when many areas are built from one frame.
    """
    definition = definition or load_pathway()
    profiles = profiles if profiles is not None else load_profiles(definition.similarity)
    if len(period) != 7 or period[4] != "-":
        raise PathwayError(f"period '{period}' must be a month written YYYY-MM")
    if store is not None:
        monthly = store.monthly
    else:
        monthly = frame[frame["period_type"] == "month"] if "period_type" in frame.columns else frame
    if monthly.empty:
        raise PathwayError("no monthly system measures are stored: load a cjs_system_measures return first")
    areas = store.area_list if store is not None else sorted(monthly["area_code"].unique().tolist())
    if area_code not in areas:
        raise PathwayError(f"no system measures are stored for area {area_code}")
    population = dict(population_m or profiles["population_m"].to_dict())
    missing_population = [a for a in areas if a not in population]
    if missing_population:
        raise PathwayError(f"no population for {', '.join(missing_population)}: add it to {definition.similarity.data.name}")
    similar = most_similar(area_code, profiles, definition.similarity, among=areas)
    similar_codes = [code for code, _ in similar]
    store = store if store is not None else PathwayStore(monthly)  # after the checks above
    labels = labels or {}
    window = _months_back(period, months)
    warnings: list[str] = []
    stages: list[StageFigures] = []
    previous = {"area": None, "national": None, "similar": None}
    for stage in definition.stages:
        stage_window, note = window, ""
        volume, _ = _sum(store, stage.volume, [area_code], stage_window)
        if volume is None and stage.lagging:
            for back in range(1, 25):
                candidate = _months_back(_months_back(period, back + 1)[0], months)
                if _sum(store, stage.volume, [area_code], candidate)[0] is not None:
                    stage_window = candidate
                    volume = _sum(store, stage.volume, [area_code], candidate)[0]
                    note = (f"published later than the other stages: the latest published window, "
                            f"{candidate[0]} to {candidate[-1]}, is shown")
                    break
        if volume is None:
            warnings.append(f"{stage.label}: not stored for {area_code} in every month {window[0]} to {window[-1]}")
        sets = {"area": [area_code], "national": areas, "similar": similar_codes}
        volumes = {name: _sum(store, stage.volume, codes, stage_window)[0] for name, codes in sets.items()}
        volumes["area"] = volume
        bases = {name: _sum(store, stage.rate_of, codes, stage_window)[0] if stage.rate_of else None
                 for name, codes in sets.items()}
        timeliness = {name: {labels.get((p.agency, p.measure), f"{p.agency}.{p.measure}"):
                             store.median_days(p, codes, stage_window) for p in stage.timeliness}
                      for name, codes in sets.items()}
        comparisons = {}
        for name in ("national", "similar"):
            people = sum(population[c] for c in sets[name]) * 1000.0
            comparisons[name] = Comparison(
                per_1000=None if volumes[name] is None else volumes[name] / people,
                conversion=None if stage.lagging else _ratio(volumes[name], previous[name]),
                rate=_ratio(volumes[name], bases[name]),
                timeliness={k: v for k, v in timeliness[name].items() if v is not None})
        conversion = None if stage.lagging else _ratio(volume, previous["area"])
        before, _ = _sum(store, stage.volume, [area_code], _months_back(_months_back(stage_window[-1], 13)[0], months))
        parts = tuple({"agency": p.agency, "measure": p.measure, "part": p.part, "months": len(stage_window),
                       "total": _sum(store, (p,), [area_code], stage_window)[0]} for p in stage.volume)
        stages.append(StageFigures(
            stage=stage.stage, label=stage.label, window=(stage_window[0], stage_window[-1]), volume=volume,
            previous_volume=None if stage.lagging else previous["area"], conversion=conversion,
            attrition=None if conversion is None else 1.0 - conversion, base=bases["area"],
            rate=_ratio(volume, bases["area"]),
            timeliness={k: v for k, v in timeliness["area"].items() if v is not None},
            trend=None if before is None or volume is None or before == 0 else volume / before - 1.0,
            national=comparisons["national"], similar=comparisons["similar"], parts=parts,
            breakdowns=_breakdowns(store, stage.volume[0], area_code, stage_window), note=note))
        if not stage.lagging:
            previous = volumes
    return PathwayView(area_code=area_code, period=period, months=months, stages=tuple(stages),
                       similar_areas=tuple(similar), criteria=definition.similarity.criteria,
                       sources=definition.similarity.sources, population_m=population[area_code],
                       warnings=tuple(warnings))


def _sum(store: PathwayStore, parts: tuple[Part, ...], areas: list[str], months: list[str]) -> tuple[float | None, int]:
    total, count = 0.0, 0
    for part in parts:
        value, n = store.total(part, areas, months)
        if value is None:
            return None, count
        total += value
        count += n
    return total, count


def _breakdowns(store: PathwayStore, part: Part, area_code: str, months: list[str]) -> tuple[dict, ...]:
    groups = store.groups(area_code)
    if groups.empty:
        return ()
    rows = groups[(groups["agency"] == part.agency) & (groups["measure"] == part.measure)
                  & (groups["period"].isin(months))]
    if rows.empty:
        return ()
    complete = rows.groupby(["breakdown", "group"])["period"].nunique() == len(months)
    summed = rows.groupby(["breakdown", "group"])[["numerator", "denominator"]].sum(min_count=1)
    summed = summed[complete]
    return tuple({"breakdown": b, "group": g, "numerator": float(r.numerator), "denominator": float(r.denominator)}
                 for (b, g), r in summed.iterrows())
