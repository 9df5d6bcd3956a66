"""Statistics for judging outcomes: pure functions on pandas/numpy in, frozen results out.

Imports nothing from the rest of the project (see design.md).
"""

from outcomes.errors import OutcomesError

__all__ = ["OutcomesError"]
