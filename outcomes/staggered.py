"""Staggered difference-in-differences: Callaway & Sant'Anna (2021) group-time effects.

When areas adopt a service at different times and its effect changes with time since adoption, the
two-way fixed-effects (TWFE) regression ``y_it = a_i + l_t + b D_it`` is a weighted average of every
2x2 comparison, including "forbidden" ones that use already-treated areas as controls, with weights
that can be negative (Goodman-Bacon 2021, J Econometrics 225:254). Callaway & Sant'Anna (2021,
J Econometrics 225:200) estimate instead each group-time effect

    ATT(g, t) = E[Y_t - Y_{g-1} | G = g] - E[Y_t - Y_{g-1} | C]

for the cohort ``g`` first treated at time ``g``, against never-treated units (``control="never"``) or
units not yet treated by ``t`` (``control="notyet"``), under unconditional parallel trends and no
anticipation. Pre-treatment cells (``t < g``) use the previous period as base (R ``did``'s "varying"
base), so they test parallel trends. The cells are aggregated

* ``simple``: every post-treatment cell weighted by its cohort's size;
* by group: each cohort's average over its post-treatment periods, then weighted by cohort size;
* by event time ``e = t - g``: cells with the same ``e`` weighted by cohort size (the dynamic event study).

Inference uses each unit's influence function (so errors are clustered by unit), including the
estimation of the aggregation weights, as in R's ``did``: analytic standard errors, or a multiplier
bootstrap (Rademacher weights, IQR-based standard error, and a uniform sup-t band over event times).

The Goodman-Bacon decomposition of the TWFE estimate (:func:`bacon_decomposition`) shows which 2x2
comparisons drive it; its weighted sum equals the TWFE coefficient exactly on a balanced panel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy.stats import norm

from outcomes._groups_common import numeric_column, require_columns, require_complete
from outcomes.errors import OutcomesError
from outcomes.results import Estimate, Result

__all__ = ["StaggeredResult", "staggered_did", "bacon_decomposition", "twfe", "BaconResult"]

CONTROLS = ("never", "notyet")


@dataclass(frozen=True)
class Panel:
    """A balanced panel as arrays: Y (units x times), each unit's first-treated position (-1 = never)."""

    Y: np.ndarray
    first: np.ndarray  # position in ``times`` of first treatment; -1 never treated
    times: list
    units: list
    notes: tuple[str, ...]


def _panel(data: pd.DataFrame, unit: str, time: str, outcome: str, first_treated: str) -> Panel:
    require_columns(data, [unit, time, outcome])
    require_columns(data, [first_treated])
    require_complete(data, [unit, time, outcome])
    numeric_column(data[outcome], "outcome")
    if data.duplicated([unit, time]).any():
        raise OutcomesError(f"{int(data.duplicated([unit, time]).sum())} rows repeat a ({unit}, {time}) pair; "
                            f"give one row per unit and time")
    per_unit = data.groupby(unit, sort=False)[first_treated].nunique(dropna=False)
    if (per_unit > 1).any():
        raise OutcomesError(f"column {first_treated!r} must be the same in every row of a unit (the first period the "
                            f"unit was treated); it varies within {int((per_unit > 1).sum())} unit(s), e.g. "
                            f"{per_unit[per_unit > 1].index[0]!r}")
    wide = data.pivot(index=unit, columns=time, values=outcome).sort_index(axis=1)
    if wide.isna().any().any():
        bad = wide.index[wide.isna().any(axis=1)]
        raise OutcomesError(f"the panel is unbalanced: {len(bad)} unit(s) lack some periods (e.g. {bad[0]!r}); give "
                            f"every unit every period or drop those units")
    times = list(wide.columns)
    if len(times) < 3:
        raise OutcomesError(f"need at least 3 periods, got {len(times)}")
    position = {value: i for i, value in enumerate(times)}
    raw = data.drop_duplicates(unit).set_index(unit)[first_treated].reindex(wide.index)
    first = np.full(len(wide), -1, dtype=int)
    notes = []
    never = raw.isna() | (raw.astype(str).isin(["0", "0.0", "", "inf", "never"]))
    late = []
    for i, (name, value) in enumerate(raw.items()):
        if never.iloc[i]:
            continue
        key = _lookup(value, position)
        if key is not None:
            first[i] = key
        elif _after(value, times[-1]):
            late.append(name)
        else:
            raise OutcomesError(f"unit {name!r}: first-treated value {value!r} in {first_treated!r} is not one of the "
                                f"values of {time!r} ({times[0]!r} to {times[-1]!r}); use 0 or blank for never treated")
    if late:
        notes.append(f"{len(late)} unit(s) are first treated after the last period and count as never treated")
    always = first == 0
    if always.any():
        notes.append(f"{int(always.sum())} unit(s) treated from the first period have no pre-treatment period and "
                     f"are left out")
    keep = ~always
    if (first[keep] > 0).sum() == 0:
        raise OutcomesError("no unit is treated during the panel: nothing to estimate")
    Y = wide.to_numpy(dtype=float)[keep]
    return Panel(Y, first[keep], times, [u for u, k in zip(wide.index, keep, strict=True) if k], tuple(notes))


