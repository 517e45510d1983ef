"""``automl runs list|show``: what the store holds (read-only: a missing store is not created).

The rows and their cells are :mod:`automl.store.run_views`; this module parses, calls and prints.
"""

from __future__ import annotations

from enum import StrEnum

import typer
from rich.markup import escape
from rich.text import Text

from automl.commands.common import (
    DEFAULT_DB_URL,
    console,
    print_json,
    print_signal_warnings,
    print_table,
    resolve_db_url,
)
from automl.commands.options import JSON_TABLE_OPTION
from automl.redact import redact

runs_app = typer.Typer(help="List and inspect runs in the store.", no_args_is_help=True)

SIGNAL_KEY = "signal"  # automl.learning_checks.SIGNAL_KEY, without importing numpy and scipy
FLAG_STYLES = {"NO SIGNAL": "bold red", "weak": "yellow", "ok": "green"}
# Fits 100 columns: one space between columns, and on a narrower terminal only space and data
# (the wrappable columns) give way, cut with an ellipsis; the rest is in `runs show`.
RUN_COLUMN_OPTIONS = {
    "space": {"max_width": 12, "min_width": 5, "no_wrap": False},
    "data": {"max_width": 18, "min_width": 5, "no_wrap": False},
}


class RunState(StrEnum):
    """automl.store.repository.RUN_STATES, as the choices of ``--state``."""

    created = "created"
    running = "running"
    completed = "completed"
    failed = "failed"
    interrupted = "interrupted"
    pruned = "pruned"


def _flag(flag: str) -> Text:
    """The learning checks' verdict (``ok`` / ``weak`` / ``NO SIGNAL``, ``-`` unchecked), coloured."""
    return Text.assemble((flag, FLAG_STYLES.get(flag, "")))


@runs_app.command("list")
def list_runs(
    ctx: typer.Context,
    kind: str = typer.Option(None, "--kind", help="Only runs of this kind: search, train or hpo."),
    state: RunState = typer.Option(
        None,
        "--state",
        metavar="STATE",
        help="Only runs in this state: created, running, completed, failed, interrupted or pruned.",
    ),
    limit: int = typer.Option(50, "--limit", min=1, help="How many runs (newest first)."),
    json_out: bool = JSON_TABLE_OPTION,
) -> None:
    """List runs, newest first, each with its best metric (split, name, value)."""
    from rich import box

    from automl.store.run_views import RUN_COLUMNS, list_with_headlines, run_rows

    url = resolve_db_url(ctx)
    safe_url, rows, best = list_with_headlines(
        url, kind=kind, state=state.value if state else None, limit=limit, missing_ok=url == DEFAULT_DB_URL
    )
    if json_out:
        print_json([{**r, "best": best[int(r["id"])].to_dict()} for r in rows])
        return
    if not rows:
        if kind or state:
            wanted = " and ".join(f"--{k} {v}" for k, v in (("kind", kind), ("state", state)) if v)
            console.print(f"No runs match {wanted}.", highlight=False)
        else:
            console.print("No runs yet. Start one with [bold]automl search[/] (DDPNAS on synthetic faces).")
        return
    sig = RUN_COLUMNS.index("signal")
    cells = [[*r[:sig], _flag(r[sig]), *r[sig + 1 :]] for r in run_rows(rows, best)]
    columns = [(c, {"overflow": "ellipsis", "no_wrap": True, **RUN_COLUMN_OPTIONS.get(c, {})})
               for c in RUN_COLUMNS]  # fmt: skip
    print_table(f"runs in {safe_url}", columns, cells, left=set(RUN_COLUMNS) - {"id", "ep", "best"},
                box=box.SIMPLE_HEAD, show_edge=False, padding=0)  # fmt: skip


@runs_app.command("show")
def show_run(
    ctx: typer.Context,
    run_id: int = typer.Argument(..., help="The run's id (see automl runs list)."),
    json_out: bool = typer.Option(
        False,
        "--json",
        help="Everything as JSON: config, state, epochs, "
        "distribution snapshots, architectures, checkpoints, genotype.",
    ),
) -> None:
    """Show one run: its settings, learning checks, last epochs, genotype and checkpoints."""
    from automl.learning_checks import signal_flag
    from automl.store.run_views import EPOCH_COLUMNS, checks_label, epoch_rows, open_existing

    report = open_existing(resolve_db_url(ctx)).run_report(run_id)
    if json_out:
        print_json(report)
        return
    console.print(
        f"[bold]run {run_id}[/] {report['kind']} {escape('[' + str(report['state']) + ']')} "
        f"space={report['space']} task={report['task']} strategy={report['strategy']} "
        f"data={report['data']} seed={report['seed']}"
    )
    if report.get("error"):
        console.print(f"[red]error:[/] {redact(report['error'])}")
    signal = (report.get("summary") or {}).get(SIGNAL_KEY)
    if isinstance(signal, dict):
        console.print(Text(f"{checks_label(signal)}: ").append_text(_flag(signal_flag(signal))))
        print_signal_warnings(signal, f"{report['kind']} run {run_id}")
    console.print(f"artifacts: {report['artifact_dir']}")
    if epochs := report["epochs"]:
        print_table(f"{len(epochs)} epochs (last 15)", EPOCH_COLUMNS, epoch_rows(epochs[-15:]), left=())
    console.print(f"distribution snapshots: {len(report['distributions'])}")
    if report["genotype"] is not None:
        console.print("genotype:")
        console.print_json(data=report["genotype"])
    for ckpt in report["checkpoints"]:
        console.print(f"checkpoint: {ckpt['path']} sha256={ckpt['sha256'][:12]} {ckpt['metrics']}")
    if report.get("summary"):
        console.print("summary:")
        console.print_json(data={k: v for k, v in report["summary"].items() if k != "plan"})


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")
