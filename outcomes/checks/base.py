"""The result every robustness check returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import pandas as pd

from outcomes.results import Estimate, Result


@dataclass(frozen=True, eq=False)
class CheckResult(Result):
    """A robustness check of a method's result.

    Attributes
    ----------
    check : str
        e.g. "placebo in time", "leave one donor out".
    checked_method : str
        The method being checked ("interrupted time series", "synthetic control").
    passed : bool or None
        True when the check finds nothing to worry about, False when it does, None when it could not be run.
    estimate : Estimate or None
        The check's own estimate (the fake intervention's effect; for leave-one-out, the range of effects).
    table : pandas.DataFrame
        Details (e.g. one row per donor left out).
    sentence : str
        The headline, in plain words.
    """

    citation: ClassVar[str] = ("Abadie, Diamond & Hainmueller (2015), AJPS 59:495 (placebo in time, leave-one-out); "
                               "Lopez Bernal, Cummins & Gasparrini (2017) for ITS falsification tests")

    check: str
    checked_method: str
    passed: bool | None
    estimate: Estimate | None
    table: pd.DataFrame = field(repr=False)
    sentence: str
    alpha: float
    n: int
    warnings: tuple[str, ...] = ()

    @property
    def method(self) -> str:  # type: ignore[override]
        return f"robustness check: {self.check} ({self.checked_method})"

    @property
    def nobs(self) -> int:
        return self.n

    @property
    def headline(self) -> str:
        return self.sentence

    def estimates(self) -> dict:
        return {self.check: self.estimate} if self.estimate is not None else {}

    def _payload(self) -> dict:
        table = self.table.astype(object).where(self.table.notna(), None)
        return {"check": self.check, "checked_method": self.checked_method, "passed": self.passed,
                "table": [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
                          for r in table.to_dict(orient="records")]}
