"""Errors of the commissioning domain that a user can act on.

``contracts`` may import only ``outcomes`` (design.md), so its errors live here;
``cjmonitor.errors`` counts them as user errors, printed without a traceback.
"""


class ContractsError(Exception):
    """Base for domain errors with an actionable message."""


class SourceConfigError(ContractsError):
    """The sources file or a source (drop folder, SFTP server) is misconfigured or unreachable."""


class DeclaredKpiError(ContractsError):
    """A declared KPI that cannot be derived (e.g. its SQL file is missing or returns the wrong columns)."""