def _lookup(value, position: dict) -> int | None:
    """The position of a first-treated value among the times: exact, else numerically equal, else as text."""
    if value in position:
        return position[value]
    for time, i in position.items():
        try:
            if float(value) == float(time):
                return i
        except (TypeError, ValueError):
            if str(value) == str(time):
                return i
    return None


def _after(value, last) -> bool:
    try:
        return value > last
    except TypeError:
        try:
            return float(value) > float(last)
        except (TypeError, ValueError):
            return False


def _group_time(Y: np.ndarray, first: np.ndarray, control: str):
    """ATT(g, t) for every cohort g and period t (except the first), with each unit's influence function.

    Returns (cells, psi): ``cells`` a list of (g, t) positions, ``psi`` an (n units x cells) matrix with
    ATT(g,t) = att[k] and ATT_hat - ATT ~ mean(psi[:, k]).
    """
    n, T = Y.shape
    groups = sorted(set(first[first > 0].tolist()))
    never = first < 0
    cells, atts, psis = [], [], []
    for g in groups:
        in_g = first == g
        p_g = in_g.mean()
        t_idx = np.arange(1, T)
        base = np.where(t_idx >= g, g - 1, t_idx - 1)
        dY = Y[:, t_idx] - Y[:, base]  # (n, T-1)
        if control == "never":
            ctrl = np.broadcast_to(never[:, None], dY.shape)
        else:
            horizon = np.maximum(t_idx, base)
            ctrl = never[:, None] | ((first[:, None] > horizon[None, :]) & (first != g)[:, None])
        n_c = ctrl.sum(axis=0)
        ok = n_c > 0
        mu_g = dY[in_g].mean(axis=0)
        mu_c = np.where(ok, (dY * ctrl).sum(axis=0) / np.maximum(n_c, 1), np.nan)
        p_c = n_c / n
        att = mu_g - mu_c
        psi = (in_g[:, None] * (dY - mu_g) / p_g) - ctrl * (dY - mu_c) / np.where(ok, p_c, 1)
        for j in np.flatnonzero(ok):
            cells.append((g, int(t_idx[j])))
            atts.append(att[j])
            psis.append(psi[:, j])
    if not cells:
        raise OutcomesError("no group-time effect can be estimated: no comparison units (try control='notyet' or "
                            "add never-treated units)")
    return cells, np.asarray(atts), np.column_stack(psis)


def _aggregate(select: np.ndarray, cells: list, att: np.ndarray, psi: np.ndarray, first: np.ndarray):
    """Cohort-size-weighted mean of the selected cells, and its influence function including the weights'."""
    g_of = np.array([c[0] for c in cells])[select]
    pg = np.array([(first == g).mean() for g in g_of])
    total = pg.sum()
    w = pg / total
    est = float(w @ att[select])
    # d w_k: indicator of unit i in cohort g_k, centred, through the normalisation.
    ind = (first[:, None] == g_of[None, :]).astype(float) - pg[None, :]
    dw = ind / total - np.outer(ind.sum(axis=1), pg) / total**2
    influence = psi[:, select] @ w + dw @ att[select]
    return est, influence


def _twfe_coefficient(Y: np.ndarray, first: np.ndarray) -> float:
    n, T = Y.shape
    D = ((first[:, None] >= 0) & (np.arange(T)[None, :] >= first[:, None])).astype(float)

    def within(A):
        return A - A.mean(axis=1, keepdims=True) - A.mean(axis=0, keepdims=True) + A.mean()

    Dd = within(D)
    return float((within(Y) * Dd).sum() / (Dd**2).sum())


