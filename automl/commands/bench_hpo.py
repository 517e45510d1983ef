"""``automl bench hpo``: trials per minute of K local workers on each Optuna storage, side by side.

The benchmark is :mod:`automl.hpo_bench`; this command parses the options, calls
:func:`automl.hpo_bench.storage_bench`, prints the table and writes the JSON report.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from automl.commands import bench_app
from automl.commands.common import check_report_out, console, progress_bar, write_report
from automl.errors import UserError
from automl.hpo_bench import STORAGES  # cheap: Optuna is imported when the benchmark runs


@bench_app.command("hpo")
def bench_hpo(
    workers: str = typer.Option("1,2,4", help="Comma-separated worker counts."),
    storages: str = typer.Option(",".join(STORAGES), help="Comma-separated: " + ", ".join(STORAGES) + "."),
    trials: int = typer.Option(200, min=1, help="Trials per (storage, workers) cell."),
    sleep_ms: float = typer.Option(0.0, min=0, help="Pretend work per trial in milliseconds."),
    pg_url: str = typer.Option(
        None, "--pg-url", help="Use this PostgreSQL database instead of a throwaway server."
    ),
    out: Path = typer.Option(None, "--out", help="Write the results as JSON here."),
) -> None:
    """Trials/minute of 1, 2, 4 local workers on SQLite (RDB), a journal file and PostgreSQL."""
    from automl.hpo_bench import check_cells, storage_bench

    try:
        counts = [int(w) for w in workers.split(",") if w.strip()]
    except ValueError:
        raise UserError(f"--workers must be comma-separated integers, got '{workers}'") from None
    names = [s.strip() for s in storages.split(",") if s.strip()]
    check_cells(counts, names)
    check_report_out(out)  # an unwritable --out fails now, not after the benchmark
    with progress_bar() as progress:
        report = storage_bench(counts, names, trials=trials, sleep_ms=sleep_ms, pg_url=pg_url,
                               progress=progress)  # fmt: skip
    _print_table(report["rows"])
    write_report(out, report)


def _print_table(rows: list[dict[str, Any]]) -> None:
    base = {r["workers"]: r["trials_per_min"] for r in rows if r["storage"] == "sqlite"}
    table = Table(title="Optuna storage throughput (cheap objective; higher is better)")
    for col in ("storage", "workers", "trials", "dup", "seconds", "trials/min", "vs sqlite"):
        table.add_column(col, justify="right" if col != "storage" else "left")
    for r in rows:
        ratio = r["trials_per_min"] / base[r["workers"]] if base.get(r["workers"]) else math.nan
        table.add_row(
            r["storage"],
            str(r["workers"]),
            str(r["trials"]),
            str(r["duplicates"]),
            f"{r['seconds']:.2f}",
            f"{r['trials_per_min']:.0f}",
            "-" if math.isnan(ratio) else f"{ratio:.2f}x",
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    """Nothing to add to the root app: the command lives in the shared ``bench`` group."""
    del app
