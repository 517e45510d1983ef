"""How fast the Runs page's SQL is on a big store: ``python -m dashboard.bench_queries``.

Builds a temporary SQLite store with ``--runs`` runs of ``--epochs`` epochs each, then times one
page (first and middle) for every sort key with the dashboard's two-step query, next to two
alternatives: the one-step query that computes the per-run aggregates in the same SELECT, and
loading every run and epoch into pandas to sort there (what a naive dashboard does).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, case, insert, select

from automl.atomic import ArtifactWriteError, atomic_write_text, check_writable
from automl.store import open_store
from automl.store.models import Epoch, Run
from automl.store.repository import Store
from dashboard import queries


def build_store(path: Path, n_runs: int, n_epochs: int, seed: int = 0) -> str:
    url = f"sqlite:///{path}"
    store = open_store(url)
    rng = random.Random(seed)
    t0 = datetime(2026, 1, 1)
    runs, epochs = [], []
    for i in range(1, n_runs + 1):
        state = rng.choice(["completed", "running", "failed"])
        runs.append(dict(
            id=i, kind="search", state=state, space=rng.choice(["darts", "mobilenet", "face"]),
            task=rng.choice(["fer", "au"]), strategy=rng.choice(["ddpnas", "darts", "random"]),
            data="synth:fer", host="h", config={}, summary={"best_val_metric": rng.random()} if i % 3 else {},
            created_at=t0 + timedelta(seconds=i), started_at=t0 + timedelta(seconds=i),
            finished_at=None if state == "running" else t0 + timedelta(seconds=i + rng.randint(10, 10_000)),
            updated_at=t0,
        ))  # fmt: skip
        epochs += [
            dict(run_id=i, epoch=e, val_metric=rng.random(), wall_time=1.0, extra={}) for e in range(n_epochs)
        ]
    with store.engine.begin() as conn:
        conn.execute(insert(Run), runs)
        for s in range(0, len(epochs), 50_000):
            conn.execute(insert(Epoch), epochs[s : s + 50_000])
    store.close()
    return url


def one_step_page(engine: Engine, sort: str, limit: int, offset: int) -> list[Any]:
    """The alternative: aggregates in the same SELECT as the ORDER BY/LIMIT."""
    epochs, best, wall = queries._epoch_count(), queries._best_metric(), queries._wall_seconds(engine)
    keys = {"id": Run.id, "created": Run.created_at, "state": Run.state, "space": Run.space,
            "task": Run.task, "strategy": Run.strategy, "best val metric": best, "epochs": epochs,
            "wall time": wall}  # fmt: skip
    key = keys[sort]
    query = (
        select(Run.id, Run.state, epochs.label("epochs"), best.label("best"), wall.label("wall"))
        .order_by(case((key.is_(None), 1), else_=0), key.desc(), Run.id.desc())
        .limit(limit)
        .offset(offset)
    )
    with engine.connect() as conn:
        return list(conn.execute(query))


def pandas_page(engine: Engine, limit: int, offset: int) -> Any:
    """The naive alternative: everything into pandas, aggregate and sort there."""
    import pandas as pd

    with engine.connect() as conn:
        runs = pd.read_sql(select(Run.id, Run.state, Run.summary, Run.started_at, Run.finished_at), conn)
        eps = pd.read_sql(select(Epoch.run_id, Epoch.val_metric), conn)
    agg = eps.groupby("run_id").val_metric.agg(["count", "max"])
    table = runs.join(agg, on="id")
    return table.sort_values("max", ascending=False).iloc[offset : offset + limit]


def _time(fn: Any, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best * 1000


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--page-size", type=int, default=50)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.out:
        try:
            check_writable(args.out)  # before the timing, not after it
        except ArtifactWriteError as exc:
            parser.error(str(exc))
    with tempfile.TemporaryDirectory() as tmp:
        url = build_store(Path(tmp) / "bench.db", args.runs, args.epochs)
        store = Store(url, readonly=True)
        engine = store.engine
        middle = (args.runs // 2 // args.page_size) * args.page_size
        rows = []
        for sort in queries.SORTS:
            two_first = _time(lambda s=sort: queries.list_runs(engine, sort=s, limit=args.page_size))
            two_mid = _time(
                lambda s=sort: queries.list_runs(engine, sort=s, limit=args.page_size, offset=middle)
            )
            one_mid = _time(lambda s=sort: one_step_page(engine, s, args.page_size, middle))
            rows.append({"sort": sort, "two_step_first_ms": two_first, "two_step_middle_ms": two_mid,
                         "one_step_middle_ms": one_mid, "speedup": one_mid / two_mid})  # fmt: skip
        count_ms = _time(lambda: queries.count_runs(engine, queries.RunFilter(states=("completed",))))
        pandas_ms = _time(lambda: pandas_page(engine, args.page_size, middle), repeat=1)
        store.close()
    table = Table(title=f"Runs page on {args.runs:,} runs x {args.epochs} epochs (SQLite, ms, best of 3)")
    for col in ("sort", "page 1", f"page @ {middle}", "one-step @ same", "speed-up"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["sort"], f"{r['two_step_first_ms']:.1f}", f"{r['two_step_middle_ms']:.1f}",
                      f"{r['one_step_middle_ms']:.1f}", f"{r['speedup']:.1f}x")  # fmt: skip
    console = Console()
    console.print(table)
    console.print(
        f"filtered count: {count_ms:.1f} ms; everything into pandas then sort by best: {pandas_ms:.0f} ms"
    )
    result = {"runs": args.runs, "epochs_per_run": args.epochs, "page_size": args.page_size, "sorts": rows,
              "count_ms": count_ms, "pandas_all_ms": pandas_ms}  # fmt: skip
    if args.out:
        atomic_write_text(args.out, json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
