"""``cjmonitor analyse``: the outcomes methods on any CSV, one module per method family."""

from __future__ import annotations

import click

from cjmonitor.cli.analyse import groups, its, spc, survival
from cjmonitor.cli.common import _Group


@click.group(cls=_Group)
def analyse() -> None:
    """Run an outcomes method on any CSV (interrupted time series, matching, DiD, ...)."""


for command in (its.its_command, groups.match_command, groups.ipw_command, groups.did_command, groups.synth_command,
                groups.mde_command, survival.survival_command, spc.spc_command):
    analyse.add_command(command)
