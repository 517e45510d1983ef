"""Helpers shared by CLI modules: consoles, the database URL, JSON output."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

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
