"""Fair judgements: an action rule with a stated false-alarm rate, controlled across KPIs and repeated looks.

A performance notice is an accusation, so the rule behind it must say how often it would accuse a provider
that is exactly on target. The monthly Wilson verdicts (and the rolling-year one) are looked at every month
on every KPI: a provider on target on 6 KPIs draws at least one rolling-year "not met" in about half of its
contract-years. They stay in the documents as descriptive figures.

The rule. For each contract x KPI, a one-sided binomial CUSUM (Page 1954; Reynolds & Stoumbos 1999) of the
monthly counts against the target ``p0``, tuned to a shortfall of ``DESIGN_SHORTFALL`` (5 points)::

    S_t = max(0, S_{t-1} + x_t log(p1 / p0) + (n_t - x_t) log((1 - p1) / (1 - p0)))

with ``p1 = p0 - 0.05`` for a higher-is-better KPI (``p0 + 0.05`` for lower-is-better). It signals when
``S_t`` exceeds a threshold ``h``, and restarts from 0 after a signal. ``h`` is set, for the KPI's
target and typical monthly volume, so that a provider exactly on target crosses it in at most
``alpha / K`` of contract-years (``K`` = the contract's KPIs, Bonferroni), hence in at most ``alpha``
(5%) of contract-years on any KPI. The CUSUM is the sequential test with the shortest delay for a given
false-alarm rate against a step change (Moustakides 1986), and it looks every month without inflating
the error, because its threshold is set for every look of the year.

Why this and not MDC assurance or alpha spending: assurance (the target outside the process limits)
has no stated false-alarm rate per year and reacts only once limits are recalculated; alpha spending
over 12 fixed looks needs a fixed schedule and restarts each year, where a CUSUM carries evidence over
from month to month and restarts only after a notice.

The threshold comes from a vectorised simulation (fixed seed, deterministic) of on-target years; see
:func:`cusum_threshold` and :func:`operating_characteristics`.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

ALPHA_PER_CONTRACT_YEAR = 0.05  # the stated ceiling
CALIBRATION_ALPHA = 0.045  # what thresholds are set to: a margin for the volume grid and the simulation error
DESIGN_SHORTFALL = 0.05
BURN_IN_MONTHS = 12  # the year measured follows a year of running, so the CUSUM may start above 0
CALIBRATION_YEARS = 10000


def _weights(p0: float, direction: str, shortfall: float) -> tuple[float, float, float]:
    p1 = p0 - shortfall if direction == "higher" else p0 + shortfall
    p1 = float(np.clip(p1, 1e-4, 1 - 1e-4))
    p0 = float(np.clip(p0, 1e-4, 1 - 1e-4))
    return np.log(p1 / p0), np.log((1 - p1) / (1 - p0)), p1


def cusum_path(numerators, denominators, p0: float, direction: str, h: float | None = None,
               shortfall: float = DESIGN_SHORTFALL) -> tuple[np.ndarray, np.ndarray]:
    """The CUSUM statistic month by month, and where it signals (restarting from 0 after each signal).

    Arrays may be 1-D (one series) or 2-D (simulations x months): the recursion runs along the last axis.
    """
    x = np.asarray(numerators, dtype=float)
    n = np.asarray(denominators, dtype=float)
    a, b, _ = _weights(p0, direction, shortfall)
    increments = x * a + (n - x) * b
    s = np.zeros(increments.shape[:-1])
    path = np.empty_like(increments)
    signals = np.zeros(increments.shape, dtype=bool)
    for t in range(increments.shape[-1]):
        s = np.maximum(0.0, s + increments[..., t])
        path[..., t] = s
        if h is not None:
            hit = s > h
            signals[..., t] = hit
            s = np.where(hit, 0.0, s)
    return path, signals


def _simulate(p: float, n: int, months: int, sims: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.binomial(n, p, size=(sims, months)).astype(float)


# The calibration's identity: a stored threshold is reused only by the same simulation (constants, seed and the
# numpy whose binomial stream drew it). Bump CALIBRATION_VERSION whenever the simulation changes.
CALIBRATION_VERSION = 1


def _calibration_id() -> str:
    return f"v{CALIBRATION_VERSION} numpy {np.__version__} burn-in {BURN_IN_MONTHS}"


class ThresholdStore:
    """Thresholds already simulated, kept in a JSON file shared by every process of a home (documents, the
    DAG's tasks, the CLI). A threshold is a deterministic function of its key, so the file is a cache only:
    deleting it changes no figure, and a file from another calibration (:data:`CALIBRATION_VERSION`, numpy) is
    ignored. Writes merge under a lock and replace the file atomically, so concurrent processes lose nothing."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.values: dict[str, float] = {}
        self.new: dict[str, float] = {}
        self.values.update(self._read())

    def _read(self) -> dict[str, float]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:  # a damaged cache is recomputed, not trusted
            log.warning("ignoring the threshold cache %s (%s): its thresholds are simulated again", self.path, exc)
            return {}
        if not isinstance(data, dict) or data.get("calibration") != _calibration_id():
            return {}
        return {str(k): float(v) for k, v in data.get("thresholds", {}).items()}

    def save(self) -> int:
        """Write the thresholds simulated since the last save; returns how many."""
        if not self.new:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            merged = self._read()
            merged.update(self.new)
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"calibration": _calibration_id(), "thresholds": merged}, sort_keys=True))
            os.replace(tmp, self.path)
        self.values.update(merged)
        saved, self.new = len(self.new), {}
        return saved


