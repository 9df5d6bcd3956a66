"""Covariate balance between a treated group and its (matched or weighted) comparison group.

Standardised mean differences follow Austin (2009, Statistics in Medicine 28:3083):
the difference in means divided by the pooled standard deviation
``sqrt((s_t^2 + s_c^2) / 2)`` of the *unmatched* samples, so that before and after
are on the same scale and a change reflects the means, not a shrinking denominator.
An absolute SMD above 0.1 is flagged (Austin 2009; the Justice Data Lab's
"standardised differences under 10%"). Variance ratios (treated / comparison) far
from 1 (outside 0.5 to 2, Rubin 2001) are marked in the summary as worth a look.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

SMD_THRESHOLD = 0.1
VARIANCE_RATIO_RANGE = (0.5, 2.0)


def _weighted_moments(X: np.ndarray, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    if weights is None:
        return X.mean(axis=0), X.var(axis=0, ddof=1) if len(X) > 1 else np.zeros(X.shape[1])
    w = weights / weights.sum()
    mean = w @ X
    # Reliability-weighted variance, unbiased for frequency-like weights (reduces to ddof=1 when all equal).
    v2 = (w**2).sum()
    var = (w @ (X - mean) ** 2) / (1 - v2) if v2 < 1 else np.zeros(X.shape[1])
    return mean, var


@dataclass(frozen=True)
class BalanceTable:
    """Balance before and after matching or weighting.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per covariate (dummies for each category): means, SMD and variance ratio before and after.
    max_smd_before, max_smd_after : float
        Largest absolute SMD before and after.
    threshold : float
        The SMD above which a covariate is flagged (0.1).
    flagged : tuple of str
        Covariates whose absolute SMD after adjustment exceeds ``threshold``.
    """

    table: pd.DataFrame = field(repr=False)
    max_smd_before: float
    max_smd_after: float
    threshold: float
    flagged: tuple[str, ...]

    @property
    def balanced(self) -> bool:
        """True when no covariate's absolute SMD after adjustment exceeds the threshold."""
        return not self.flagged

    def summary(self) -> str:
        lines = [f"{'covariate':<28}{'SMD before':>11}{'SMD after':>11}{'VR after':>10}  flag"]
        for row in self.table.itertuples():
            flag = "IMBALANCED" if abs(row.smd_after) > self.threshold else ""
            low, high = VARIANCE_RATIO_RANGE
            if not low <= row.variance_ratio_after <= high:
                flag = (flag + " variance-ratio").strip()
            lines.append(f"{row.covariate[:27]:<28}{row.smd_before:>11.3f}{row.smd_after:>11.3f}"
                         f"{row.variance_ratio_after:>10.2f}  {flag}")
        verdict = (f"balanced: every |SMD| <= {self.threshold:.2f}" if self.balanced else
                   f"NOT BALANCED: |SMD| > {self.threshold:.2f} for {', '.join(self.flagged)}")
        lines.append(f"max |SMD| before {self.max_smd_before:.3f}, after {self.max_smd_after:.3f}; {verdict}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        records = [{k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in row.items()}
                   for row in self.table.to_dict(orient="records")]
        return {"max_smd_before": self.max_smd_before, "max_smd_after": self.max_smd_after,
                "threshold": self.threshold, "balanced": self.balanced, "flagged": list(self.flagged),
                "table": records}


def balance_table(X: np.ndarray, treated: np.ndarray, names: list[str], *,
                  treated_weights: np.ndarray | None = None, control_weights: np.ndarray | None = None,
                  threshold: float = SMD_THRESHOLD) -> BalanceTable:
    """Standardised mean differences and variance ratios before and after adjustment (Austin 2009).

    Parameters
    ----------
    X : ndarray (n, p)
        Covariates for everyone (treated and the whole comparison pool).
    treated : ndarray of bool (n,)
        Treatment indicator.
    names : list of str
        Covariate names, one per column of ``X``.
    treated_weights, control_weights : ndarray (n,), optional
        Weights after adjustment (matching frequency weights or IPW weights); zero drops a person.
        ``None`` means everyone in that group counts once.
    threshold : float
        Absolute SMD above which a covariate is flagged.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0], [2.0], [3.0], [4.0]]); t = np.array([True, True, False, False])
    >>> round(balance_table(X, t, ["x"]).max_smd_before, 3)
    2.828
    """
    treated = np.asarray(treated, dtype=bool)
    Xt, Xc = X[treated], X[~treated]
    mean_t, var_t = _weighted_moments(Xt, None)
    mean_c, var_c = _weighted_moments(Xc, None)
    pooled_sd = np.sqrt((var_t + var_c) / 2)
    pooled_sd = np.where(pooled_sd > 0, pooled_sd, np.nan)

    wt = None if treated_weights is None else np.asarray(treated_weights, dtype=float)[treated]
    wc = None if control_weights is None else np.asarray(control_weights, dtype=float)[~treated]
    keep_t = slice(None) if wt is None else wt > 0
    keep_c = slice(None) if wc is None else wc > 0
    mean_t_after, var_t_after = _weighted_moments(Xt[keep_t], None if wt is None else wt[keep_t])
    mean_c_after, var_c_after = _weighted_moments(Xc[keep_c], None if wc is None else wc[keep_c])

    with np.errstate(invalid="ignore", divide="ignore"):
        smd_before = np.nan_to_num((mean_t - mean_c) / pooled_sd)
        smd_after = np.nan_to_num((mean_t_after - mean_c_after) / pooled_sd)
        vr_before = np.where(var_c > 0, var_t / var_c, np.nan)
        vr_after = np.where(var_c_after > 0, var_t_after / var_c_after, np.nan)
    table = pd.DataFrame({
        "covariate": list(names),
        "mean_treated_before": mean_t, "mean_control_before": mean_c,
        "mean_treated_after": mean_t_after, "mean_control_after": mean_c_after,
        "smd_before": smd_before, "smd_after": smd_after,
        "variance_ratio_before": vr_before, "variance_ratio_after": vr_after,
    })
    flagged = tuple(name for name, smd in zip(names, smd_after, strict=True) if abs(smd) > threshold)
    return BalanceTable(table, float(np.max(np.abs(smd_before))), float(np.max(np.abs(smd_after))),
                        threshold, flagged)
