"""User-facing errors.

Anything a user can cause (a wrong path, a malformed CSV, an unknown op in a genotype, an
unreachable database) is raised as :class:`UserError` with a one-line message that says what is
wrong and how to fix it. The CLI turns it into that line on stderr and exit code 2; library users
can catch it like any ``ValueError``. Programming errors stay ordinary exceptions so they keep
their tracebacks.
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input from the user: reported as one line, CLI exit code 2.

    The message speaks of the thing in the library's terms (the device, the data spec, the
    seed), never of a command-line option: the library is used without a command line too.
    ``argument`` names the parameter of the library call the error is about (``"device"``,
    ``"seed"``, ``"data"``...), when there is one; the CLI maps it to the option that set it
    (:data:`automl.commands.flags.ARGUMENT_FLAGS`) and appends that as a hint.
    """

    exit_code = 2

    def __init__(self, message: str, *, argument: str | None = None) -> None:
        # Keep it to one line: the CLI prints it verbatim.
        super().__init__(" ".join(str(message).split()))
        self.argument = argument
