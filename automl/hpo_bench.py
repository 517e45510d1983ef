"""The storage benchmark behind ``automl bench hpo``: trials per minute of K local workers per storage.

The objective is deliberately cheap (a few arithmetic operations and a short sleep standing in for
the trial's own work), so what differs between rows is the storage: creating trials, writing
parameters and values, the workers' budget polls and the study-wide lock. Throughput is taken
from the trials' own timestamps (first start to last finish), which leaves out process start-up.
The figures chose :func:`automl.hpo_workers.choose_storage` (BENCHMARKS_HPO.md).

:func:`storage_bench` returns the JSON-able report; the CLI (:mod:`automl.commands.bench_hpo`)
parses options, calls it and prints the table.
"""

from __future__ import annotations

import math
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl.errors import UserError
from automl.progress import ProgressCallback, ProgressEvent, emit

if TYPE_CHECKING:
    import optuna

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
    import optuna

    from automl.hpo_workers import StudySpec, open_storage, run_local_workers

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


def start_postgres() -> tuple[str, Any]:
    """A throwaway server as the tests start one (initdb in a temp dir, stopped by pid)."""
    from automl import pgserver as module

    reason = module.missing_reason()
    if reason:
        raise UserError(
            f"cannot start PostgreSQL for the benchmark: {reason} (or give the URL of a running server)",
            argument="pg_url",
        )
    server = module.start()
    return server.create_database("bench_hpo"), server


def check_cells(workers: Sequence[int], storages: Sequence[str]) -> None:
    """Refuse an empty or non-positive worker list and unknown storage names (before any work)."""
    if not workers or min(workers) < 1:
        raise UserError("workers needs positive integers, e.g. 1,2,4")
    unknown = sorted(set(storages) - set(STORAGES))
    if unknown or not storages:
        raise UserError(
            f"unknown storage(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(STORAGES)}"
        )


def storage_bench(
    workers: Sequence[int] = (1, 2, 4),
    storages: Sequence[str] = STORAGES,
    *,
    trials: int = 200,
    sleep_ms: float = 0.0,
    pg_url: str | None = None,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Every (workers, storage) cell, one study each; a throwaway PostgreSQL unless ``pg_url``."""
    import optuna

    check_cells(workers, storages)
    rows: list[BenchRow] = []
    server = None
    tmp = Path(tempfile.mkdtemp(prefix="automl-bench-hpo-"))
    cells = [(w, name) for w in workers for name in storages]
    try:
        if "postgresql" in storages and not pg_url:
            pg_url, server = start_postgres()
        for i, (count, name) in enumerate(cells):
            url = {"sqlite": f"sqlite:///{tmp / f'bench-{count}.db'}",
                   "journal": f"journal:{tmp / f'bench-{count}.journal'}"}.get(name, pg_url)  # fmt: skip
            emit(progress, ProgressEvent("bench hpo", i, len(cells), f"{name}, {count} worker(s)"))
            rows.append(measure(str(url), name, count, trials, sleep_ms / 1000.0))
        emit(progress, ProgressEvent("bench hpo", len(cells), len(cells), "done"))
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return {
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


def storage_table(rows: list[dict[str, Any]]) -> tuple[str, list[str], list[list[str]]]:
    """:func:`storage_bench`'s rows as ``(title, columns, rows)`` of text, each cell's trials per
    minute relative to SQLite's with the same number of workers (``-`` without a SQLite cell)."""
    base = {r["workers"]: r["trials_per_min"] for r in rows if r["storage"] == "sqlite"}
    cells = []
    for r in rows:
        ratio = r["trials_per_min"] / base[r["workers"]] if base.get(r["workers"]) else math.nan
        cells.append([
            r["storage"], str(r["workers"]), str(r["trials"]), str(r["duplicates"]), f"{r['seconds']:.2f}",
            f"{r['trials_per_min']:.0f}", "-" if math.isnan(ratio) else f"{ratio:.2f}x",
        ])  # fmt: skip
    columns = ["storage", "workers", "trials", "dup", "seconds", "trials/min", "vs sqlite"]
    return "Optuna storage throughput (cheap objective; higher is better)", columns, cells
