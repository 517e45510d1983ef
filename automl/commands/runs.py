"""``automl runs list|show``: what the store holds."""

from __future__ import annotations

import typer
from rich.table import Table

from automl.commands.common import console, print_json, print_signal_warnings, resolve_db_url
from automl.learning_checks import SIGNAL_KEY, signal_flag
from automl.redact import redact
from automl.store import open_store

runs_app = typer.Typer(help="List and inspect runs in the store.", no_args_is_help=True)


def _fmt(value: object, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


@runs_app.command("list")
def list_runs(
    ctx: typer.Context,
    kind: str = typer.Option(None, help="Only runs of this kind: search, train, hpo."),
    state: str = typer.Option(None, help="Only runs in this state: running, completed, failed..."),
    limit: int = typer.Option(50, min=1, help="How many runs (newest first)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List runs, newest first."""
    store = open_store(resolve_db_url(ctx))
    rows = store.list_runs(kind=kind, state=state, limit=limit)
    if json_out:
        print_json(rows)
        return
    if not rows:
        console.print("No runs yet. Start one with [bold]automl search[/] (DDPNAS on synthetic faces).")
        return
    table = Table(title=f"runs in {store.safe_url}")
    for col in (
        "id",
        "kind",
        "state",
        "space",
        "task",
        "strategy",
        "data",
        "epochs",
        "best",
        "signal",
        "created",
        "host",
    ):
        table.add_column(col)
    for r in rows:
        summary = r.get("summary") or {}
        best = summary.get("best_val_metric", summary.get("test_metric"))
        table.add_row(
            str(r["id"]),
            r["kind"],
            r["state"],
            _fmt(r["space"]),
            _fmt(r["task"]),
            _fmt(r["strategy"]),
            _fmt(r["data"]),
            str(r["epochs"]),
            _fmt(best),
            _flag_cell(summary.get(SIGNAL_KEY)),
            (r["created_at"] or "")[:19],
            _fmt(r["host"]),
        )
    console.print(table)


def _flag_cell(signal: object) -> str:
    """The learning checks' verdict (``ok`` / ``weak`` / ``NO SIGNAL``, ``-`` unchecked), coloured."""
    flag = signal_flag(signal if isinstance(signal, dict) else None)
    style = {"NO SIGNAL": "bold red", "weak": "yellow", "ok": "green"}.get(flag)
    return f"[{style}]{flag}[/]" if style else flag


@runs_app.command("show")
def show_run(
    ctx: typer.Context,
    run_id: int = typer.Argument(..., help="Run id (see `automl runs list`)."),
    json_out: bool = typer.Option(
        False,
        "--json",
        help="Everything as JSON: config, state, epochs, "
        "distribution snapshots, architectures, checkpoints, genotype.",
    ),
) -> None:
    """Show one run."""
    store = open_store(resolve_db_url(ctx))
    report = store.run_report(run_id)
    if json_out:
        print_json(report)
        return
    console.print(
        f"[bold]run {run_id}[/] {report['kind']} [{report['state']}] "
        f"space={report['space']} task={report['task']} strategy={report['strategy']} "
        f"data={report['data']} seed={report['seed']}"
    )
    if report.get("error"):
        console.print(f"[red]error:[/] {redact(report['error'])}")
    signal = (report.get("summary") or {}).get(SIGNAL_KEY)
    if isinstance(signal, dict):
        checked = ", ".join(signal.get("checks") or []) or "-"
        size = f", {signal['n']} items" if signal.get("n") else ""
        where = f"{signal.get('split', 'evaluated')} split{size}"
        console.print(f"learning checks ({checked}; {where}): {_flag_cell(signal)}", highlight=False)
        print_signal_warnings(signal, f"{report['kind']} run {run_id}")
    console.print(f"artifacts: {report['artifact_dir']}")
    epochs = report["epochs"]
    if epochs:
        table = Table(title=f"{len(epochs)} epochs (last 15)")
        for col in (
            "epoch",
            "phase",
            "round",
            "train_loss",
            "train_metric",
            "val_loss",
            "val_metric",
            "lr",
            "s",
        ):
            table.add_column(col, justify="right")
        for e in epochs[-15:]:
            table.add_row(
                str(e["epoch"]),
                _fmt(e["phase"]),
                _fmt(e["round"]),
                _fmt(e["train_loss"]),
                _fmt(e["train_metric"]),
                _fmt(e["val_loss"]),
                _fmt(e["val_metric"]),
                _fmt(e["lr"]),
                _fmt(e["wall_time"], 3),
            )
        console.print(table)
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