@dataclass(frozen=True, eq=False)
class StaggeredResult(Result):
    """Callaway & Sant'Anna group-time effects and their aggregations.

    Attributes
    ----------
    att : Estimate
        The simple aggregate: average effect over every treated cohort's post-treatment periods.
    group_time : pandas.DataFrame
        ``group``, ``time``, ``e`` (event time), ``estimate``, ``se``, ``ci_low``, ``ci_high``, ``post``.
    event_time : pandas.DataFrame
        ``e``, ``estimate``, ``se``, ``ci_low``, ``ci_high`` (pointwise) and ``band_low``, ``band_high``
        (uniform over event times when bootstrapped, else equal to the pointwise interval).
    by_group : pandas.DataFrame
        ``group``, ``estimate``, ``se``, ``ci_low``, ``ci_high``.
    att_by_group : Estimate
        The by-group aggregate (cohort averages weighted by cohort size).
    twfe : float
        The TWFE coefficient on the same panel, for contrast (see :func:`bacon_decomposition`).
    """

    method: ClassVar[str] = "staggered difference-in-differences (Callaway & Sant'Anna 2021)"
    citation: ClassVar[str] = ("Callaway & Sant'Anna (2021), J Econometrics 225:200; Goodman-Bacon (2021), "
                               "J Econometrics 225:254")

    att: Estimate
    att_by_group: Estimate
    group_time: pd.DataFrame = field(repr=False)
    event_time: pd.DataFrame = field(repr=False)
    by_group: pd.DataFrame = field(repr=False)
    twfe: float
    control: str
    inference: str
    n_units: int
    n_periods: int
    alpha: float
    warnings: tuple[str, ...] = ()

    @property
    def nobs(self) -> int:
        return self.n_units * self.n_periods

    def estimates(self) -> dict:
        return {"att": self.att, "att_by_group": self.att_by_group}

    @property
    def headline(self) -> str:
        e = self.att
        controls = "never-treated units" if self.control == "never" else "units not yet treated"
        if e.significant:
            lead = (f"Averaged over every cohort's post-adoption periods, the effect was {e.estimate:+.3g} "
                    f"({e.level} CI {e.ci_low:.3g} to {e.ci_high:.3g}) against {controls}")
        else:
            lead = (f"Averaged over every cohort's post-adoption periods, the effect is inconclusive: the true effect "
                    f"could be between {e.ci_low:.3g} and {e.ci_high:.3g} ({e.level} CI, estimate {e.estimate:+.3g}, "
                    f"against {controls})")
        return f"{lead}; the two-way fixed-effects regression would have said {self.twfe:+.3g}."

    def _payload(self) -> dict:
        def records(frame: pd.DataFrame) -> list[dict]:
            return [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in r.items()}
                    for r in frame.astype(object).where(frame.notna(), None).to_dict(orient="records")]

        a = {k: v for k, v in self.att.to_dict().items() if k in ("estimate", "se", "ci_low", "ci_high", "p_value")}
        return {"att": a, "att_by_group": self.att_by_group.to_dict(), "control": self.control,
                "inference": self.inference, "n_units": self.n_units, "n_periods": self.n_periods,
                "twfe": self.twfe, "group_time": records(self.group_time), "event_time": records(self.event_time),
                "by_group": records(self.by_group)}


