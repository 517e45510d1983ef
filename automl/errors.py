"""User-facing errors.

Anything a user can cause (a wrong path, a malformed CSV, an unknown op in a genotype, an
unreachable database) is raised as :class:`UserError` with a one-line message that says what is
wrong and how to fix it. The CLI turns it into that line on stderr and exit code 2; library users
can catch it like any ``ValueError``. Programming errors stay ordinary exceptions so they keep
their tracebacks.
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input from the user: reported as one line, CLI exit code 2."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        # Keep it to one line: the CLI prints it verbatim.
        super().__init__(" ".join(str(message).split()))
