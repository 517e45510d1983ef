"""How fast the HPO page loads on a big study: ``python -m dashboard.bench_hpo_page``.

:func:`build_study_store` writes a study shaped like the ones ``automl hpo`` leaves mid-way (its
six hyper-parameters, one intermediate value per epoch, the trial attributes it records; about
18% of the trials pruned and 2% failed, drawn from ``seed``; the last ``RUNNING_TRIALS`` still
running) into a SQLite store, and :func:`time_hpo_page` loads the HPO page
on it with Streamlit's ``AppTest``: once cold (Streamlit's caches emptied) and then several
unchanged reruns (warm: what a user pays on every click or live refresh). Both are plain
functions, so a benchmark command or a notebook can call them; only ``__main__`` prints.

A first call in a fresh interpreter also pays the imports (optuna.visualization, plotly,
pandas), as the first page load after ``automl dashboard`` starts does; ``__main__`` runs in one.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution
from optuna.trial import FrozenTrial, TrialState

BENCH_STUDY = "bench"
HPO_PAGE = "views/hpo.py"
RUNNING_TRIALS = 5
STEPS = 10


@dataclass(frozen=True)
class PageTimes:
    """Seconds per load of the HPO page: the cold one and each warm rerun (``warm_s``: their median)."""

    study: str
    cold_s: float
    warm_runs_s: tuple[float, ...]

    @property
    def warm_s(self) -> float:
        return statistics.median(self.warm_runs_s) if self.warm_runs_s else float("nan")


def _distributions() -> dict[str, BaseDistribution]:
    """The distributions ``automl.hpo.suggest_params`` samples (base width 16)."""
    from automl.hpo import HPSpace

    space = HPSpace()
    low, high, step = space.epochs_scale
    return {
        "lr": FloatDistribution(*space.lr, log=True),
        "weight_decay": FloatDistribution(*space.weight_decay, log=True),
        "batch_size": CategoricalDistribution(list(space.batch_sizes)),
        "epochs_scale": FloatDistribution(low, high, step=step),
        "drop_path": FloatDistribution(*space.drop_path),
        "init_channels": CategoricalDistribution(space.width_choices(16)),
    }


def _params(rng: random.Random, dists: dict[str, BaseDistribution]) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, dist in dists.items():
        if isinstance(dist, CategoricalDistribution):
            out[name] = rng.choice(dist.choices)
        elif dist.log:
            out[name] = dist.low * (dist.high / dist.low) ** rng.random()
        elif dist.step:
            out[name] = dist.low + dist.step * rng.randrange(
                int(round((dist.high - dist.low) / dist.step)) + 1
            )
        else:
            out[name] = rng.uniform(dist.low, dist.high)
    return out


def _state(number: int, n_trials: int, rng: random.Random) -> TrialState:
    if number >= n_trials - RUNNING_TRIALS:
        return TrialState.RUNNING
    roll = rng.random()
    return TrialState.FAIL if roll < 0.02 else TrialState.PRUNED if roll < 0.2 else TrialState.COMPLETE


def _trial(number: int, n_trials: int, rng: random.Random, dists: dict[str, BaseDistribution]) -> FrozenTrial:
    """One trial as ``automl hpo`` records it: params, a validation metric per epoch, the train
    run's id and the measured cost, the learning checks' verdict, the worker that ran it."""
    state = _state(number, n_trials, rng)
    steps = {
        TrialState.COMPLETE: STEPS,
        TrialState.PRUNED: rng.randint(2, STEPS - 1),
        TrialState.FAIL: rng.randint(0, 3),
        TrialState.RUNNING: rng.randint(1, STEPS - 1),
    }[state]
    ceiling = rng.uniform(0.4, 0.85)
    curve = {s: ceiling * (1 - 0.7 ** (s + 1)) + rng.gauss(0, 0.01) for s in range(steps)}
    start = datetime(2026, 1, 1) + timedelta(minutes=2 * number)
    finished = state != TrialState.RUNNING
    attrs: dict[str, object] = {
        "train_run_id": 100 + number,
        "hpo_run_id": 2,
        "search_run_id": 1,
        "architecture_id": 1,
        "genotype_hash": "3f2a9c1e0b7d",
        "epochs": steps,
        "worker": {"host": "bench", "pid": 4242, "start": 0.0},
    }
    if state in (TrialState.COMPLETE, TrialState.PRUNED):
        attrs |= {
            "metric": "accuracy",
            "latency_ms": rng.uniform(0.8, 4.0),
            "params_m": rng.uniform(0.05, 0.6),
            "mflops": rng.uniform(2.0, 40.0),
            "signal": {"learned": ceiling > 0.45, "warnings": [], "checks": ["metric", "curve"]},
        }
    if state == TrialState.FAIL:
        attrs["error"] = "RuntimeError: CUDA out of memory"
    return FrozenTrial(
        number=number,
        state=state,
        value=None,
        values=[curve[steps - 1]] if state == TrialState.COMPLETE else None,
        datetime_start=start,
        datetime_complete=start + timedelta(seconds=30 + 15 * steps) if finished else None,
        params=_params(rng, dists),
        distributions=dists,
        user_attrs=attrs,
        system_attrs={},
        intermediate_values=curve,
        trial_id=number,
    )


def build_study_store(path: Path, n_trials: int, *, study: str = BENCH_STUDY, seed: int = 0) -> str:
    """A SQLite store at ``path`` (created, with the run tables) holding one single-objective study
    of ``n_trials`` trials named as ``automl hpo`` names it; the last ``RUNNING_TRIALS`` still
    run. Returns the store's URL (also the Optuna storage URL, as ``automl hpo`` uses by default).

    The study is created through automl (its names and attributes), its trials are written in
    bulk into Optuna's RDB tables: ``Study.add_trials`` costs ~80 ms a trial in ORM round trips
    (48 s for 600), a bulk insert under a second, and Optuna reads the rows back the same."""
    from sqlalchemy import MetaData, create_engine, insert

    from automl.hpo import create_or_load_study
    from automl.store import open_store

    url = f"sqlite:///{Path(path)}"
    open_store(url).close()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(url)
    try:
        create_or_load_study(storage, study, ("accuracy",))
        study_id = storage.get_study_id_from_name(study)
    finally:
        storage.engine.dispose()
    rng, dists = random.Random(seed), _distributions()
    trials = [_trial(i, n_trials, rng, dists) for i in range(n_trials)]
    engine = create_engine(url)
    try:
        tables = MetaData()
        tables.reflect(engine, only=[*TRIAL_TABLES, "trials"])
        with engine.begin() as conn:
            first = conn.execute(
                tables.tables["trials"].select().where(tables.tables["trials"].c.study_id == study_id)
            ).first()
            if first is not None:
                raise ValueError(f"study {study!r} at {path} already has trials")
            ids = [
                conn.execute(
                    insert(tables.tables["trials"]).values(_trial_row(t, study_id))
                ).inserted_primary_key[0]
                for t in trials
            ]
            for table, rows in _child_rows(trials, ids).items():
                if rows:
                    conn.execute(insert(tables.tables[table]), rows)
    finally:
        engine.dispose()
    return url


TRIAL_TABLES = ("trial_params", "trial_values", "trial_intermediate_values", "trial_user_attributes")


def _trial_row(t: FrozenTrial, study_id: int) -> dict[str, object]:
    return {
        "number": t.number,
        "study_id": study_id,
        "state": t.state.name,
        "datetime_start": t.datetime_start,
        "datetime_complete": t.datetime_complete,
    }


def _child_rows(trials: list[FrozenTrial], ids: list[int]) -> dict[str, list[dict[str, object]]]:
    """Rows of Optuna's per-trial tables, in its encodings: params in their internal float form with
    the distribution as JSON, attributes as JSON, values tagged ``FINITE``."""
    from optuna.distributions import distribution_to_json

    rows: dict[str, list[dict[str, object]]] = {name: [] for name in TRIAL_TABLES}
    for t, trial_id in zip(trials, ids, strict=True):
        for name, value in t.params.items():
            dist = t.distributions[name]
            rows["trial_params"].append(
                {
                    "trial_id": trial_id,
                    "param_name": name,
                    "param_value": dist.to_internal_repr(value),
                    "distribution_json": distribution_to_json(dist),
                }
            )
        for objective, value in enumerate(t.values or []):
            rows["trial_values"].append(
                {"trial_id": trial_id, "objective": objective, "value": value, "value_type": "FINITE"}
            )
        for step, value in t.intermediate_values.items():
            rows["trial_intermediate_values"].append(
                {
                    "trial_id": trial_id,
                    "step": step,
                    "intermediate_value": value,
                    "intermediate_value_type": "FINITE",
                }
            )
        for key, value in t.user_attrs.items():
            rows["trial_user_attributes"].append(
                {"trial_id": trial_id, "key": key, "value_json": json.dumps(value)}
            )
    return rows


@contextmanager
def _environment(url: str) -> Iterator[None]:
    """The dashboard's settings read from the environment: the store, Optuna's storage unset."""
    saved = {k: os.environ.get(k) for k in ("AUTOML_DB", "AUTOML_OPTUNA_STORAGE")}
    os.environ["AUTOML_DB"] = url
    os.environ.pop("AUTOML_OPTUNA_STORAGE", None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def time_hpo_page(
    url: str, study: str = BENCH_STUDY, reruns: int = 5, *, timeout_s: float = 300.0
) -> PageTimes:
    """Load the HPO page on ``study`` of the store at ``url`` (a deep link ``hpo?study=...``): once
    after emptying Streamlit's caches, then ``reruns`` times with nothing changed. Each time is one
    full script run of the app (navigation, sidebar and the page). Raises when the page fails."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    import dashboard

    app = Path(dashboard.__file__).resolve().parent / "app.py"
    with _environment(url):
        st.cache_data.clear()
        st.cache_resource.clear()
        at = AppTest.from_file(str(app), default_timeout=timeout_s)
        at.query_params["study"] = study
        at.switch_page(HPO_PAGE)
        cold = _timed_run(at)
        _check_landed(at, study)
        warm = tuple(_timed_run(at) for _ in range(reruns))
    return PageTimes(study=study, cold_s=cold, warm_runs_s=warm)


def _check_landed(at: Any, study: str) -> None:
    """The timed page is the HPO page showing ``study`` (not the default page, not another study)."""
    shown = [w.value for w in at.selectbox if w.key == "study"]
    if shown != [study]:
        raise RuntimeError(f"the HPO page did not open study {study!r} (study picker: {shown})")


def _timed_run(at: Any) -> float:
    start = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - start
    if at.exception:
        raise RuntimeError(f"the HPO page failed: {[e.value for e in at.exception]}")
    return elapsed


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=600)
    parser.add_argument("--reruns", type=int, default=5)
    parser.add_argument(
        "--db", type=Path, default=None, help="keep the store here (default: a temporary file)"
    )
    args = parser.parse_args(argv)
    if args.db is not None and args.db.exists():
        parser.error(f"{args.db} exists: the benchmark builds its own store")
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "bench.db"
        start = time.perf_counter()
        url = build_study_store(path, args.trials)
        build_s = time.perf_counter() - start
        times = time_hpo_page(url, BENCH_STUDY, args.reruns)
    result = {"trials": args.trials, "build_s": build_s, **asdict(times), "warm_s": times.warm_s}
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
