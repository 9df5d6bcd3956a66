"""Shared plumbing for the comparison-group designs (matching, weighting).

Input validation that turns bad data into an :class:`OutcomesError` saying what is
wrong and how to fix it, the covariate design matrix (categorical columns become
dummies), the effect-with-interval record every design returns, and a helper that
both emits a warning and keeps it for the result object.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from outcomes.errors import OutcomesError
from outcomes.results import Estimate

MIN_TREATED = 30
"""Fewest treated people a comparison-group estimate is made for (the JDL asks for at least 60)."""


class ComparisonGroupWarning(UserWarning):
    """A caveat about a comparison-group estimate (dropped people, residual imbalance, extreme weights)."""


EffectEstimate = Estimate
"""The comparison-group designs' effect record: the shared :class:`outcomes.results.Estimate`."""


def check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise OutcomesError(f"alpha must lie between 0 and 1 (e.g. 0.05 for a 95% interval), got {alpha}")


def warn(notes: list[str], message: str, stacklevel: int = 3) -> None:
    """Emit ``message`` as a :class:`ComparisonGroupWarning` and keep it for the result object."""
    notes.append(message)
    warnings.warn(message, ComparisonGroupWarning, stacklevel=stacklevel)


def _rows(mask: np.ndarray, limit: int = 5) -> str:
    positions = np.flatnonzero(mask)[:limit]
    more = ", ..." if mask.sum() > limit else ""
    return ", ".join(str(int(p)) for p in positions) + more


def require_columns(data: pd.DataFrame, columns: list[str]) -> None:
    if not isinstance(data, pd.DataFrame):
        raise OutcomesError(f"expected a pandas DataFrame, got {type(data).__name__}")
    seen = set()
    for column in columns:
        if column in seen:
            raise OutcomesError(f"column {column!r} is named twice (e.g. as both treatment and covariate)")
        seen.add(column)
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise OutcomesError(f"column(s) {', '.join(repr(c) for c in missing)} not found; the data has: "
                            f"{', '.join(map(str, data.columns[:30]))}")


def require_complete(data: pd.DataFrame, columns: list[str]) -> None:
    """Missing values are an error, never silently dropped: say where they are."""
    problems = []
    for column in columns:
        mask = data[column].isna().to_numpy()
        if mask.any():
            problems.append(f"column {column!r} has {int(mask.sum())} missing value(s) (rows {_rows(mask)})")
    if problems:
        raise OutcomesError("; ".join(problems) + ". Drop or impute those rows first (and say how in the report).")


def binary_indicator(series: pd.Series, role: str) -> np.ndarray:
    """A 0/1 column as a boolean array, or an error listing the values that are not 0/1."""
    if pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=bool)
    values = pd.unique(series)
    bad = [v for v in values if not (isinstance(v, (int, float, np.integer, np.floating)) and v in (0, 1))]
    if bad:
        shown = ", ".join(repr(v.item() if isinstance(v, np.generic) else v) for v in bad[:5])
        raise OutcomesError(f"{role} column {series.name!r} must hold only 0 and 1, but it also holds {shown}; "
                            f"recode it (e.g. 1 = served, 0 = not served)")
    return series.to_numpy(dtype=float) == 1


def numeric_column(series: pd.Series, role: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=float)
    if not pd.api.types.is_numeric_dtype(series):
        example = series.dropna().astype(str).head(3).tolist()
        raise OutcomesError(f"{role} column {series.name!r} must be numeric, found values like {example}")
    values = series.to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise OutcomesError(f"{role} column {series.name!r} has infinite values (rows {_rows(~np.isfinite(values))})")
    return values


def design_matrix(data: pd.DataFrame, covariates: list[str]) -> tuple[np.ndarray, list[str]]:
    """Covariates as a float matrix; text or categorical columns become dummies (first level dropped)."""
    blocks, names = [], []
    for column in covariates:
        series = data[column]
        if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
            values = numeric_column(series, "covariate")
            if np.ptp(values) == 0:
                raise OutcomesError(f"covariate {column!r} takes the same value ({values[0]:g}) for everyone, so it "
                                    f"cannot explain who was treated; drop it from the covariates")
            blocks.append(values[:, None])
            names.append(str(column))
        else:
            levels = sorted(pd.unique(series.astype(str)))
            if len(levels) < 2:
                raise OutcomesError(f"covariate {column!r} takes the same value ({levels[0]!r}) for everyone; drop it")
            if len(levels) > 50:
                raise OutcomesError(f"covariate {column!r} is text with {len(levels)} distinct values; "
                                    f"group it into fewer categories or make it numeric")
            text = series.astype(str).to_numpy()
            for level in levels[1:]:
                blocks.append((text == level).astype(float)[:, None])
                names.append(f"{column}={level}")
    if not blocks:
        raise OutcomesError("give at least one covariate to build the comparison group on")
    matrix = np.hstack(blocks) if len(blocks) > 1 else blocks[0]
    return np.ascontiguousarray(matrix), names


