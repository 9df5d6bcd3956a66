"""Inverse-probability weighting for the average effect on the treated (ATT).

Treated people count once; each comparison person is weighted by the odds of treatment
``e / (1 - e)`` so that the weighted comparison group resembles the treated group (Hirano,
Imbens & Ridder 2003; Morgan & Todd 2008). The weighted means are normalised (Hajek). The
standard error is the M-estimation sandwich that stacks the logistic score equations with the
two weighted means, so the uncertainty of the estimated propensity score is carried through
(Lunceford & Davidian 2004; Reifeis & Hudgens 2022 for the ATT).

Extreme weights are the failure mode of weighting: the result reports the comparison group's
effective sample size (Kish), the largest weight and its share, and offers common-support
trimming and winsorising of the weights at a quantile (Lee, Lessler & Stuart 2011).

Examples
--------
>>> from outcomes.examples import selected_cohort  # synthetic: being served lowers reoffending by 8 points
>>> result = ipw(selected_cohort(), "served", "reoffended_12m", ["age", "prior_offences"])
>>> round(result.att.ci_low, 3), round(result.att.ci_high, 3)
(-0.136, -0.04)
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
from outcomes.matching import PropensityModel, _fit_logit
from outcomes.results import Result

__all__ = ["WeightingResult", "ipw"]

MAX_WEIGHT_SHARE = 0.05
"""A comparison person carrying more than this share of the comparison group's weight is flagged."""


@dataclass(frozen=True, eq=False)
class WeightingResult(Result):
    """Inverse-probability-weighted ATT with weight diagnostics.

    Attributes
    ----------
    att : EffectEstimate
        Weighted ATT with its sandwich standard error, interval and p-value.
    naive : EffectEstimate
        Unadjusted difference, for contrast.
    treated_mean, control_mean : float
        Treated mean and weighted comparison mean.
    n_treated : int
        Treated people in the input.
    n_matched : int
        Treated people kept after common-support trimming (the ATT is over these).
    n_control_used : int
        Comparison people with a positive weight.
    n_trimmed : int
        People dropped outside common support (both groups).
    n_capped : int
        Comparison weights cut down to the ``max_weight_quantile`` cap.
    ess_control : float
        Kish effective sample size of the weighted comparison group, ``(sum w)^2 / sum w^2``.
    max_weight : float
        Largest comparison weight after normalising the comparison weights to sum to the number of
        treated people (how many treated people one comparison person stands in for).
    max_weight_share : float
        Largest comparison weight as a share of the total comparison weight.
    balance : BalanceTable
        SMDs before and after weighting.
    propensity : PropensityModel
        The fitted propensity model.
    weights : pandas.Series
        The raw weight of every input row (1 for kept treated, odds for comparison people, 0 if dropped).
    """

    method: ClassVar[str] = 'inverse-probability weighting (ATT odds weights, Hajek, M-estimation sandwich)'
    citation: ClassVar[str] = (
        'Hirano, Imbens & Ridder (2003), Econometrica 71:1161; Lunceford & Davidian (2004), Stat Med 23:2937; Reifeis & Hudgens (2022)')

    att: EffectEstimate
    naive: EffectEstimate
    treated_mean: float
    control_mean: float
    n_treated: int
    n_matched: int
    n_control_used: int
    n_trimmed: int
    n_capped: int
    ess_control: float
    max_weight: float
    max_weight_share: float
    balance: BalanceTable
    propensity: PropensityModel = field(repr=False)
    weights: pd.Series = field(repr=False)
    settings: dict
    warnings: tuple[str, ...]
    binary_outcome: bool
    outcome: str
    outcome_label: str = "reoffended"
    count_noun: str | None = None
    meaningful_effect: float | None = None

    @property
    def alpha(self) -> float:
        return self.att.alpha

    @property
    def headline(self) -> str:
        """The JDL-style sentence for the weighted comparison."""
        return jdl_headline(self.treated_mean, self.control_mean, self.att, binary=self.binary_outcome,
                            label=self.outcome_label if self.binary_outcome else self.outcome,
                            count_noun=self.count_noun, n_treated=self.n_matched, n_control=max(int(round(self.ess_control)), 1),
                            meaningful_effect=self.meaningful_effect)

    def summary(self) -> str:
        lines = [
            f"Inverse-probability weighting, ATT on {self.outcome!r}",
            f"  treated {self.n_treated} (kept {self.n_matched}); comparison people with weight {self.n_control_used}; "
            f"trimmed outside common support {self.n_trimmed}; weights capped {self.n_capped}",
            f"  comparison effective sample size {self.ess_control:.1f}; largest weight {self.max_weight:.2f} "
            f"({100 * self.max_weight_share:.1f}% of the comparison weight)",
            f"  ATT {self.att.estimate:.4g} (SE {self.att.se:.4g}, sandwich), {100 * (1 - self.alpha):g}% CI "
            f"{self.att.ci_low:.4g} to {self.att.ci_high:.4g}, p = {self.att.p_value:.3g}",
            f"  naive difference {self.naive.estimate:.4g}",
            f"  {self.headline}",
            "",
            self.balance.summary(),
        ]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    @property
    def nobs(self) -> int:
        """People the estimate used: the weighted treated and the comparison people with weight."""
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
            "diagnostics": {"ess_control": self.ess_control, "max_weight": self.max_weight,
                            "max_weight_share": self.max_weight_share, "n_trimmed": self.n_trimmed,
                            "n_capped": self.n_capped},
            "settings": dict(self.settings),
        }