def staggered_did(data: pd.DataFrame, unit: str, time: str, outcome: str, first_treated: str, *,
                  control: str = "never", alpha: float = 0.05, bootstrap: int = 0, seed: int = 20240101) -> StaggeredResult:
    """Callaway & Sant'Anna ATT(g, t) with simple, by-group and event-time aggregations.

    Parameters
    ----------
    data : pandas.DataFrame
        Long balanced panel, one row per unit and time.
    unit, time, outcome : str
        Columns.
    first_treated : str
        The first period the unit was treated (a value of ``time``); 0 or blank for never treated.
    control : {"never", "notyet"}
        Never-treated units only, or also units not yet treated at ``t``.
    bootstrap : int
        0 for analytic standard errors; otherwise the number of multiplier-bootstrap draws (e.g. 1000).

    Examples
    --------
    Three cohorts adopt at months 10, 18 and 26, with an effect that grows with time since adoption
    (``outcomes.examples.staggered_panel``; the truth over the treated area-months is 2.01):

    >>> from outcomes.examples import staggered_panel
    >>> r = staggered_did(staggered_panel(), "area", "month", "rate", "first_month")
    >>> print(r.headline)
    Averaged over every cohort's post-adoption periods, the effect was +1.86 (95% CI 1.63 to 2.09) against never-treated units; the two-way fixed-effects regression would have said +1.37.
    """
    if control not in CONTROLS:
        raise OutcomesError(f"control must be 'never' or 'notyet', got {control!r}")
    if not 0 < alpha < 1:
        raise OutcomesError(f"alpha must lie between 0 and 1, got {alpha}")
    if bootstrap < 0 or int(bootstrap) != bootstrap:
        raise OutcomesError(f"bootstrap must be 0 (analytic errors) or a number of draws, got {bootstrap}")
    panel = _panel(data, unit, time, outcome, first_treated)
    notes = list(panel.notes)
    if control == "never" and (panel.first < 0).sum() == 0:
        raise OutcomesError("no never-treated units: use control='notyet' (units not yet treated as comparisons)")
    Y, first = panel.Y, panel.first
    n, T = Y.shape
    if n < 20:
        notes.append(f"only {n} units: unit-clustered inference is approximate with so few")
    sizes = pd.Series(first[first > 0]).value_counts()
    if (sizes == 1).any():
        notes.append(f"{int((sizes == 1).sum())} of {len(sizes)} cohorts have a single unit: the errors of their "
                     f"effects reflect only the comparison units' variation (and, for the aggregates, the spread between "
                     f"cohorts), so their intervals are likely too narrow, and the pre-treatment test of parallel "
                     f"trends too strict")
    cells, att, psi = _group_time(Y, first, control)
    g_arr = np.array([c[0] for c in cells])
    t_arr = np.array([c[1] for c in cells])
    e_arr = t_arr - g_arr
    post = e_arr >= 0

    aggregates = {"simple": _aggregate(post, cells, att, psi, first)}
    by_group_rows = []
    group_if = []
    groups = sorted(set(g_arr.tolist()))
    for g in groups:
        sel = post & (g_arr == g)
        est = float(att[sel].mean())
        infl = psi[:, sel].mean(axis=1)
        by_group_rows.append((g, est))
        group_if.append(infl)
    pg = np.array([(first == g).mean() for g in groups])
    wg = pg / pg.sum()
    group_if_m = np.column_stack(group_if)
    ind = (first[:, None] == np.array(groups)[None, :]).astype(float) - pg[None, :]
    dwg = ind / pg.sum() - np.outer(ind.sum(axis=1), pg) / pg.sum() ** 2
    g_est = np.array([r[1] for r in by_group_rows])
    aggregates["group"] = (float(wg @ g_est), group_if_m @ wg + dwg @ g_est)
    events = sorted(set(e_arr.tolist()))
    event_if = []
    event_est = []
    for e in events:
        est, infl = _aggregate(e_arr == e, cells, att, psi, first)
        event_est.append(est)
        event_if.append(infl)

    # Every estimate's influence function, as columns: cells, groups, events, simple, by-group.
    blocks = np.column_stack([psi, group_if_m, np.column_stack(event_if), aggregates["simple"][1],
                              aggregates["group"][1]])
    z = norm.ppf(1 - alpha / 2)
    if bootstrap:
        rng = np.random.default_rng(seed)
        V = rng.choice(np.array([-1.0, 1.0]), size=(int(bootstrap), n))
        draws = V @ blocks / n  # (B, estimates): the multiplier bootstrap of sqrt(n)(theta* - theta) / sqrt(n)
        q75, q25 = np.quantile(draws, [0.75, 0.25], axis=0)
        se = (q75 - q25) / (norm.ppf(0.75) - norm.ppf(0.25))
        k0 = psi.shape[1] + len(groups)
        ev = slice(k0, k0 + len(events))
        with np.errstate(divide="ignore", invalid="ignore"):
            sup = np.nanmax(np.abs(draws[:, ev]) / se[ev], axis=1)
        band_crit = float(np.quantile(sup, 1 - alpha))
        inference = f"multiplier bootstrap ({int(bootstrap)} Rademacher draws, clustered by unit)"
    else:
        se = np.sqrt((blocks**2).sum(axis=0)) / n
        band_crit = z
        inference = "analytic (influence function, clustered by unit)"

    def est(value: float, s: float) -> Estimate:
        return Estimate.normal(value, float(s), alpha)

    k = psi.shape[1]
    gt = pd.DataFrame({"group": [panel.times[g] for g in g_arr], "time": [panel.times[t] for t in t_arr], "e": e_arr,
                       "estimate": att, "se": se[:k], "ci_low": att - z * se[:k], "ci_high": att + z * se[:k],
                       "post": post})
    gse = se[k:k + len(groups)]
    by_group = pd.DataFrame({"group": [panel.times[g] for g in groups], "estimate": g_est, "se": gse,
                             "ci_low": g_est - z * gse, "ci_high": g_est + z * gse})
    ese = se[k + len(groups):k + len(groups) + len(events)]
    ev_est = np.array(event_est)
    event_time = pd.DataFrame({"e": events, "estimate": ev_est, "se": ese, "ci_low": ev_est - z * ese,
                               "ci_high": ev_est + z * ese, "band_low": ev_est - band_crit * ese,
                               "band_high": ev_est + band_crit * ese})
    pre = gt[~gt["post"]]
    if len(pre):
        bad = pre[(pre["ci_low"] > 0) | (pre["ci_high"] < 0)]
        if len(bad) > max(1, alpha * len(pre) * 2):
            notes.append(f"{len(bad)} of {len(pre)} pre-treatment group-time effects differ from zero: parallel trends "
                         f"is doubtful")
    simple = est(aggregates["simple"][0], se[-2])
    grouped = est(aggregates["group"][0], se[-1])
    return StaggeredResult(simple, grouped, gt, event_time, by_group, _twfe_coefficient(Y, first), control, inference,
                           n, T, alpha, tuple(notes))


