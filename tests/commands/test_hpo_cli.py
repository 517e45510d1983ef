"""``automl hpo``: two real worker processes on SQLite and on PostgreSQL, enqueue, Pareto front, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from automl.store import open_store

CELL = [["skip_connect", 0], ["max_pool_3x3", 1]] * 4
TINY_GENOTYPE = {
    "space": "darts",
    "nodes": 4,
    "normal": CELL,
    "normal_concat": [2, 3, 4, 5],
    "reduce": CELL,
    "reduce_concat": [2, 3, 4, 5],
}
# A few hundred 16x16 synthetic faces, a 2-cell network of width 4, one epoch: about a second a trial.
TINY_TOML = """
[search]
data = "synth:fer"
device = "cpu"

[data]
n = 200
image_size = 16

[train]
epochs = 1
init_channels = 4
layers = 2
augment = false
amp = false
"""


@pytest.fixture
def tiny_files(tmp_path: Path) -> dict[str, Path]:
    genotype = tmp_path / "genotype.json"
    genotype.write_text(json.dumps(TINY_GENOTYPE))
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML)
    return {"genotype": genotype, "config": config}


def _study(url: str, name: str) -> optuna.Study:
    from automl.hpo_workers import open_storage

    return optuna.load_study(study_name=name, storage=open_storage(url, heartbeat_interval=None))


def _check_exact(study: optuna.Study, n: int) -> list[optuna.trial.FrozenTrial]:
    trials = study.get_trials()
    numbers = [t.number for t in trials]
    assert sorted(numbers) == list(range(n)), "a duplicate or lost trial"
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    return trials


def test_two_workers_on_sqlite_with_enqueue_and_a_pareto_front(cli, db_url, tiny_files, tmp_path):
    queue = tmp_path / "known.json"
    known = {"lr": 0.05, "batch_size": 64, "init_channels": 8}
    queue.write_text(json.dumps([known]))
    res = cli(
        "--db", db_url, "hpo", tiny_files["genotype"], "--trials", "4", "--workers", "2",
        "--config", tiny_files["config"], "--objectives", "accuracy,params", "--enqueue", queue,
        "--study", "mo", "--json",
    )  # fmt: skip
    assert res.code == 0, res.err
    summary = json.loads(res.out)
    assert summary["storage_kind"] == "sqlite" and summary["counts"]["complete"] == 4
    front = summary["pareto_front"]
    assert front and all(len(row["values"]) == 2 for row in front)

    study = _study(db_url, "mo")  # the study lives in the store's own database
    trials = _check_exact(study, 4)
    assert {k: trials[0].params[k] for k in known} == known
    assert len({t.user_attrs["worker"]["pid"] for t in trials}) <= 2
    assert [p["number"] for p in study.user_attrs["pareto_front"]] == [row["number"] for row in front]

    store = open_store(db_url)
    hpo_run = store.get_run(summary["hpo_run_id"])
    assert hpo_run["kind"] == "hpo" and hpo_run["state"] == "completed"
    assert hpo_run["summary"]["pareto_front"] == front
    children = [r for r in store.list_runs(kind="train") if r["parent_run_id"] == summary["hpo_run_id"]]
    assert sorted(r["id"] for r in children) == sorted(t.user_attrs["train_run_id"] for t in trials)
    assert all(r["state"] == "completed" and r["epochs"] == 1 for r in children)


@pytest.mark.postgres
def test_two_workers_on_postgresql_from_a_search_run(cli, postgres_url, tiny_files):
    """Store and study on PostgreSQL; the architecture comes from a search run's final genotype."""
    import tomllib

    from automl.config import validate_config

    store = open_store(postgres_url)
    cfg = validate_config(tomllib.loads(TINY_TOML))
    search_run = store.create_run(kind="search", config=cfg.model_dump(mode="json"), space="darts")
    arch_id = store.add_architecture(search_run, TINY_GENOTYPE, role="final")
    store.set_state(search_run, "completed")

    res = cli(
        "--db", postgres_url, "hpo", str(search_run), "--trials", "3", "--workers", "2", "--pruner", "none"
    )
    assert res.code == 0, res.err
    assert "best trial" in res.out and "[train]" in res.out
    study_name = f"hpo-run{search_run}-synth_fer-accuracy"
    trials = _check_exact(_study(postgres_url, study_name), 3)
    assert all(t.user_attrs["search_run_id"] == search_run for t in trials)
    assert all(t.user_attrs["architecture_id"] == arch_id for t in trials)
    hpo_runs = store.list_runs(kind="hpo")
    assert hpo_runs[0]["parent_run_id"] == search_run and hpo_runs[0]["state"] == "completed"
    assert hpo_runs[0]["summary"]["best"]["number"] in (0, 1, 2)

    # Same command again: the study's budget is spent, so nothing more runs (a resumable study).
    res = cli("--db", postgres_url, "hpo", str(search_run), "--trials", "3", "--json")
    assert res.code == 0, res.err
    assert len(_study(postgres_url, study_name).get_trials()) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.json"], "genotype file not found"),
        (["{genotype}", "--objectives", "speed"], "unknown objective"),
        (["{genotype}", "--enqueue", "nope.json"], "enqueue file not found"),
        (["{genotype}", "--storage", "not a url"], "invalid storage URL"),
        (["{genotype}", "--sampler", "grid"], "unknown sampler"),
        (["{genotype}", "--data", "nosuch:thing", "--config", "{config}"], "KIND:PATH) (--data)"),
        (["{bad_genotype}"], "genotype"),
        (["999"], "unknown run id 999"),
    ],
)
def test_bad_input_exits_2_with_one_line(cli, db_url, tiny_files, tmp_path, args, message):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"space": "darts", "nodes": 4, "normal": [["no_such_op", 0]]}))
    paths = {"genotype": tiny_files["genotype"], "config": tiny_files["config"], "bad_genotype": bad}
    res = cli("--db", db_url, "hpo", *[a.format(**paths) for a in args])
    assert res.code == 2, (res.out, res.err)
    assert message in res.err and "Traceback" not in res.err


def test_bench_hpo_writes_a_side_by_side_table_and_json(cli, tmp_path):
    out = tmp_path / "bench.json"
    res = cli("bench", "hpo", "--trials", "6", "--workers", "2", "--storages", "sqlite,journal", "--out", out)
    assert res.code == 0, res.err
    assert "trials/min" in res.out and "journal" in res.out
    rows = json.loads(out.read_text())["rows"]
    assert [(r["storage"], r["workers"]) for r in rows] == [("sqlite", 2), ("journal", 2)]
    assert all(r["trials"] == 6 and r["duplicates"] == 0 and r["trials_per_min"] > 0 for r in rows)
    res = cli("bench", "hpo", "--storages", "redis")
    assert res.code == 2 and "unknown storage" in res.err
