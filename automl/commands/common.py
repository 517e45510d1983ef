"""Helpers shared by CLI modules: consoles, the database URL, JSON output."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from automl.redact import redact

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


def print_json(payload: Any) -> None:
    """Plain JSON on stdout (no rich markup) so that it pipes into ``jq``."""
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
    sys.stdout.flush()


def write_report(out: Path | None, report: Any) -> None:
    """A bench's JSON report, written with :func:`automl.atomic.atomic_write`, then named on the console.

    One writer for every ``automl bench ...``: a report cut off half-way would read as valid JSON
    missing its last rows, or not parse at all. Check ``out`` with :func:`check_report_out` before
    the benchmark runs, so that an unwritable path fails in a second, not after the work.
    """
    if out is None:
        return
    from automl.atomic import atomic_write_bytes

    atomic_write_bytes(out, json.dumps(report, indent=2, default=str).encode("utf-8"))
    console.print(f"wrote {out}")


def check_report_out(out: Path | None) -> None:
    """Fail now (one-line :class:`~automl.atomic.ArtifactWriteError`, exit 2) when a bench's
    ``--out`` could not be written later: a missing-permission or read-only directory, a directory."""
    if out is not None:
        from automl.atomic import check_writable

        check_writable(out)


def print_signal_warnings(signal: dict[str, Any] | None, what: str) -> None:
    """The learning checks' warnings (:mod:`automl.learning_checks`) on stderr, one line each,
    beginning ``WARNING:``: red when nothing was learned, yellow for a weak finding; nothing at
    all when the checks passed. On stderr so that ``--json`` output stays pure JSON."""
    from automl.learning_checks import NO_SIGNAL, warning_entries

    for severity, line in warning_entries(signal, what):
        style = "bold red" if severity == NO_SIGNAL else "yellow"
        err_console.print(line, style=style, highlight=False, soft_wrap=True, markup=False)


@contextmanager
def progress_bar(*, enabled: bool = True, stderr: bool = False) -> Iterator[Any]:
    """The CLI's one renderer of :class:`automl.progress.ProgressEvent`: a rich bar per job.

    Yields the callback to hand to the library (``None`` when disabled, e.g. with ``--json``);
    ``stderr`` draws there (commands whose stdout is data), transient.
    """
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bars = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TextColumn("ETA {task.fields[eta]}"),
        console=err_console if stderr else console,
        transient=stderr,
    )
    tasks: dict[str, Any] = {}

    def on_event(event: Any) -> None:
        if event.job not in tasks:
            tasks[event.job] = bars.add_task(event.job, total=event.total, info="", eta="?")
        bars.update(tasks[event.job], completed=event.done, total=event.total, info=escape(event.message),
                    eta=format_eta(event.eta_s))

    with bars:
        yield on_event


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


RESUME_HINTS = {
    "search": "automl{db} search --resume {run_id}",
    "hpo": "run the same automl{db} hpo command again (the study continues)",
    "train": "automl{db} train again (training restarts from its target)",
}


def interrupted_message(exc: BaseException, db_url: str | None) -> str:
    """What the CLI prints when a run was stopped by Ctrl-C, SIGTERM or SIGHUP."""
    how = getattr(exc, "signal_name", None) or "Ctrl-C"
    run_id, kind = getattr(exc, "run_id", None), getattr(exc, "run_kind", None)
    if run_id is None:
        return f"interrupted ({how})"
    db = f" --db {redact(db_url)}" if db_url else ""
    hint = RESUME_HINTS.get(str(kind), "").format(db=db, run_id=run_id)
    return f"{kind} run {run_id} interrupted ({how}); it is marked interrupted" + (
        f"; continue it with: {hint}" if hint else ""
    )
