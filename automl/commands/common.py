"""Helpers shared by CLI modules: consoles, the database URL, JSON output."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from automl.errors import UserError

console = Console()
err_console = Console(stderr=True)

DEFAULT_DB_URL = "sqlite:///automl.db"


def resolve_db_url(ctx: typer.Context | None, explicit: str | None = None) -> str:
    """The store URL: an explicit option, else the global ``--db``, else ``AUTOML_DB``, else the default."""
    if explicit:
        return explicit
    obj = ctx.find_root().obj if ctx is not None else None
    if isinstance(obj, dict) and obj.get("db"):
        return obj["db"]
    return os.environ.get("AUTOML_DB") or DEFAULT_DB_URL


SPACE_OPTION_HELP = (
    "The genotype's search space. Required, and must match, to train a genotype of a user's NNI "
    "space (nni:module:Class): a genotype is data and never names code to import by itself."
)


def allowed_space(space_option: str | None, stored_config: Any = None) -> str | None:
    """The space the user chose explicitly, whose code a genotype may name (``nni:...``).

    ``--space`` on the command line, else -- for a stored run -- the ``search.space`` of the run's
    stored config (what the user passed to ``automl search --space``, which refuses an ``nni:``
    space coming from anywhere else). Anything else is data and allows nothing.
    """
    if space_option:
        return space_option
    search = stored_config.get("search") if isinstance(stored_config, dict) else None
    space = search.get("space") if isinstance(search, dict) else None
    return space if isinstance(space, str) else None


def check_space_option(genotype: Any, space_option: str | None) -> None:
    """``--space`` names the genotype's space: a different one is a mistake, reported before work."""
    have = genotype.get("space") if isinstance(genotype, dict) else None
    if space_option and have != space_option:
        raise UserError(f"--space {space_option} does not match the genotype's space '{have}'")


def guard_genotype_space(genotype: Any, space_option: str | None, stored_config: Any = None) -> str | None:
    """Check a genotype read from data against the user's explicit choice, before any work.

    Returns the space to pass on as ``allow_user_code`` (:func:`allowed_space`); a genotype naming a
    user's NNI space (``nni:...``) that the user did not choose is a one-line :class:`UserError`
    (:func:`search_spaces.registry.check_user_code`; nothing of the user's is imported).
    """
    from search_spaces.registry import UserCodeRefusedError, check_user_code

    check_space_option(genotype, space_option)
    allow = allowed_space(space_option, stored_config)
    name = genotype.get("space") if isinstance(genotype, dict) else None
    try:
        check_user_code(name, allow)
    except UserCodeRefusedError as exc:
        raise UserError(str(exc)) from None
    return allow


def print_json(payload: Any) -> None:
    """Plain JSON on stdout (no rich markup) so that it pipes into ``jq``."""
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
    sys.stdout.flush()


def write_report(out: Path | None, report: Any) -> None:
    """A bench's JSON report, written atomically (temp file + rename), then named on the console.

    One writer for every ``automl bench ...``: a report cut off half-way would read as valid JSON
    missing its last rows, or not parse at all.
    """
    if out is None:
        return
    from automl.checkpoint import atomic_write_bytes  # lazy: it imports torch

    atomic_write_bytes(out, json.dumps(report, indent=2, default=str).encode("utf-8"))
    console.print(f"wrote {out}")


def print_signal_warnings(signal: dict[str, Any] | None, what: str) -> None:
    """The learning checks' warnings (:mod:`automl.learning_checks`) on stderr, one line each,
    beginning ``WARNING:``: red when nothing was learned, yellow for a weak finding; nothing at
    all when the checks passed. On stderr so that ``--json`` output stays pure JSON."""
    from automl.learning_checks import NO_SIGNAL, warning_entries

    for severity, line in warning_entries(signal, what):
        style = "bold red" if severity == NO_SIGNAL else "yellow"
        err_console.print(line, style=style, highlight=False, soft_wrap=True, markup=False)
