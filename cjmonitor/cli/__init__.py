"""The ``cjmonitor`` command line: the root group; one module per command group beside this one.

User errors (``CjmonitorError``, ``OutcomesError``) are printed as one clear
message on stderr with exit code 2; anything else is a bug and keeps its traceback.

Start-up: lazy imports (read this before adding a command or a module to this package)
-------------------------------------------------------------------------------------
Every ``cjmonitor`` process imports this package and every command module it adds below, so
``cjmonitor --help`` costs whatever they import at the top. At module level import only the
standard library, ``click``, ``cjmonitor.errors``, ``cjmonitor.settings``, ``cjmonitor.period`` and
``cjmonitor.cli.common`` (the group class, shared options and output helpers). Everything else
(pandas, numpy, scipy, statsmodels, matplotlib, jinja2, sqlmodel/sqlalchemy, ``contracts.*``, ``outcomes.*``, ``reports.*``,
``cjmonitor.pipeline``/``db``/``demo``) is imported inside the command function that uses it::

    @click.command()
    def mycommand(home):
        from cjmonitor.pipeline import something   # here, not at the top

For type hints of such types write ``from __future__ import annotations`` and import them under
``if TYPE_CHECKING:``. A light command that only checks the schema imports ``ensure_schema`` from
``cjmonitor.migrate`` (not from ``cjmonitor.pipeline``, which imports pandas).
``tests/test_startup.py`` fails if ``import cjmonitor.cli`` pulls in pandas, numpy, scipy,
statsmodels, matplotlib, jinja2 or sqlmodel, or if ``cjmonitor --help`` becomes slow.
"""

from __future__ import annotations

import logging
import sys

import click

from cjmonitor.cli import (
    contracts,
    db,
    distribute,
    ingest,
    pipeline,
    recipients,
    register,
    reports,
    returns,
    specs,
    system,
    world,
)
from cjmonitor.cli.analyse import analyse
from cjmonitor.cli.common import _Group, _quiet_callback


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log progress to stderr.")
@click.option("-q", "--quiet", is_flag=True, callback=_quiet_callback,
              help="No progress bars or progress lines (CJMONITOR_PROGRESS=off does the same).")
@click.version_option(package_name="cjmonitor")
def cli(verbose: bool, quiet: bool) -> None:
    """cjmonitor: commissioning outcomes and contract performance for criminal-justice commissioners.

    Pulls providers' monthly returns, validates and stores them, derives KPIs, judges them
    against contract targets with proper statistics, and writes scorecards and reports.
    """
    from cjmonitor import progress

    progress.configure(enabled=not quiet, json_output=False)  # each command starts from the defaults
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


for command in (
    analyse,
    db.db,
    world.generate, world.demo,
    ingest.ingest,
    returns.returns,
    pipeline.run, pipeline.derive, pipeline.judge, pipeline.render,
    contracts.scorecard, contracts.credits, contracts.list_contracts, contracts.vary_command,
    contracts.targets_command, contracts.funnel_command, contracts.breakdowns_command, contracts.value_command,
    distribute.distribute,
    recipients.recipients,
    specs.specs,
    reports.pack, reports.report, reports.bundle,
    register.init_command, register.register_group, register.frameworks_command, register.areas_command,
    system.system_group, system.pathway_command, system.links_command,
):
    cli.add_command(command)
reports.report.add_command(system.lcjb_command)  # `cjmonitor report lcjb`, beside `report monthly`


def main() -> None:
    cli(prog_name="cjmonitor")


if __name__ == "__main__":
    main()