def twfe(data: pd.DataFrame, unit: str, time: str, outcome: str, first_treated: str) -> float:
    """The two-way fixed-effects coefficient on ``treated and after first_treated`` (balanced panel)."""
    panel = _panel(data, unit, time, outcome, first_treated)
    return _twfe_coefficient(panel.Y, panel.first)


@dataclass(frozen=True, eq=False)
class BaconResult(Result):
    """Goodman-Bacon decomposition: TWFE = sum of weight x 2x2 estimate over every comparison."""

    method: ClassVar[str] = "Goodman-Bacon decomposition of two-way fixed effects"
    citation: ClassVar[str] = "Goodman-Bacon (2021), J Econometrics 225:254, Theorem 1"

    table: pd.DataFrame = field(repr=False)
    twfe: float
    n_units: int
    n_periods: int
    alpha: float = 0.05
    warnings: tuple[str, ...] = ()

    @property
    def nobs(self) -> int:
        return self.n_units * self.n_periods

    @property
    def forbidden_weight(self) -> float:
        """Weight on comparisons that use already-treated units as controls."""
        return float(self.table.loc[self.table["kind"] == "later vs earlier treated", "weight"].sum())

    @property
    def headline(self) -> str:
        by_kind = self.table.groupby("kind").apply(lambda f: (f["weight"].sum(), (f["weight"] * f["estimate"]).sum()
                                                              / f["weight"].sum()), include_groups=False)
        parts = [f"{kind} {100 * w:.0f}% (average {avg:+.3g})" for kind, (w, avg) in by_kind.items()]
        return (f"The two-way fixed-effects estimate {self.twfe:+.3g} mixes {len(self.table)} two-by-two comparisons: "
                + "; ".join(parts) + f". {100 * self.forbidden_weight:.0f}% of its weight compares later adopters with "
                "areas already treated, which is biased when effects change over time.")

    def _payload(self) -> dict:
        return {"twfe": self.twfe, "comparisons": self.table.to_dict(orient="records"),
                "forbidden_weight": self.forbidden_weight}


