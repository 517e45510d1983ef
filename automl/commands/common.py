"""Helpers shared by CLI modules: consoles, the database URL, JSON output."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from automl.errors import UserError
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


def print_json(payload: Any) -> None:
    """Plain JSON on stdout (no rich markup) so that it pipes into ``jq``."""
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
    sys.stdout.flush()


def print_table(
    title: str | None,
    columns: Sequence[str | tuple[str, dict[str, Any]]],
    rows: Iterable[Sequence[Any]],
    *,
    left: Collection[str] | None = None,
    **table_options: Any,
) -> None:
    """The CLI's one table renderer: ``(title, columns, rows)`` of plain data, as the library's report
    functions return them (e.g. :func:`automl.nas.bench_report.results_table`), as a rich table.

    A cell is text, never markup (a :class:`rich.text.Text` cell keeps its style); an empty row
    ends a group of rows with a rule. The columns named in ``left`` (default: the first) are
    left-aligned, the others right-aligned; a column given as ``(name, options)`` passes
    ``options`` to :meth:`rich.table.Table.add_column`; ``table_options`` go to the table.
    """
    from rich.table import Table
    from rich.text import Text

    names = [c if isinstance(c, str) else c[0] for c in columns]
    left = set(names[:1] if left is None else left)
    table = Table(title=None if title is None else escape(title), **table_options)
    for name, options in ((c, {}) if isinstance(c, str) else c for c in columns):
        table.add_column(escape(name), **{"justify": "left" if name in left else "right", **options})
    for row in rows:
        if row:
            table.add_row(*(cell if isinstance(cell, Text) else Text(str(cell)) for cell in row))
        else:
            table.add_section()
    console.print(table)


def print_targets(targets: dict[str, bool]) -> None:
    """A benchmark's targets, one ``target NAME: met`` / ``NOT met`` line each."""
    for key, ok in targets.items():
        console.print(f"target {key}: {'[green]met[/]' if ok else '[red]NOT met[/]'}")


@contextmanager
def hashing_errors() -> Iterator[None]:
    """A :class:`hashing.errors.HashingError` as a one-line :class:`UserError` naming the options:
    each parameter of its ``param`` (``"k,radius"``) is replaced in the message by the option that
    sets it (:data:`automl.commands.flags.ARGUMENT_FLAGS`), or appended when the message has none."""
    from automl.commands.flags import ARGUMENT_FLAGS
    from hashing.errors import HashingError

    try:
        yield
    except HashingError as exc:
        msg = hinted = str(exc)
        params = [p for p in (exc.param or "").split(",") if p in ARGUMENT_FLAGS]
        for param in params:
            hinted = re.sub(rf"(?<![\w-]){param}\b", lambda _, p=param: ARGUMENT_FLAGS[p], hinted)
        if hinted == msg and params:  # the message does not name the parameter: name the option after it
            hinted = f"{msg} ({ARGUMENT_FLAGS[params[0]]})"
        raise UserError(hinted) from None


def write_report(out: Path | None, report: Any) -> None:
    """A bench's JSON report, written with :func:`automl.atomic.atomic_write`, then named on the console.

    One writer for every ``automl bench ...``: a report cut off half-way would read as valid JSON
    missing its last rows, or not parse at all. Check ``out`` with :func:`check_report_out` before
    the benchmark runs, so that an unwritable path fails in a second, not after the work.
    """
    if out is not None:
        from automl.atomic import atomic_write_json

        atomic_write_json(out, report)
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
    ``stderr`` draws there (commands whose stdout is data), transient, and only on a terminal:
    a transient bar on a pipe or a log file would leave a blank line before the next message.
    """
    if not enabled or (stderr and not err_console.is_terminal):
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
                    eta=event.eta_text())

    with bars:
        yield on_event


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
