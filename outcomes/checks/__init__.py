"""Robustness checks as modules (as in CausalPy's checks): each takes the data a method ran on and returns a
:class:`CheckResult` with its own headline.

* :func:`its_placebo_in_time` and :func:`synth_placebo_in_time`: the same method with a fake intervention
  inside the pre-intervention period, where there was no change to find;
* :func:`synth_leave_one_out`: the synthetic control refitted without each donor that carries weight.
"""

from outcomes.checks.base import CheckResult
from outcomes.checks.leave_one_out import synth_leave_one_out
from outcomes.checks.placebo_time import its_placebo_in_time, synth_placebo_in_time

__all__ = ["CheckResult", "its_placebo_in_time", "synth_placebo_in_time", "synth_leave_one_out"]
