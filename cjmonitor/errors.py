"""One error hierarchy for the application.

Every error a user can cause (bad configuration, a bad file, an unknown contract)
is a ``CjmonitorError`` with a message that says what is wrong and what to do.
The CLI prints these without a traceback and exits non-zero. Messages never carry
personal data (names, dates of birth, raw identifiers).
"""

from contracts.errors import ContractsError
from outcomes.errors import OutcomesError
from reports.pdf import PdfEngineError


class CjmonitorError(Exception):
    """Base for every error the user can act on."""

    exit_code = 2


class ConfigError(CjmonitorError):
    """A setting is missing or invalid."""


class NotFoundError(CjmonitorError):
    """A named area, contract, provider or period does not exist."""


class InputFileError(CjmonitorError):
    """An input file cannot be read or used; the message names file, row and column."""


USER_ERRORS: tuple[type[Exception], ...] = (CjmonitorError, ContractsError, OutcomesError, PdfEngineError)
