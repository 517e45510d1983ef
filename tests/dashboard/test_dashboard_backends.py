"""The dashboard's SQL on SQLite and on a real PostgreSQL server (dialect-specific date math, JSON
extraction, Optuna's enum columns)."""

from __future__ import annotations

import optuna
import pytest

from automl.store import open_store
from automl.store.engine import normalize_url
from automl.store.repository import Store
from dashboard import queries, studies


def test_queries_on_each_backend(any_db_url: str) -> None:
    store = open_store(any_db_url)
    ids = []
    for i, state in enumerate(("completed", "running", "failed")):
        rid = store.create_run(kind="search", config={}, seed=i, space="darts", task="fer", strategy="ddpnas",
                               data=f"synth:{i}")  # fmt: skip
        store.set_state(rid, "running")
        for e in range(i + 1):
            store.record_epoch(rid, e, {"val_metric": 0.1 * (e + 1) + i, "train_loss": 1.0})
        if state != "running":
            store.set_state(rid, state)
        ids.append(rid)
    store.set_summary(ids[0], {"best_val_metric": 9.5})
    store.close()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=normalize_url(any_db_url), study_name="s", direction="maximize")

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_categorical("opt", ["sgd", "adamw"])
        trial.report(1.0, 0)
        if trial.number == 1:
            raise optuna.TrialPruned()
        return 1.0 if x == "sgd" else 2.0

    study.optimize(objective, n_trials=4)

    ro = Store(any_db_url, readonly=True)
    try:
        for sort in queries.SORTS:
            got = queries.list_runs(ro.engine, sort=sort, limit=2, offset=0)
            got += queries.list_runs(ro.engine, sort=sort, limit=2, offset=2)
            assert sorted(r["id"] for r in got) == sorted(ids), sort
        by_best = queries.list_runs(ro.engine, sort="best val metric")
        assert [r["best_val_metric"] for r in by_best] == pytest.approx([9.5, 2.3, 1.2])  # summary wins
        wall = {r["id"]: r["wall_s"] for r in by_best}
        assert all(w is not None and w >= 0 for w in wall.values())
        assert (
            queries.count_runs(ro.engine, queries.RunFilter(states=("failed",), data_contains="SYNTH")) == 1
        )
        (info,) = studies.StudySource(any_db_url, ro.engine).studies()
        assert info["name"] == "s" and info["counts"] == {"COMPLETE": 3, "PRUNED": 1}
        assert info["directions"] == ["MAXIMIZE"]
        rows = queries.trials_page(
            ro.engine, info["study_id"], ["PRUNED", "COMPLETE"], limit=10, descending=True
        )
        assert [r["number"] for r in rows] == [3, 2, 1, 0]
        assert {r["param: opt"] for r in rows} <= {"sgd", "adamw"} and rows[2]["state"] == "PRUNED"
        assert queries.count_trials(ro.engine, info["study_id"], ["COMPLETE"]) == 3
        directions, trials = studies.load_study_trials(any_db_url, "s")
        assert directions == ["maximize"] and len(trials) == 4
    finally:
        ro.close()
