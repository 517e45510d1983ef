"""``automl bench hpo``: trials per minute of K local workers on each Optuna storage, side by side.

The objective is deliberately cheap (a few arithmetic operations and a short sleep standing in for
the trial's own work), so what differs between rows is the storage: creating trials, writing
parameters and values, the workers' budget polls and the study-wide lock. Throughput is taken
from the trials' own timestamps (first start to last finish), which leaves out process start-up.
"""

from __future__ import annotations

import math
import os
import platform
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import optuna
import typer
from rich.table import Table

from automl.commands import bench_app
from automl.commands.common import console, write_report
from automl.errors import UserError
from automl.hpo_workers import StudySpec, run_local_workers

STORAGES = ("sqlite", "journal", "postgresql")


class CheapObjective:
    """Two suggested parameters and ``sleep_s`` of pretend work: storage cost dominates."""

    def __init__(self, sleep_s: float = 0.0) -> None:
        self.sleep_s = sleep_s

    def __call__(self, trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -10.0, 10.0)
        k = trial.suggest_int("k", 1, 8)
        trial.report(x * x, 0)
        if self.sleep_s:
            time.sleep(self.sleep_s)
        return (x - 2.0) ** 2 + k


@dataclass
class BenchRow:
    storage: str
    workers: int
    trials: int
    complete: int
    duplicates: int
    seconds: float
    trials_per_min: float


def measure(url: str, storage_name: str, workers: int, trials: int, sleep_s: float) -> BenchRow:
    """Run one study of ``trials`` cheap trials on ``url`` with ``workers`` processes."""
    from automl.hpo_workers import open_storage

    study_name = f"bench-{storage_name}-{workers}-{os.getpid()}-{time.time_ns()}"
    optuna.create_study(study_name=study_name, storage=open_storage(url, heartbeat_interval=None))
    spec = StudySpec(
        storage_url=url,
        study_name=study_name,
        n_trials=trials,
        sampler="random",
        pruner="none",
        heartbeat_interval=None,
        poll_interval=0.05,
    )
    result = run_local_workers(spec, CheapObjective(sleep_s), workers)
    if any(code != 0 for code in result.exit_codes):
        raise RuntimeError(f"a benchmark worker failed on {storage_name}: exit codes {result.exit_codes}")
    study = optuna.load_study(study_name=study_name, storage=open_storage(url, heartbeat_interval=None))
    done = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
    starts = [t.datetime_start for t in done if t.datetime_start]
    ends = [t.datetime_complete for t in done if t.datetime_complete]
    seconds = (max(ends) - min(starts)).total_seconds() if starts and ends else math.nan
    numbers = [t.number for t in done]
    return BenchRow(
        storage=storage_name,
        workers=workers,
        trials=len(done),
        complete=sum(t.state == optuna.trial.TrialState.COMPLETE for t in done),
        duplicates=len(numbers) - len(set(numbers)),
        seconds=round(seconds, 3),
        trials_per_min=round(60.0 * len(done) / seconds, 1) if seconds and seconds > 0 else math.nan,
    )


def _start_postgres() -> tuple[str, Any]:
    """A throwaway server as the tests start one (initdb in a temp dir, stopped by pid)."""
    from automl import pgserver as module

    reason = module.missing_reason()
    if reason:
        raise UserError(f"cannot start PostgreSQL for the benchmark: {reason} (or pass --pg-url)")
    server = module.start()
    return server.create_database("bench_hpo"), server


@bench_app.command("hpo")
def bench_hpo(
    workers: str = typer.Option("1,2,4", help="Comma-separated worker counts."),
    storages: str = typer.Option(",".join(STORAGES), help="Comma-separated: sqlite, journal, postgresql."),
    trials: int = typer.Option(200, min=1, help="Trials per (storage, workers) cell."),
    sleep_ms: float = typer.Option(0.0, min=0, help="Pretend work per trial in milliseconds."),
    pg_url: str = typer.Option(
        None, "--pg-url", help="Use this PostgreSQL database instead of a throwaway server."
    ),
    out: Path = typer.Option(None, "--out", help="Write the results as JSON here."),
) -> None:
    """Trials/minute of 1, 2, 4 local workers on SQLite (RDB), a journal file and PostgreSQL."""
    try:
        counts = [int(w) for w in workers.split(",") if w.strip()]
    except ValueError:
        raise UserError(f"--workers must be comma-separated integers, got '{workers}'") from None
    if not counts or min(counts) < 1:
        raise UserError("--workers needs positive integers, e.g. 1,2,4")
    names = [s.strip() for s in storages.split(",") if s.strip()]
    unknown = sorted(set(names) - set(STORAGES))
    if unknown or not names:
        raise UserError(
            f"unknown storage(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(STORAGES)}"
        )
    rows: list[BenchRow] = []
    server = None
    tmp = Path(tempfile.mkdtemp(prefix="automl-bench-hpo-"))
    try:
        urls: dict[str, str] = {}
        if "postgresql" in names:
            if pg_url:
                urls["postgresql"] = pg_url
            else:
                urls["postgresql"], server = _start_postgres()
        with console.status("benchmarking Optuna storages") as status:
            for workers_n in counts:
                for name in names:
                    if name == "sqlite":
                        url = f"sqlite:///{tmp / f'bench-{workers_n}.db'}"
                    elif name == "journal":
                        url = f"journal:{tmp / f'bench-{workers_n}.journal'}"
                    else:
                        url = urls["postgresql"]
                    status.update(f"{name}, {workers_n} worker(s), {trials} trials")
                    rows.append(measure(url, name, workers_n, trials, sleep_ms / 1000.0))
    finally:
        if server is not None:
            server.stop()
    _print_table(rows)
    payload = {
        "benchmark": "hpo-storage",
        "trials": trials,
        "sleep_ms": sleep_ms,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "optuna": optuna.__version__,
        "rows": [asdict(r) for r in rows],
    }
    write_report(out, payload)


def _print_table(rows: list[BenchRow]) -> None:
    base = {r.workers: r.trials_per_min for r in rows if r.storage == "sqlite"}
    table = Table(title="Optuna storage throughput (cheap objective; higher is better)")
    for col in ("storage", "workers", "trials", "dup", "seconds", "trials/min", "vs sqlite"):
        table.add_column(col, justify="right" if col != "storage" else "left")
    for r in rows:
        ratio = r.trials_per_min / base[r.workers] if base.get(r.workers) else math.nan
        table.add_row(
            r.storage,
            str(r.workers),
            str(r.trials),
            str(r.duplicates),
            f"{r.seconds:.2f}",
            f"{r.trials_per_min:.0f}",
            "-" if math.isnan(ratio) else f"{ratio:.2f}x",
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    """Nothing to add to the root app: the command lives in the shared ``bench`` group."""
    del app
