"""One result API for every method in ``outcomes``.

Every estimate is an :class:`Estimate` (point, standard error, ``1 - alpha`` interval, p-value and the
``alpha`` it was made at). Every result object derives from :class:`Result` and so carries the same
names, as linearmodels' results do (``method``, ``citation``, ``alpha``, ``nobs``, ``warnings``,
``summary()``, ``to_dict()``), and, like CausalPy's result bundles, a table of its estimates
(:meth:`Result.table`), one plain-English sentence (:attr:`Result.headline`) and an HTML view for
notebooks (``_repr_html_``).

A subclass sets ``method`` and ``citation`` (class attributes, or properties when they depend on the
fit), and implements:

* ``nobs`` (observations the estimate used) and ``alpha``,
* ``headline`` (one sentence that claims no more than the numbers: an interval that includes no change
  is reported as "could be between a and b", never as "no effect"),
* ``estimates()`` returning ``{name: Estimate}`` (the main one first),
* ``_payload()`` returning the method-specific part of ``to_dict()``,
* optionally ``_summary_lines()`` for extra lines in ``summary()``.

``to_dict()`` is JSON-ready: the shared keys (``method``, ``citation``, ``alpha``, ``nobs``,
``headline``, ``warnings``, ``estimates``) and then the payload.

Examples
--------
>>> e = Estimate.normal(-0.05, 0.02, 0.05)
>>> round(e.ci_low, 4), round(e.ci_high, 4), e.significant
(-0.0892, -0.0108, True)
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy.stats import norm
from scipy.stats import t as student_t

__all__ = ["Estimate", "Result", "level", "plain", "fmt_interval"]


@dataclass(frozen=True)
class Estimate:
    """An effect with its standard error, ``1 - alpha`` interval and two-sided p-value.

    ``se`` and ``p_value`` may be NaN when the interval does not come from a standard error (e.g. a
    simulation or a test-inversion interval); the interval is then whatever the method states.
    """

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    alpha: float = 0.05

    @classmethod
    def normal(cls, estimate: float, se: float, alpha: float) -> Estimate:
        """Wald interval and p-value from a normal approximation."""
        z = norm.ppf(1 - alpha / 2)
        if se > 0 and math.isfinite(se):
            p_value = float(2 * norm.sf(abs(estimate) / se))
        else:
            p_value = float("nan")
        return cls(float(estimate), float(se), float(estimate - z * se), float(estimate + z * se), p_value, alpha)

    @classmethod
    def student(cls, estimate: float, se: float, df: float, alpha: float) -> Estimate:
        """Interval and p-value from Student's t with ``df`` degrees of freedom."""
        q = student_t.ppf(1 - alpha / 2, df)
        p_value = float(2 * student_t.sf(abs(estimate) / se, df)) if se > 0 else float("nan")
        return cls(float(estimate), float(se), float(estimate - q * se), float(estimate + q * se), p_value, alpha)

    @property
    def significant(self) -> bool:
        """True when the p-value is below ``alpha`` (or, with no p-value, the interval excludes zero)."""
        if math.isfinite(self.p_value):
            return bool(self.p_value < self.alpha)
        return bool(self.ci_low > 0 or self.ci_high < 0)

    @property
    def level(self) -> str:
        """The interval's confidence level as text, e.g. "95%"."""
        return level(self.alpha)

    def to_dict(self) -> dict:
        return {"estimate": plain(self.estimate), "se": plain(self.se), "ci_low": plain(self.ci_low),
                "ci_high": plain(self.ci_high), "p_value": plain(self.p_value), "alpha": self.alpha}


def level(alpha: float) -> str:
    """``0.05`` -> ``"95%"``."""
    return f"{100 * (1 - alpha):g}%"


def plain(value):
    """A JSON-ready value: numpy scalars to Python, NaN and infinities to None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def fmt_interval(e: Estimate, scale: float = 1.0, digits: int = 1, unit: str = "") -> str:
    """``"-5.0 (95% CI -8.1 to -1.9)"`` for an estimate, scaled (e.g. 100 for points)."""
    u = f" {unit}" if unit else ""
    return (f"{e.estimate * scale:.{digits}f}{u} ({e.level} CI {e.ci_low * scale:.{digits}f} to "
            f"{e.ci_high * scale:.{digits}f})")


class Result:
    """The base every result object shares (see the module docstring)."""

    method: ClassVar[str] = ""
    citation: ClassVar[str] = ""
    warnings: tuple[str, ...] = ()

    # -- to implement
    @property
    def alpha(self) -> float:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    @property
    def nobs(self) -> int:  # pragma: no cover
        raise NotImplementedError

    @property
    def headline(self) -> str:  # pragma: no cover
        raise NotImplementedError

    def estimates(self) -> dict[str, Estimate]:
        """The result's estimates by name, main one first."""
        return {}

    def _payload(self) -> dict:
        return {}

    def _summary_lines(self) -> list[str]:
        return []

    # -- shared
    def table(self) -> pd.DataFrame:
        """One row per estimate: ``name, estimate, se, ci_low, ci_high, p_value``."""
        rows = [{"name": name, **{k: v for k, v in e.to_dict().items() if k != "alpha"}}
                for name, e in self.estimates().items()]
        return pd.DataFrame(rows, columns=["name", "estimate", "se", "ci_low", "ci_high", "p_value"])

    def to_dict(self) -> dict:
        """JSON-ready: the shared keys, then the method's own."""
        out = {"method": self.method, "citation": self.citation, "alpha": self.alpha, "nobs": int(self.nobs),
               "headline": self.headline, "warnings": list(self.warnings),
               "estimates": {name: e.to_dict() for name, e in self.estimates().items()}}
        out.update(self._payload())
        return out

    def summary(self) -> str:
        """A plain-text report: method, citation, estimates, the headline and every warning."""
        lines = [f"{self.method} (n = {self.nobs}, alpha = {self.alpha:g})", f"  {self.citation}"]
        frame = self.table()
        if len(frame):
            lines.append(f"  {'':<24}{'estimate':>12}{'se':>12}{'ci low':>12}{'ci high':>12}{'p':>10}")
            for row in frame.itertuples():
                lines.append(f"  {str(row.name)[:23]:<24}{_num(row.estimate):>12}{_num(row.se):>12}"
                             f"{_num(row.ci_low):>12}{_num(row.ci_high):>12}{_num(row.p_value, 3):>10}")
        lines += [f"  {line}" for line in self._summary_lines()]
        lines.append(f"  {self.headline}")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        esc = html.escape
        head = "".join(f"<th>{h}</th>" for h in ("", "estimate", "se", f"{level(self.alpha)} CI", "p"))
        body = "".join(
            f"<tr><th>{esc(str(r.name))}</th><td>{_num(r.estimate)}</td><td>{_num(r.se)}</td>"
            f"<td>{_num(r.ci_low)} to {_num(r.ci_high)}</td><td>{_num(r.p_value, 3)}</td></tr>"
            for r in self.table().itertuples())
        warn = "".join(f"<li>{esc(w)}</li>" for w in self.warnings)
        return (f"<div class='cjm-result'><p><strong>{esc(self.method)}</strong> (n = {self.nobs}, "
                f"alpha = {self.alpha:g})</p><p>{esc(self.headline)}</p>"
                + (f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>" if body else "")
                + (f"<p>Caveats:</p><ul>{warn}</ul>" if warn else "")
                + f"<p><small>{esc(self.citation)}</small></p></div>")


def _num(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}g}"
