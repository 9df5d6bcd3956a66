"""Propensity-score matching for the Justice Data Lab question: did the people served reoffend less
than similar people who were not?

The propensity score is a logistic regression of treatment on covariates (optionally ridge
penalised). Treated people are matched to their nearest neighbours on the logit of the score
(Rosenbaum & Rubin 1985), within a caliper of 0.2 standard deviations of the logit (Austin 2011,
Pharmaceutical Statistics 10:150), 1:k, with or without replacement, optionally exactly within
strata, after trimming treated people outside the comparison pool's range of scores (common
support). The average effect on the treated (ATT) gets the Abadie & Imbens (2006, Econometrica
74:235) matching variance, which counts how often each comparison person is reused.

Examples
--------
A synthetic cohort (``outcomes.examples``) in which being served lowers reoffending by 8 points and the
people served are likelier to reoffend anyway:

>>> from outcomes.examples import selected_cohort
>>> frame = selected_cohort()
>>> result = match(frame, "served", "reoffended_12m", ["age", "prior_offences", "risk_score"])
>>> print(result.headline)
For 100 typical people in the treatment group, 30 reoffended within a year, against 42 for 100 similar people who were not served: 12 fewer (95% CI 6.4 to 17 fewer).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import linalg
from scipy.special import expit

from outcomes._groups_common import (
    MIN_TREATED,
    ComparisonGroupWarning,
    EffectEstimate,
    check_alpha,
    is_binary,
    jdl_headline,
    naive_difference,
    prepare,
    warn,
)
from outcomes.balance import BalanceTable, balance_table
from outcomes.errors import OutcomesError
from outcomes.results import Result

__all__ = ["PropensityModel", "MatchResult", "fit_propensity", "match", "jdl_headline", "ComparisonGroupWarning",
           "EffectEstimate"]


# ---------------------------------------------------------------- propensity score


@dataclass(frozen=True, eq=False)
class PropensityModel:
    """A fitted logistic propensity model.

    Attributes
    ----------
    names : tuple of str
        Covariate (design-matrix) names; ``coef[0]`` is the intercept.
    coef, se : ndarray
        Coefficients on the covariates' own scale and their standard errors (inverse Hessian;
        for a penalised fit these are the penalised-Hessian approximation).
    logit : ndarray
        Linear predictor (log-odds of treatment) for every input row.
    penalty : float
        Ridge (L2) strength on the standardised coefficients; 0 is ordinary maximum likelihood.
    iterations : int
        Newton iterations to convergence.
    """

    names: tuple[str, ...]
    coef: np.ndarray = field(repr=False)
    se: np.ndarray = field(repr=False)
    logit: np.ndarray = field(repr=False)
    penalty: float
    iterations: int

    @property
    def score(self) -> np.ndarray:
        """Propensity score (probability of treatment) for every input row."""
        return expit(self.logit)

    def summary(self) -> str:
        penalised = f" (ridge penalty {self.penalty:g})" if self.penalty else ""
        lines = [f"propensity model: logistic{penalised}, "
                 f"{len(self.logit)} people, {self.iterations} Newton iterations",
                 f"{'term':<28}{'coef':>12}{'se':>12}"]
        for name, coef, se in zip(("(intercept)", *self.names), self.coef, self.se, strict=True):
            lines.append(f"{name[:27]:<28}{coef:>12.4g}{se:>12.4g}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"terms": ["(intercept)", *self.names], "coef": self.coef.tolist(), "se": self.se.tolist(),
                "penalty": self.penalty, "iterations": self.iterations}


def _fit_logit(X: np.ndarray, treated: np.ndarray, names: list[str], penalty: float = 0.0,
               max_iter: int = 30, tol: float = 1e-8) -> PropensityModel:
    """Newton-Raphson logistic regression on standardised covariates, with separation checks."""
    if penalty < 0 or not math.isfinite(penalty):
        raise OutcomesError(f"penalty must be 0 (plain logistic) or positive, got {penalty}")
    t = treated.astype(float)
    n, p = X.shape
    if penalty == 0:
        for j, name in enumerate(names):
            xt, xc = X[treated, j], X[~treated, j]
            if xt.max() <= xc.min() or xt.min() >= xc.max():
                side = "at or below" if xt.max() <= xc.min() else "at or above"
                raise OutcomesError(
                    f"perfect separation: every treated person's {name!r} is {side} every comparison person's, so "
                    f"the propensity model cannot be fitted and no comparison person resembles them. Restrict the "
                    f"comparison pool to people who could have been treated, match exactly on {name!r}, or use a "
                    f"penalised model (penalty > 0)")
    centre, scale = X.mean(axis=0), X.std(axis=0)
    Z = np.empty((n, p + 1))
    Z[:, 0] = 1.0
    np.subtract(X, centre, out=Z[:, 1:])
    Z[:, 1:] /= scale

    gram = Z.T @ Z / n
    _, r, piv = linalg.qr(gram, pivoting=True)
    rank = int((np.abs(np.diag(r)) > 1e-10 * abs(r[0, 0])).sum())
    if rank < p + 1:
        redundant = [names[j - 1] for j in piv[rank:] if j > 0]
        raise OutcomesError(f"covariate(s) {', '.join(map(repr, redundant))} are exact linear combinations of the "
                            f"others (e.g. dummies that sum to one, or a column repeated); drop them")

    ridge = np.full(p + 1, float(penalty))
    ridge[0] = 0.0

    def objective(beta: np.ndarray, eta: np.ndarray) -> float:
        return float(t @ eta - np.logaddexp(0, eta).sum() - 0.5 * ridge @ beta**2)

    beta = np.zeros(p + 1)
    beta[0] = math.log(t.mean() / (1 - t.mean()))
    eta = Z @ beta
    value = objective(beta, eta)
    converged = False
    iteration = 0
    while iteration < max_iter:
        iteration += 1
        prob = expit(eta)
        w = prob * (1 - prob)
        grad = Z.T @ (t - prob) - ridge * beta
        hess = (Z * w[:, None]).T @ Z + np.diag(ridge)
        try:
            step = linalg.solve(hess, grad, assume_a="pos")
        except (linalg.LinAlgError, ValueError):
            step = linalg.lstsq(hess, grad)[0]
        for _ in range(30):  # step halving keeps every iteration an ascent step
            new_beta = beta + step
            new_eta = Z @ new_beta
            new_value = objective(new_beta, new_eta)
            if new_value >= value - 1e-9 * abs(value):
                break
            step = step / 2
        beta, eta, value = new_beta, new_eta, new_value
        if np.max(np.abs(step)) < tol:
            converged = True
            break
    prob = expit(eta)
    hess = (Z * (prob * (1 - prob))[:, None]).T @ Z + np.diag(ridge)
    del Z
    if not converged:
        worst = names[int(np.argmax(np.abs(step[1:])))]
        raise OutcomesError(
            f"the propensity model did not converge in {max_iter} iterations: treatment is (quasi-)perfectly "
            f"predicted by the covariates (perfect separation) (look first at {worst!r}), so some people have no comparable "
            f"counterpart. Drop or coarsen that covariate, match exactly on it, or use a penalised model (penalty > 0)")
    cov_std = linalg.inv(hess)
    # Back to the covariates' own scale: raw = J @ standardised.
    J = np.zeros((p + 1, p + 1))
    J[0, 0] = 1.0
    J[0, 1:] = -centre / scale
    J[1:, 1:] = np.diag(1 / scale)
    coef = J @ beta
    se = np.sqrt(np.diag(J @ cov_std @ J.T))
    return PropensityModel(tuple(names), coef, se, eta, float(penalty), iteration)


def fit_propensity(data: pd.DataFrame, treatment: str, covariates: list[str] | str, *, penalty: float = 0.0,
                   min_treated: int = MIN_TREATED) -> PropensityModel:
    """Logistic propensity score of ``treatment`` on ``covariates`` (Rosenbaum & Rubin 1983).

    Fitted by Newton-Raphson on standardised covariates; text columns become dummies. With
    ``penalty > 0`` the log-likelihood carries a ridge term ``penalty / 2 * sum(beta_std**2)``
    (standardised slopes, intercept unpenalised), which keeps the fit finite under separation.

    Raises
    ------
    OutcomesError
        Missing values, a non-0/1 treatment, constant or collinear covariates, perfect separation.

    Examples
    --------
    >>> from outcomes.examples import selected_cohort
    >>> model = fit_propensity(selected_cohort(), "served", ["age", "prior_offences"])
    >>> model.score[:3].round(3).tolist()
    [0.116, 0.242, 0.279]
    """
    # The outcome is not needed; validate with the treatment standing in for it.
    covs = [covariates] if isinstance(covariates, str) else list(covariates)
    group = prepare(data.assign(__outcome__=0.0), treatment, "__outcome__", covs, min_treated=min_treated)
    return _fit_logit(group.X, group.treated, group.names, penalty)


# ---------------------------------------------------------------- nearest-neighbour matching


def _nearest_with_replacement(lt: np.ndarray, lc: np.ndarray, k: int, width: float):
    """The k nearest comparison scores to each treated score (ties go to the lower score)."""
    order = np.argsort(lc, kind="stable")
    s = lc[order]
    n_c = len(s)
    pos = np.searchsorted(s, lt)
    cand = pos[:, None] + np.arange(-k, k)[None, :]  # the k nearest of a sorted array lie in this window
    valid = (cand >= 0) & (cand < n_c)
    cand = np.clip(cand, 0, n_c - 1)
    dist = np.abs(s[cand] - lt[:, None])
    dist[~valid] = np.inf
    pick = np.argsort(dist, axis=1, kind="stable")[:, : min(k, n_c)]
    dist = np.take_along_axis(dist, pick, axis=1)
    chosen = order[np.take_along_axis(cand, pick, axis=1)]
    ok = dist <= width
    rows = np.broadcast_to(np.arange(len(lt))[:, None], ok.shape)
    return rows[ok], chosen[ok], dist[ok]


def _greedy_without_replacement(lt: np.ndarray, lc: np.ndarray, k: int, width: float):
    """Greedy nearest-neighbour matching without replacement, highest score first (MatchIt's "largest").

    Available comparison people are tracked with two path-halving union-find arrays over the sorted
    scores, so each lookup of the nearest still-free neighbour on either side is near constant time.
    """
    order = np.argsort(lc, kind="stable")
    s = lc[order].tolist()
    n_c = len(s)
    pos = np.searchsorted(lc[order], lt).tolist()
    visit = np.argsort(-lt, kind="stable").tolist()
    scores = lt.tolist()
    right = list(range(n_c + 1))  # right[u] == u: sorted position u is free (n_c is the end sentinel)
    left = list(range(n_c + 1))  # left[u] == u: sorted position u - 1 is free (0 is the start sentinel)
    rows, cols, dists = [], [], []
    inf = math.inf
    active = visit
    for _ in range(k):
        still = []
        for i in active:
            x, p = scores[i], pos[i]
            r = p
            while right[r] != r:
                right[r] = right[right[r]]
                r = right[r]
            u = p
            while left[u] != u:
                left[u] = left[left[u]]
                u = left[u]
            lft = u - 1
            dr = s[r] - x if r < n_c else inf
            dl = x - s[lft] if lft >= 0 else inf
            if dl <= dr:
                j, d = lft, dl
            else:
                j, d = r, dr
            if d > width:  # also when the pool is exhausted (d is inf)
                continue
            rows.append(i)
            cols.append(j)
            dists.append(d)
            right[j] = j + 1
            left[j + 1] = j
            still.append(i)
        active = still
    rows = np.asarray(rows, dtype=np.int64)
    cols = order[np.asarray(cols, dtype=np.int64)] if cols else np.zeros(0, dtype=np.int64)
    return rows, cols, np.asarray(dists, dtype=float)


def _neighbour_variance(lc: np.ndarray, yc: np.ndarray) -> np.ndarray:
    """Conditional outcome variance of each comparison person from its nearest same-group neighbour
    on the score (Abadie & Imbens 2006, eq. 14 with J = 1): ``(y_j - y_l(j))**2 / 2``."""
    n_c = len(lc)
    if n_c < 2:
        return np.full(n_c, np.nan)
    order = np.argsort(lc, kind="stable")
    s, ys = lc[order], yc[order]
    gap_left = np.r_[np.inf, np.diff(s)]
    gap_right = np.r_[np.diff(s), np.inf]
    idx = np.arange(n_c)
    neighbour = np.where(gap_left <= gap_right, idx - 1, idx + 1)
    sigma2 = np.empty(n_c)
    sigma2[order] = (ys - ys[neighbour]) ** 2 / 2
    return sigma2


@dataclass(frozen=True, eq=False)
class MatchResult(Result):
    """Propensity-score matching estimate of the average effect on the treated (ATT).

    Attributes
    ----------
    att : EffectEstimate
        Matched ATT with Abadie-Imbens (2006) standard error, ``1 - alpha`` interval and p-value.
    naive : EffectEstimate
        Unadjusted treated-minus-pool difference (Welch SE), for contrast.
    treated_mean, control_mean : float
        Mean outcome of the matched treated and of their matched comparison people.
    n_treated : int
        Treated people in the input.
    n_matched : int
        Treated people with at least one comparison person (the ATT is over these).
    n_control_used : int
        Distinct comparison people used.
    n_dropped_support, n_dropped_caliper : int
        Treated people dropped outside common support, and for having no match within the caliper.
    balance : BalanceTable
        SMDs and variance ratios before and after matching.
    propensity : PropensityModel
        The fitted propensity model.
    pairs : pandas.DataFrame
        The raw matches: ``treated_row``, ``control_row`` (input row labels), ``weight`` (1/k_i), ``distance``.
    settings : dict
        caliper (in SDs), caliper_width (on the logit), ratio, replace, exact, penalty, common_support.
    warnings : tuple of str
        Caveats raised during the fit (also emitted as ``ComparisonGroupWarning``).
    """

    method: ClassVar[str] = 'propensity-score nearest-neighbour matching (ATT, Abadie-Imbens 2006 variance)'
    citation: ClassVar[str] = (
        'Rosenbaum & Rubin (1985) matching on the logit of the propensity score; Austin (2011) caliper; Abadie & Imbens (2006), Econometrica 74:235, matching variance')

    att: EffectEstimate
    naive: EffectEstimate
    treated_mean: float
    control_mean: float
    n_treated: int
    n_matched: int
    n_control_used: int
    n_dropped_support: int
    n_dropped_caliper: int
    balance: BalanceTable
    propensity: PropensityModel = field(repr=False)
    pairs: pd.DataFrame = field(repr=False)
    settings: dict
    warnings: tuple[str, ...]
    binary_outcome: bool
    outcome: str
    outcome_label: str = "reoffended"
    count_noun: str | None = None
    meaningful_effect: float | None = None
    pair_counts: tuple[int, int] | None = None  # (favourable, discordant) nearest pairs, binary outcomes
    control_sd: float | None = None

    @property
    def e_value(self) -> dict:
        """E-value (VanderWeele & Ding 2017) of the effect: ``{"estimate", "ci"}`` (the CI limit nearer no effect)."""
        from outcomes.sensitivity import e_value, e_value_interval, risk_ratio_from_difference

        counts = self.binary_outcome or self.count_noun is not None or self.control_sd is None
        try:
            rr, lo, hi = risk_ratio_from_difference(self.treated_mean, self.control_mean, self.att.ci_low,
                                                    self.att.ci_high, binary_or_count=counts,
                                                    control_sd=self.control_sd)
        except OutcomesError:
            return {"estimate": None, "ci": None, "risk_ratio": None}
        return {"estimate": e_value(rr), "ci": e_value_interval(rr, lo, hi), "risk_ratio": rr,
                "risk_ratio_ci": [lo, hi]}

    @property
    def rosenbaum_gamma(self) -> float | None:
        """Rosenbaum's Gamma at which the matched-pair difference stops being significant (binary outcomes)."""
        if self.pair_counts is None:
            return None
        from outcomes.sensitivity import rosenbaum_gamma

        return rosenbaum_gamma(*self.pair_counts, alpha=self.alpha)

    @property
    def sensitivity_headline(self) -> str:
        from outcomes.sensitivity import sensitivity_sentence

        e = self.e_value
        if e["estimate"] is None:
            return "No E-value: the comparison group's mean is not positive."
        return sensitivity_sentence(e["estimate"], e["ci"], self.rosenbaum_gamma,
                                    outcome="reoffend" if self.binary_outcome or self.count_noun else "differ")

    @property
    def alpha(self) -> float:
        return self.att.alpha

    @property
    def headline(self) -> str:
        """The JDL-style sentence: "X of 100 people reoffended vs Y of 100 ...; difference Z points (...)"."""
        return jdl_headline(self.treated_mean, self.control_mean, self.att, binary=self.binary_outcome,
                            label=self.outcome_label if self.binary_outcome else self.outcome,
                            count_noun=self.count_noun, n_treated=self.n_matched, n_control=self.n_control_used,
                            meaningful_effect=self.meaningful_effect)

    def summary(self) -> str:
        s = self.settings
        caliper = "none" if s["caliper"] is None else f"{s['caliper']:g} SD of the logit ({s['caliper_width']:.4f})"
        lines = [
            f"Propensity-score matching, ATT on {self.outcome!r}",
            f"  1:{s['ratio']} nearest neighbour {'with' if s['replace'] else 'without'} replacement, caliper {caliper}"
            + (f", exact on {', '.join(s['exact'])}" if s["exact"] else ""),
            f"  treated {self.n_treated}, matched {self.n_matched} (dropped: {self.n_dropped_support} outside common "
            f"support, {self.n_dropped_caliper} without a match in the caliper); comparison people used "
            f"{self.n_control_used}",
            f"  ATT {self.att.estimate:.4g} (SE {self.att.se:.4g}, Abadie-Imbens), {100 * (1 - self.alpha):g}% CI "
            f"{self.att.ci_low:.4g} to {self.att.ci_high:.4g}, p = {self.att.p_value:.3g}",
            f"  naive difference {self.naive.estimate:.4g} ({self.naive.ci_low:.4g} to {self.naive.ci_high:.4g})",
            f"  {self.headline}",
            "",
            self.balance.summary(),
        ]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    @property
    def nobs(self) -> int:
        """People the estimate used: the matched treated and the comparison people with weight."""
        return int(self.n_matched + self.n_control_used)

    def estimates(self) -> dict:
        return {"att": self.att, "naive_difference": self.naive}

    def _payload(self) -> dict:
        return {
            "att": self.att.to_dict(),
            "n_treated": self.n_treated,
            "n_matched": self.n_matched,
            "n_control_used": self.n_control_used,
            "balance": self.balance.to_dict(),
            "treated_mean": self.treated_mean,
            "control_mean": self.control_mean,
            "naive": self.naive.to_dict(),
            "n_dropped_support": self.n_dropped_support,
            "n_dropped_caliper": self.n_dropped_caliper,
            "settings": dict(self.settings),
            "e_value": {"estimate": self.e_value["estimate"], "ci": self.e_value["ci"]},
            "rosenbaum_gamma": self.rosenbaum_gamma,
            "sensitivity": self.sensitivity_headline,
        }


def match(data: pd.DataFrame, treatment: str, outcome: str, covariates: list[str] | str, *,
          exact: list[str] | str | None = None, caliper: float | None = 0.2, ratio: int = 1, replace: bool = False,
          alpha: float = 0.05, penalty: float = 0.0, common_support: bool = True, min_treated: int = MIN_TREATED,
          outcome_label: str = "reoffended", count_noun: str | None = None,
          meaningful_effect: float | None = None) -> MatchResult:
    """Nearest-neighbour propensity-score matching and the ATT with an Abadie-Imbens interval.

    Follows Rosenbaum & Rubin (1985) matching on the logit of the propensity score, the caliper of
    Austin (2011: 0.2 SD of the logit, SD pooled over the two groups), common-support trimming by the
    comparison pool's min/max score (Dehejia & Wahba 1999), greedy matching without replacement in
    descending score order, and the Abadie & Imbens (2006, Theorem 7 / Abadie et al. 2004 eq. 11)
    variance for the population ATT, ``[sum_i (tau_i - tau)^2 + sum_j (K_j^2 - K'_j) sigma_j^2] / N1^2``,
    where ``K_j`` is the total weight comparison person ``j`` receives. The extra uncertainty from
    estimating the score (Abadie & Imbens 2016) is not added; simulations in the tests show coverage
    at the nominal level for this design.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per person.
    treatment : str
        0/1 column: 1 = served by the service.
    outcome : str
        Numeric outcome, e.g. ``reoffended_12m`` (0/1) or ``reoffences_12m`` (count).
    covariates : list of str
        Columns for the propensity model; text columns become dummies.
    exact : list of str, optional
        Columns to match on exactly (e.g. sex, sentence type).
    caliper : float or None
        Maximum distance in standard deviations of the logit score; ``None`` for no caliper.
    ratio : int
        Comparison people per treated person (1:k).
    replace : bool
        Whether a comparison person may be matched to more than one treated person.
    alpha : float
        Significance level; intervals are at ``1 - alpha``.
    penalty : float
        Ridge penalty for the propensity model (0 = plain logistic).
    common_support : bool
        Drop treated people whose score lies outside the comparison pool's range.
    min_treated : int
        Fewest treated people (before and after matching) to estimate anything.
    outcome_label : str
        Verb for the headline ("reoffended").
    count_noun : str, optional
        For a count outcome, what is counted ("proven reoffences"): the headline is then per 100 people.
    meaningful_effect : float, optional
        Smallest change that matters (a proportion): an inconclusive headline says how many more people
        would be needed to detect it.

    Returns
    -------
    MatchResult

    Raises
    ------
    OutcomesError
        Bad input (missing values, non-0/1 treatment, constant covariates, perfect separation, too few
        treated) or too little overlap to match at least ``min_treated`` treated people.
    """
    check_alpha(alpha)
    if caliper is not None and not (caliper > 0 and math.isfinite(caliper)):
        raise OutcomesError(f"caliper must be a positive number of standard deviations (or None), got {caliper}")
    if int(ratio) != ratio or ratio < 1:
        raise OutcomesError(f"ratio must be a whole number of comparison people per treated person (1, 2, ...), got {ratio}")
    ratio = int(ratio)
    group = prepare(data, treatment, outcome, covariates, exact, min_treated)
    model = _fit_logit(group.X, group.treated, group.names, penalty)
    notes: list[str] = []
    t, y, logit = group.treated, group.outcome, model.logit
    n = len(t)
    n_treated = int(t.sum())

    sd_logit = math.sqrt((logit[t].var(ddof=1) + logit[~t].var(ddof=1)) / 2)
    width = math.inf if caliper is None else caliper * sd_logit
    eligible = t.copy()
    if common_support:
        eligible &= (logit >= logit[~t].min()) & (logit <= logit[~t].max())
    n_dropped_support = n_treated - int(eligible.sum())
    if not replace and ratio * n_treated > (~t).sum():
        warn(notes, f"the comparison pool ({int((~t).sum())}) is smaller than {ratio} x the treated group "
                    f"({n_treated}); without replacement some treated people will get fewer matches")

    rows_all, cols_all, dist_all = [], [], []
    sigma2 = np.full(n, np.nan)
    for stratum in np.unique(group.strata):
        in_stratum = group.strata == stratum
        ti = np.flatnonzero(eligible & in_stratum)
        ci = np.flatnonzero(~t & in_stratum)
        if len(ci) == 0 or len(ti) == 0:
            continue
        finder = _nearest_with_replacement if replace else _greedy_without_replacement
        rows, cols, dist = finder(logit[ti], logit[ci], ratio, width)
        rows_all.append(ti[rows])
        cols_all.append(ci[cols])
        dist_all.append(dist)
        sigma2[ci] = _neighbour_variance(logit[ci], y[ci])
    rows = np.concatenate(rows_all) if rows_all else np.zeros(0, dtype=np.int64)
    cols = np.concatenate(cols_all) if cols_all else np.zeros(0, dtype=np.int64)
    dist = np.concatenate(dist_all) if dist_all else np.zeros(0)

    matched_count = np.bincount(rows, minlength=n)
    matched = matched_count > 0
    n_matched = int(matched.sum())
    n_dropped_caliper = int(eligible.sum()) - n_matched
    if n_matched < min_treated:
        raise OutcomesError(
            f"no overlap: only {n_matched} of {n_treated} treated people have a comparison person with a similar "
            f"propensity score ({n_dropped_support} outside the comparison pool's range, {n_dropped_caliper} "
            f"without a match within the caliper); at least {min_treated} are needed. The comparison pool does not "
            f"contain people like those served: widen the pool, or report that no valid comparison exists")
    if n_dropped_support + n_dropped_caliper:
        warn(notes, f"{n_dropped_support + n_dropped_caliper} of {n_treated} treated people "
                    f"({100 * (n_dropped_support + n_dropped_caliper) / n_treated:.1f}%) have no comparable "
                    f"comparison person ({n_dropped_support} outside common support, {n_dropped_caliper} beyond "
                    f"the caliper) and are left out: the effect is for the matched treated only")
    if ratio > 1 and (matched_count[matched] < ratio).any():
        short = int((matched_count[matched] < ratio).sum())
        notes.append(f"{short} matched treated people got fewer than {ratio} comparison people (caliper or pool size)")

    weight = 1.0 / matched_count[rows]
    control_weight = np.bincount(cols, weights=weight, minlength=n)
    control_weight_sq = np.bincount(cols, weights=weight**2, minlength=n)
    imputed = np.bincount(rows, weights=weight * y[cols], minlength=n)
    tau_i = y[matched] - imputed[matched]
    att = float(tau_i.mean())
    reuse = control_weight**2 - control_weight_sq
    used_twice = reuse > 1e-12
    if used_twice.any():
        fallback = float(np.nanmean(sigma2[~t])) if np.isfinite(sigma2[~t]).any() else float(y[~t].var())
        s2 = np.where(np.isfinite(sigma2[used_twice]), sigma2[used_twice], fallback)
        extra = float(reuse[used_twice] @ s2)
    else:
        extra = 0.0
    variance = (float(((tau_i - att) ** 2).sum()) + extra) / n_matched**2
    effect = EffectEstimate.normal(att, math.sqrt(variance), alpha)

    balance = balance_table(group.X, t, group.names, treated_weights=matched.astype(float),
                            control_weights=control_weight)
    if balance.flagged:
        warn(notes, f"after matching, |SMD| > {balance.threshold:g} for {', '.join(balance.flagged)}: the groups "
                    f"still differ; try exact matching on it, a tighter caliper or a richer propensity model")
    pairs = pd.DataFrame({"treated_row": group.index[rows], "control_row": group.index[cols],
                          "weight": weight, "distance": dist})
    settings = {"caliper": caliper, "caliper_width": None if caliper is None else width, "ratio": ratio,
                "replace": bool(replace), "exact": [] if exact is None else ([exact] if isinstance(exact, str) else list(exact)),
                "penalty": float(penalty), "common_support": bool(common_support)}
    return MatchResult(
        att=effect, naive=naive_difference(y, t, alpha), treated_mean=float(y[matched].mean()),
        control_mean=float(imputed[matched].mean()), n_treated=n_treated, n_matched=n_matched,
        n_control_used=int((control_weight > 0).sum()), n_dropped_support=n_dropped_support,
        n_dropped_caliper=n_dropped_caliper, balance=balance, propensity=model, pairs=pairs, settings=settings,
        warnings=tuple(notes), binary_outcome=is_binary(y), outcome=outcome, outcome_label=outcome_label,
        count_noun=count_noun, meaningful_effect=meaningful_effect,
        pair_counts=_nearest_pair_counts(rows, cols, dist, y, att < 0) if is_binary(y) else None,
        control_sd=float(y[~t].std(ddof=1)) if not is_binary(y) and (~t).sum() > 1 else None)


def _nearest_pair_counts(rows: np.ndarray, cols: np.ndarray, dist: np.ndarray, y: np.ndarray,
                         reduction: bool) -> tuple[int, int]:
    """Each matched treated person with their nearest comparison person, as McNemar pairs for Rosenbaum bounds."""
    from outcomes.sensitivity import pair_counts

    order = np.lexsort((dist, rows))
    first = order[np.r_[True, np.diff(rows[order]) != 0]]
    return pair_counts(y[rows[first]] == 1, y[cols[first]] == 1, reduction=reduction)