@dataclass(frozen=True)
class GroupData:
    """Validated arrays for a treated-versus-comparison design."""

    treated: np.ndarray  # bool, one per row
    outcome: np.ndarray  # float
    X: np.ndarray  # covariate design matrix (n, p)
    names: list[str]  # design-matrix column names
    strata: np.ndarray  # int codes of the exact-matching strata (all 0 when none)
    index: pd.Index  # the input frame's row labels


def prepare(data: pd.DataFrame, treatment: str, outcome: str, covariates: list[str] | str,
            exact: list[str] | str | None = None, min_treated: int = MIN_TREATED) -> GroupData:
    """Validate a person-level frame for matching or weighting and build its arrays."""
    covariates = [covariates] if isinstance(covariates, str) else list(covariates)
    exact = [] if exact is None else ([exact] if isinstance(exact, str) else list(exact))
    if not covariates:
        raise OutcomesError("give at least one covariate to build the comparison group on")
    columns = [treatment, outcome, *covariates]
    require_columns(data, columns)
    columns += [c for c in exact if c not in covariates]
    require_columns(data, columns)
    require_complete(data, columns)
    treated = binary_indicator(data[treatment], "treatment")
    y = numeric_column(data[outcome], "outcome")
    n_treated, n_control = int(treated.sum()), int((~treated).sum())
    if n_treated < min_treated:
        raise OutcomesError(f"only {n_treated} treated people (treatment column {treatment!r} = 1); at least "
                            f"{min_treated} are needed for a comparison-group estimate (the Justice Data Lab asks for 60)")
    if n_control < min_treated:
        raise OutcomesError(f"only {n_control} people in the comparison pool ({treatment!r} = 0); at least "
                            f"{min_treated} are needed")
    X, names = design_matrix(data, covariates)
    if exact:
        strata = data[exact].astype(str).agg("\x1f".join, axis=1) if len(exact) > 1 else data[exact[0]].astype(str)
        codes = pd.factorize(strata.to_numpy())[0]
    else:
        codes = np.zeros(len(data), dtype=np.int64)
    return GroupData(treated, y, X, names, codes, data.index)


def is_binary(values: np.ndarray) -> bool:
    return bool(np.isin(values, (0.0, 1.0)).all())


def jdl_headline(treated_mean: float, control_mean: float, effect: EffectEstimate, *, binary: bool,
                 label: str = "reoffended") -> str:
    """The Justice Data Lab's plain statement of a comparison-group result.

    For a 0/1 outcome: "34 of 100 people reoffended vs 39 of 100 in the comparison group; difference
    -5.0 points (95% CI -8.1 to -1.9); significant". For any other outcome the group means are given.
    """
    level = f"{100 * (1 - effect.alpha):g}%"
    verdict = "significant" if effect.significant else "not significant"
    if binary:
        return (f"{100 * treated_mean:.0f} of 100 people {label} vs {100 * control_mean:.0f} of 100 in the comparison "
                f"group; difference {100 * effect.estimate:.1f} points ({level} CI {100 * effect.ci_low:.1f} to "
                f"{100 * effect.ci_high:.1f}); {verdict}")
    return (f"mean {label} {treated_mean:.3g} vs {control_mean:.3g} in the comparison group; difference "
            f"{effect.estimate:.3g} ({level} CI {effect.ci_low:.3g} to {effect.ci_high:.3g}); {verdict}")


def naive_difference(y: np.ndarray, treated: np.ndarray, alpha: float) -> EffectEstimate:
    """Treated minus untreated mean with a Welch standard error: what the comparison group corrects."""
    yt, yc = y[treated], y[~treated]
    se = float(np.sqrt(yt.var(ddof=1) / len(yt) + yc.var(ddof=1) / len(yc)))
    return EffectEstimate.normal(float(yt.mean() - yc.mean()), se, alpha)