def ipw(data: pd.DataFrame, treatment: str, outcome: str, covariates: list[str] | str, *, alpha: float = 0.05,
        penalty: float = 0.0, common_support: bool = True, max_weight_quantile: float | None = None,
        min_treated: int = MIN_TREATED, outcome_label: str = "reoffended", count_noun: str | None = None,
        meaningful_effect: float | None = None) -> WeightingResult:
    """ATT by inverse-probability (odds) weighting with a sandwich interval.

    Weights follow Hirano, Imbens & Ridder (2003): 1 for the treated, ``e/(1-e)`` for comparison
    people; normalised (Hajek) means; variance from the stacked estimating equations of the logistic
    score and the two means (Lunceford & Davidian 2004), which accounts for estimating ``e``.

    Parameters
    ----------
    data, treatment, outcome, covariates
        As for :func:`outcomes.matching.match`.
    alpha : float
        Significance level; interval at ``1 - alpha``.
    penalty : float
        Ridge penalty for the propensity model (0 = plain logistic). The sandwich then treats the
        penalised score as if unpenalised (a slight approximation).
    common_support : bool
        Drop treated people outside the comparison pool's score range and comparison people outside
        the treated group's range (Dehejia & Wahba 1999).
    max_weight_quantile : float, optional
        Winsorise comparison weights at this quantile of their distribution (e.g. 0.99).
    min_treated : int
        Fewest treated people to estimate anything.

    Returns
    -------
    WeightingResult
    """
    check_alpha(alpha)
    if max_weight_quantile is not None and not 0.5 <= max_weight_quantile < 1:
        raise OutcomesError(f"max_weight_quantile must lie between 0.5 and 1 (e.g. 0.99), got {max_weight_quantile}")
    group = prepare(data, treatment, outcome, covariates, None, min_treated)
    model = _fit_logit(group.X, group.treated, group.names, penalty)
    notes: list[str] = []
    t, y, eta = group.treated, group.outcome, model.logit
    n, n_treated = len(t), int(t.sum())

    kept = np.ones(n, dtype=bool)
    if common_support:
        kept &= ~t | ((eta >= eta[~t].min()) & (eta <= eta[~t].max()))
        kept &= t | ((eta >= eta[t].min()) & (eta <= eta[t].max()))
    n_trimmed = int((~kept).sum())
    kt, kc = kept & t, kept & ~t
    if kt.sum() < min_treated:
        raise OutcomesError(f"no overlap: only {int(kt.sum())} of {n_treated} treated people have propensity scores "
                            f"inside the comparison pool's range; at least {min_treated} are needed")
    odds = np.exp(np.minimum(eta, 700))
    w = np.where(kc, odds, 0.0)
    capped = np.zeros(n, dtype=bool)
    if max_weight_quantile is not None:
        cap = float(np.quantile(w[kc], max_weight_quantile))
        capped = kc & (w > cap)
        w = np.where(capped, cap, w)
    n_capped = int(capped.sum())
    w_all = np.where(kt, 1.0, w)

    mu1 = float(y[kt].mean())
    sum_w = float(w.sum())
    mu0 = float(w @ y) / sum_w
    att = mu1 - mu0

    # Stacked estimating equations (beta, mu1, mu0) on standardised covariates; sandwich A^-1 B A^-T / n.
    centre, scale = group.X.mean(axis=0), group.X.std(axis=0)
    Z = np.empty((n, group.X.shape[1] + 1))
    Z[:, 0] = 1.0
    np.subtract(group.X, centre, out=Z[:, 1:])
    Z[:, 1:] /= scale
    prob = expit(eta)
    k = Z.shape[1]
    psi = np.empty((n, k + 2))
    psi[:, :k] = Z * (t - prob)[:, None]
    psi[:, k] = np.where(kt, y - mu1, 0.0)
    psi[:, k + 1] = w * (y - mu0)
    A = np.zeros((k + 2, k + 2))
    A[:k, :k] = -(Z * (prob * (1 - prob))[:, None]).T @ Z / n
    A[k, k] = -kt.sum() / n
    A[k + 1, k + 1] = -sum_w / n
    A[k + 1, :k] = ((w * (y - mu0) * ~capped)[:, None] * Z).sum(axis=0) / n
    B = psi.T @ psi / n
    A_inv = linalg.inv(A)
    cov = A_inv @ B @ A_inv.T / n
    c = np.zeros(k + 2)
    c[k], c[k + 1] = 1.0, -1.0
    se = math.sqrt(max(float(c @ cov @ c), 0.0))
    del Z, psi
    effect = EffectEstimate.normal(att, se, alpha)

    ess = sum_w**2 / float((w**2).sum())
    max_share = float(w.max()) / sum_w
    max_weight = float(w.max()) * kt.sum() / sum_w
    if n_trimmed:
        warn(notes, f"{n_trimmed} people outside common support were dropped ({n_treated - int(kt.sum())} treated): "
                    f"the effect is for the treated people who have comparable comparison people")
    if max_share > MAX_WEIGHT_SHARE:
        warn(notes, f"one comparison person carries {100 * max_share:.1f}% of the comparison group's weight "
                    f"(effective sample size {ess:.0f} of {int(kc.sum())}): the estimate leans on a few people; "
                    f"consider max_weight_quantile=0.99 or matching")
    balance = balance_table(group.X, t, group.names, treated_weights=kt.astype(float), control_weights=w)
    if balance.flagged:
        warn(notes, f"after weighting, |SMD| > {balance.threshold:g} for {', '.join(balance.flagged)}: the "
                    f"propensity model does not balance these; add interactions or squares, or use matching")
    settings = {"penalty": float(penalty), "common_support": bool(common_support),
                "max_weight_quantile": max_weight_quantile}
    return WeightingResult(
        att=effect, naive=naive_difference(y, t, alpha), treated_mean=mu1, control_mean=mu0, n_treated=n_treated,
        n_matched=int(kt.sum()), n_control_used=int((w > 0).sum()), n_trimmed=n_trimmed, n_capped=n_capped,
        ess_control=float(ess), max_weight=max_weight, max_weight_share=max_share, balance=balance,
        propensity=model, weights=pd.Series(w_all, index=group.index, name="weight"), settings=settings,
        warnings=tuple(notes), binary_outcome=is_binary(y), outcome=outcome, outcome_label=outcome_label,
        count_noun=count_noun, meaningful_effect=meaningful_effect)