_store: ThresholdStore | None = None


def use_threshold_store(path: Path | None) -> ThresholdStore | None:
    """Read (and later write) thresholds through the file at ``path`` in this process; ``None`` stops. Calling it
    again with the same path keeps what is already loaded."""
    global _store
    if path is None:
        _store = None
    elif _store is None or _store.path != Path(path):
        _store = ThresholdStore(path)
    return _store


def save_threshold_store() -> int:
    """Write this process's newly simulated thresholds to the store in use (none in use: nothing to do)."""
    return _store.save() if _store is not None else 0


@lru_cache(maxsize=4096)
def cusum_threshold(p0: float, n: int, direction: str, kpis: int, alpha: float = CALIBRATION_ALPHA,
                    shortfall: float = DESIGN_SHORTFALL, sims: int = CALIBRATION_YEARS, seed: int = 18) -> float:
    """The threshold ``h`` with P(a signal in a contract-year | on target) = ``alpha / kpis`` at ``n`` a month.

    Simulated: ``sims`` on-target runs of a burn-in year and the year measured; ``h`` is the
    ``1 - alpha / kpis`` quantile of the CUSUM's maximum over the measured year (a run that has not signalled
    in the burn-in carries its statistic into the year; the few that did restart, which only lowers the rate).
    About 15 ms each; a :class:`ThresholdStore` in use (:func:`use_threshold_store`) keeps them across processes.
    """
    n = max(int(round(n)), 1)
    key = f"{p0!r}|{n}|{direction}|{kpis}|{alpha!r}|{shortfall!r}|{sims}|{seed}"
    if _store is not None and key in _store.values:
        return _store.values[key]
    x = _simulate(p0, n, BURN_IN_MONTHS + 12, sims, seed)
    path, _ = cusum_path(x, np.full_like(x, n), p0, direction, None, shortfall)
    year_max = path[:, BURN_IN_MONTHS:].max(axis=1)
    h = float(np.quantile(year_max, 1 - alpha / kpis))
    if _store is not None:
        _store.values[key] = h
        _store.new[key] = h
    return h


def operating_characteristics(kpis: list[tuple[float, int, str]], *, sims: int = 2000, seed: int = 7,
                              alpha: float = CALIBRATION_ALPHA) -> dict:
    """Measured on ``sims`` simulated contract-years of one contract whose KPIs are ``(target, cases a month,
    direction)`` (independent of the calibration's seed; vectorised, about a second):

    * ``false_alarm_per_contract_year``: P(at least one signal on any KPI in a year), every KPI on target, after a
      burn-in year;
    * for shortfalls of 3 and 5 points starting in the year's first month: ``one_kpi`` (only the first KPI falls
      short; P(its signal within 6 months) and the median months to it) and ``every_kpi`` (the provider falls
      short on all of them; P(a signal on any within 6 months)).
    """
    rng = np.random.default_rng(seed)
    k = len(kpis)
    # The deployed rule's threshold: the target to 2 decimals and the volume on the calibration grid.
    thresholds = [cusum_threshold(round(float(p0), 2), volume_grid(n), d, k, alpha) for p0, n, d in kpis]
    on_target = np.zeros((sims, BURN_IN_MONTHS + 12), dtype=bool)
    for (p0, n, d), h in zip(kpis, thresholds, strict=True):
        n = max(int(round(n)), 1)
        x = rng.binomial(n, p0, size=(sims, BURN_IN_MONTHS + 12)).astype(float)
        on_target |= cusum_path(x, np.full_like(x, n), p0, d, h)[1]
    out = {"kpis": [{"target": float(p0), "cases_per_month": int(round(n)), "direction": d, "threshold": h}
                    for (p0, n, d), h in zip(kpis, thresholds, strict=True)],
           "simulated_contract_years": sims,
           "false_alarm_per_contract_year": float(on_target[:, BURN_IN_MONTHS:].any(axis=1).mean())}
    for points in (3, 5):
        firsts = []
        for (p0, n, d), h in zip(kpis, thresholds, strict=True):
            n = max(int(round(n)), 1)
            p = float(np.clip(p0 - points / 100 if d == "higher" else p0 + points / 100, 0, 1))
            y = rng.binomial(n, p, size=(sims, 24)).astype(float)
            hit = cusum_path(y, np.full_like(y, n), p0, d, h)[1]
            firsts.append(np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, 10**6))
        one = firsts[0]
        anyone = np.min(firsts, axis=0)
        median = float(np.median(one))
        out[f"shortfall_{points}"] = {
            "one_kpi": {"detected_within_6_months": float((one <= 6).mean()),
                        "median_months_to_detect": None if median > 24 else median},
            "every_kpi": {"detected_within_6_months": float((anyone <= 6).mean()),
                          "median_months_to_detect": float(np.median(anyone)) if np.median(anyone) <= 24 else None}}
    return out


