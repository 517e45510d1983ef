"""``automl bench dashboard``: how long each dashboard page takes to load, cold and warm, on a big store.

The benchmark is :mod:`dashboard.bench_pages` (issue 18: under 2 s warm on a 3,000-run store with
a 600-trial study); this command parses the options, calls :func:`dashboard.bench_pages.page_bench`,
prints the table and the targets and writes the JSON report. Streamlit, Optuna and SQLAlchemy are
imported when the benchmark runs, not when the CLI starts.
"""

from __future__ import annotations

from pathlib import Path

import typer

from automl.commands import bench_app
from automl.commands.common import check_report_out, console, print_table, progress_bar, write_report
from automl.commands.options import FIXED_SEED_OPTION, REPORT_OUT_OPTION


@bench_app.command("dashboard")
def bench_dashboard(
    runs: int = typer.Option(3000, "--runs", min=3, help="Runs in the store (epochs, a DDPNAS search...)."),
    trials: int = typer.Option(
        600, "--trials", min=1, help="Trials of the Optuna study in the same database."
    ),
    epochs: int = typer.Option(30, "--epochs", min=1, help="Epochs of each bulk run."),
    reruns: int = typer.Option(5, "--reruns", min=1, help="Warm reruns per page (the median is compared)."),
    cold: int = typer.Option(1, "--cold", min=1, help="Cold loads per page (new session, caches cleared)."),
    target: float = typer.Option(2.0, "--target", min=0.01, help="Seconds a warm page load must stay under."),
    pages: str = typer.Option(
        "", "--pages", help="Comma-separated parts of page names to time (e.g. 'runs,hpo'); default: all."
    ),
    profile: bool = typer.Option(
        False, "--profile/--no-profile", help="Also profile one warm rerun per page (cProfile)."
    ),
    timeout: float = typer.Option(300.0, "--timeout", min=1, help="Seconds one page run may take."),
    work_dir: Path = typer.Option(
        None, "--work-dir", help="Build (and keep) the store here (default: a temporary directory)."
    ),
    seed: int = FIXED_SEED_OPTION,
    out: Path = REPORT_OUT_OPTION,
) -> None:
    """Cold and warm load of the Runs, Run, Compare and HPO pages against the 2 s target (AppTest)."""
    from dashboard.bench_pages import names_matching, page_bench, page_table, profile_lines, target_lines

    check_report_out(out)  # an unwritable --out fails now, not after the benchmark
    select = names_matching(pages.split(","), runs, trials)  # an unknown page name fails now too
    with progress_bar() as progress:
        report = page_bench(
            runs, trials, epochs=epochs, reruns=reruns, cold_runs=cold, target_s=target, timeout=timeout,
            profile=profile, work_dir=work_dir, seed=seed, select=select,
            progress=progress,
        )  # fmt: skip
    print_table(*page_table(report))
    for line in profile_lines(report):
        console.print(line, markup=False, highlight=False)
    for line in target_lines(report):
        console.print(line, markup=False, highlight=False)
    write_report(out, report)


def register(app: typer.Typer) -> None:
    """The command attaches to the shared ``bench`` group at import; nothing else to add."""
    del app
