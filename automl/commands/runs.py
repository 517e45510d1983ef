"""``automl runs list|show``: what the store holds (read-only: a missing store is not created)."""

from __future__ import annotations

from enum import StrEnum

import typer
from rich.markup import escape

from automl.commands.common import DEFAULT_DB_URL, console, print_json, print_signal_warnings, resolve_db_url
from automl.redact import redact

runs_app = typer.Typer(help="List and inspect runs in the store.", no_args_is_help=True)

SIGNAL_KEY = "signal"  # automl.learning_checks.SIGNAL_KEY, without importing numpy and scipy


class RunState(StrEnum):
    """automl.store.repository.RUN_STATES, as the choices of ``--state``."""

    created = "created"
    running = "running"
    completed = "completed"
    failed = "failed"
    interrupted = "interrupted"
    pruned = "pruned"


def _fmt(value: object, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _created(stamp: str | None) -> str:
    """``2025-03-04T05:06:07.89`` -> ``03-04 05:06`` (the full time is in ``runs show --json``)."""
    return f"{stamp[5:10]} {stamp[11:16]}" if stamp and len(stamp) >= 16 else (stamp or "-")


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
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List runs, newest first, each with its best metric (split, name, value)."""
    from rich import box
    from rich.table import Table

    from automl.store.run_views import headlines, open_existing, store_file_missing

    url = resolve_db_url(ctx)
    if url == DEFAULT_DB_URL and store_file_missing(url):  # nothing recorded here yet
        rows: list[dict] = []
        best = {}
    else:
        store = open_existing(url)
        rows = store.list_runs(kind=kind, state=state.value if state else None, limit=limit)
        best = headlines(store, rows)
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
    # Fits 100 columns: one space between columns, and on a narrower terminal only space and data
    # (the wrappable columns) give way, cut with an ellipsis; the rest is in `runs show`.
    table = Table(title=f"runs in {escape(store.safe_url)}", box=box.SIMPLE_HEAD, show_edge=False, padding=0)
    for col, options in (
        ("id", {"justify": "right"}),
        ("kind", {}),
        ("state", {}),
        ("space", {"max_width": 12, "min_width": 5, "no_wrap": False}),
        ("strategy", {}),
        ("data", {"max_width": 18, "min_width": 5, "no_wrap": False}),
        ("ep", {"justify": "right"}),
        ("best", {"justify": "right"}),
        ("signal", {}),
        ("created", {}),
    ):
        table.add_column(col, overflow="ellipsis", **{"no_wrap": True, **options})
    for r in rows:
        summary = r.get("summary") or {}
        head = best[int(r["id"])]
        table.add_row(
            str(r["id"]),
            r["kind"],
            r["state"],
            escape(_fmt(r["space"])),
            escape(_fmt(r["strategy"])),
            escape(_fmt(r["data"])),
            str(r["epochs"]),
            "-" if head.value is None else f"{head.label()} {_fmt(head.value, 3)}",
            _flag_cell(summary.get(SIGNAL_KEY)),
            _created(r["created_at"]),
        )
    console.print(table)


def _flag_cell(signal: object) -> str:
    """The learning checks' verdict (``ok`` / ``weak`` / ``NO SIGNAL``, ``-`` unchecked), coloured."""
    from automl.learning_checks import signal_flag

    flag = signal_flag(signal if isinstance(signal, dict) else None)
    style = {"NO SIGNAL": "bold red", "weak": "yellow", "ok": "green"}.get(flag)
    return f"[{style}]{flag}[/]" if style else flag


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
    from rich.table import Table

    from automl.store.run_views import open_existing

    store = open_existing(resolve_db_url(ctx))
    report = store.run_report(run_id)
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