def volume_grid(n: float) -> int:
    """The calibration volume: exact below 20 cases a month, else the nearest point of a geometric grid with 5%
    steps (20, 21, 22, 23, 24, 26, ...). Thresholds change slowly with volume, so a run's documents share about a hundred
    calibrations rather than one per KPI; the simulation test measures the rule with the grid, at the true volume."""
    n = max(int(round(n)), 1)
    if n < 20:
        return n
    step = np.log(1.05)
    return int(round(20 * np.exp(round(np.log(n / 20) / step) * step)))


def shortfall_signal(numerators, denominators, p0: float, direction: str, kpis: int) -> dict:
    """The CUSUM rule on one KPI's months (oldest first): is there a signal in the latest month?

    Calibrated at the series' median monthly volume. Returns ``signal`` (bool, this month), ``statistic``,
    ``threshold``, ``months`` and ``signals`` (positions of every signal in the series).
    """
    x = np.asarray(numerators, dtype=float)
    n = np.asarray(denominators, dtype=float)
    keep = n > 0
    x, n = x[keep], n[keep]
    if len(n) == 0:
        return {"signal": False, "statistic": 0.0, "threshold": None, "months": 0, "signals": []}
    h = cusum_threshold(round(float(p0), 2), volume_grid(float(np.median(n))), direction, int(kpis))
    path, signals = cusum_path(x, n, p0, direction, h)
    return {"signal": bool(signals[-1]), "statistic": float(path[-1]), "threshold": h, "months": int(len(n)),
            "signals": [int(i) for i in np.flatnonzero(signals)]}


def contract_signals(monthly, period: str) -> dict[str, dict]:
    """The CUSUM rule for every KPI of one contract as of ``period``: ``{measure_code: {...}}``.

    ``monthly`` is :func:`contracts.judge.judged_months` for the contract (period, numerator, denominator,
    target, direction). Each KPI's CUSUM runs over the months since its target last changed (a new target is a
    new question), calibrated for the contract's number of KPIs with data. Adds ``signal_periods`` (every
    signal), ``last_signal`` and ``in_last_12`` (a signal within the 12 months to ``period``).
    """
    import pandas as pd

    if monthly is None or len(monthly) == 0:
        return {}
    rows = monthly[(monthly["period"] <= period) & (monthly["denominator"] > 0)].sort_values("period")
    if "kind" in rows.columns:
        # The rule is a binomial CUSUM on proportions: a declared service's counts and medians (days) have no
        # binomial model, so they get no shortfall rule (their XmR chart and assurance icon still judge them).
        rows = rows[rows["kind"].fillna("proportion").isin(["proportion"])]
    codes = sorted(rows["measure_code"].unique())
    first_of_year = str(pd.Period(period, "M") - 11)
    out = {}
    for code in codes:
        series = rows[rows["measure_code"] == code]
        target = float(series["target"].iloc[-1])
        changed = series["target"].to_numpy(dtype=float) != target
        if changed.any():
            series = series.iloc[int(np.flatnonzero(changed)[-1]) + 1:]
        result = shortfall_signal(series["numerator"], series["denominator"], target, series["direction"].iloc[0],
                                  len(codes))
        periods = list(series["period"])
        result["signal_periods"] = [periods[i] for i in result.pop("signals")]
        result["signal"] = bool(result["signal"] and periods[-1] == period)
        result["last_signal"] = result["signal_periods"][-1] if result["signal_periods"] else None
        result["in_last_12"] = bool(result["last_signal"] and result["last_signal"] >= first_of_year)
        result["from"] = periods[0] if periods else None
        result["kpis"] = len(codes)
        out[code] = result
    return out
