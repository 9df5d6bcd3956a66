"""The one error type raised by the statistics package.

``outcomes`` imports nothing from the rest of the project, so it carries its own
base error; the application shell (``cjmonitor.errors``) treats it as a user error
and the CLI prints its message without a traceback.
"""


class OutcomesError(ValueError):
    """Input that a method cannot use, with a message saying what is wrong and how to fix it."""