def bacon_decomposition(data: pd.DataFrame, unit: str, time: str, outcome: str, first_treated: str) -> BaconResult:
    """Every 2x2 comparison inside the TWFE estimate with its weight (Goodman-Bacon 2021, Theorem 1)."""
    panel = _panel(data, unit, time, outcome, first_treated)
    Y, first = panel.Y, panel.first
    n, T = Y.shape
    groups = sorted(set(first[first > 0].tolist()))
    never = first < 0
    share = {g: (first == g).mean() for g in groups}
    dbar = {g: (T - g) / T for g in groups}  # share of periods treated
    rows = []

    def dd(treat: np.ndarray, ctrl: np.ndarray, start: int, stop: int, at: int) -> float:
        pre, post = np.arange(start, at), np.arange(at, stop)
        return float((Y[treat][:, post].mean() - Y[treat][:, pre].mean())
                     - (Y[ctrl][:, post].mean() - Y[ctrl][:, pre].mean()))

    n_u = never.mean()
    for k in groups:
        if n_u > 0:
            nk = share[k]
            s = (nk + n_u) ** 2 * (nk / (nk + n_u)) * (n_u / (nk + n_u)) * dbar[k] * (1 - dbar[k])
            rows.append({"kind": "treated vs never treated", "treated": panel.times[k], "control": "never",
                         "estimate": dd(first == k, never, 0, T, k), "raw_weight": s})
    for a, k in enumerate(groups):
        for ell in groups[a + 1:]:
            nk, nl = share[k], share[ell]
            nkl = nk / (nk + nl)
            dk, dl = dbar[k], dbar[ell]
            s_early = ((nk + nl) * (1 - dl)) ** 2 * nkl * (1 - nkl) * ((dk - dl) / (1 - dl)) * ((1 - dk) / (1 - dl))
            s_late = ((nk + nl) * dk) ** 2 * nkl * (1 - nkl) * (dl / dk) * ((dk - dl) / dk)
            rows.append({"kind": "earlier vs later treated", "treated": panel.times[k], "control": panel.times[ell],
                         "estimate": dd(first == k, first == ell, 0, ell, k), "raw_weight": s_early})
            rows.append({"kind": "later vs earlier treated", "treated": panel.times[ell], "control": panel.times[k],
                         "estimate": dd(first == ell, first == k, k, T, ell), "raw_weight": s_late})
    table = pd.DataFrame(rows)
    table["weight"] = table["raw_weight"] / table["raw_weight"].sum()
    table = table.drop(columns="raw_weight")
    return BaconResult(table, _twfe_coefficient(Y, first), n, T, warnings=panel.notes)


def simulate_panels(rng: np.random.Generator, sims: int, n_units: int = 200, n_periods: int = 10,
                    cohorts: tuple[int, ...] = (3, 5, 7), shares: tuple[float, ...] = (0.2, 0.2, 0.2)):
    """Panels with staggered adoption and heterogeneous dynamic effects (for tests and benchmarks).

    Returns ``Y (sims, units, periods)``, ``first (sims, units)`` (-1 never) and the true simple ATT with
    population cohort shares: effect(g, e) = (1 + 0.5 * cohort index) * (e + 1) * 0.3.
    """
    probs = np.array([*shares, 1 - sum(shares)])
    labels = np.array([*cohorts, -1])
    first = labels[np.array([rng.choice(len(probs), n_units, p=probs) for _ in range(sims)])]
    unit_fe = rng.normal(0, 1, (sims, n_units, 1))
    time_fe = np.linspace(0, 2, n_periods)[None, None, :] + rng.normal(0, 0.3, (sims, 1, n_periods))
    t = np.arange(n_periods)[None, None, :]
    e = t - first[:, :, None]
    index = np.select([first[:, :, None] == c for c in cohorts], [np.full(1, i) for i in range(len(cohorts))], -1)
    effect = np.where((first[:, :, None] >= 0) & (e >= 0), (1 + 0.5 * index) * (e + 1) * 0.3, 0.0)
    Y = unit_fe + time_fe + effect + rng.normal(0, 1, (sims, n_units, n_periods))
    cells = [(i, c, tt) for i, c in enumerate(cohorts) for tt in range(c, n_periods)]
    w = np.array([shares[i] for i, _, _ in cells])
    tau = np.array([(1 + 0.5 * i) * (tt - c + 1) * 0.3 for i, c, tt in cells])
    return Y, first, float(w @ tau / w.sum())


def _frame(Y: np.ndarray, first: np.ndarray) -> pd.DataFrame:
    n, T = Y.shape
    return pd.DataFrame({"unit": np.repeat(np.arange(n), T), "time": np.tile(np.arange(T), n),
                         "y": Y.ravel(), "first": np.repeat(np.where(first < 0, 0, first), T)})

