"""``automl bench hpo``: trials per minute of K local workers on each Optuna storage, side by side.

The benchmark is :mod:`automl.hpo_bench`; this command parses the options, calls
:func:`automl.hpo_bench.storage_bench`, prints the table and writes the JSON report.
"""

from __future__ import annotations

from pathlib import Path

import typer

from automl.commands import bench_app
from automl.commands.common import check_report_out, print_table, progress_bar, write_report
from automl.commands.options import REPORT_OUT_OPTION
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
    out: Path = REPORT_OUT_OPTION,
) -> None:
    """Trials/minute of 1, 2, 4 local workers on SQLite (RDB), a journal file and PostgreSQL."""
    from automl.hpo_bench import check_cells, storage_bench, storage_table

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
    print_table(*storage_table(report["rows"]))
    write_report(out, report)


def register(app: typer.Typer) -> None:
    """Nothing to add to the root app: the command lives in the shared ``bench`` group."""
    del app
