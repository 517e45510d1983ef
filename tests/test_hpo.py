"""The HPO library: search space, enqueue files, objectives, the store links and the Pareto front."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import optuna
import pytest
from optuna.trial import FixedTrial, TrialState

from automl.config import Config, TrainSection, load_config
from automl.errors import UserError
from automl.hpo import (
    HPOTarget,
    HPSpace,
    apply_params,
    create_or_load_study,
    parse_objectives,
    read_enqueue_file,
    run_study,
    store_summary,
    suggest_params,
    summarise,
    validation_split,
)
from automl.hpo_workers import open_storage
from automl.store import genotype_hash, open_store

optuna.logging.set_verbosity(optuna.logging.WARNING)

CELL = [["skip_connect", 0], ["max_pool_3x3", 1]] * 4
TINY_GENOTYPE = {
    "space": "darts",
    "nodes": 4,
    "normal": CELL,
    "normal_concat": [2, 3, 4, 5],
    "reduce": CELL,
    "reduce_concat": [2, 3, 4, 5],
}


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny networks run faster on one thread, and much faster than two on a busy 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_config() -> Config:
    """A few hundred 16x16 synthetic faces and a 2-cell network of width 4: about a second a trial."""
    return load_config(
        "quick",
        overrides={
            "search": {"data": "synth:fer", "device": "cpu"},
            "data": {"n": 200, "image_size": 16},
            "train": {"epochs": 1, "init_channels": 4, "layers": 2, "augment": False, "amp": False},
        },
    )


def test_parse_objectives() -> None:
    assert parse_objectives("accuracy") == ("accuracy",)
    assert parse_objectives("accuracy, latency") == ("accuracy", "latency")
    assert parse_objectives(["accuracy", "params"]) == ("accuracy", "params")
    for bad in ("", "speed", "latency", "accuracy,accuracy", "latency,accuracy"):
        with pytest.raises(UserError):
            parse_objectives(bad)


def test_suggest_and_apply_params() -> None:
    base = TrainSection(epochs=8, init_channels=16)
    space = HPSpace()
    assert space.width_choices(16) == [8, 12, 16, 24]
    fixed = {
        "lr": 0.01,
        "weight_decay": 1e-4,
        "batch_size": 32,
        "epochs_scale": 0.5,
        "drop_path": 0.1,
        "init_channels": 24,
    }
    params = suggest_params(FixedTrial(fixed), base, space)
    assert params == fixed
    cfg, epochs = apply_params(base, params, base_epochs=8)
    assert epochs == 4 and cfg.epochs == 4
    assert (cfg.lr, cfg.weight_decay, cfg.batch_size, cfg.drop_path, cfg.init_channels) == (
        0.01,
        1e-4,
        32,
        0.1,
        24,
    )
    assert cfg.momentum == base.momentum  # untouched knobs stay as configured
    _cfg, epochs = apply_params(base, {"epochs_scale": 0.01}, base_epochs=8)
    assert epochs == 1  # never zero epochs


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not valid JSON"),
        ('[{"learning_rate": 0.1}]', "unknown key"),
        ('[{"lr": "fast"}]', "finite number"),
        ('[{"lr": -1}]', "positive"),
        ('[{"batch_size": 50}]', "batch_size must be one of"),
        ("[3]", "non-empty JSON object"),
    ],
)
def test_enqueue_file_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "q.json"
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        read_enqueue_file(path)


def test_enqueue_file_accepts_one_object_or_a_list(tmp_path: Path) -> None:
    path = tmp_path / "q.json"
    path.write_text('{"lr": 0.05, "batch_size": 64}')
    assert read_enqueue_file(path) == [{"lr": 0.05, "batch_size": 64}]
    with pytest.raises(UserError, match="not found"):
        read_enqueue_file(tmp_path / "missing.json")


def test_validation_split_holds_out_part_of_train_and_never_touches_test() -> None:
    import numpy as np
    import torch

    from automl.data import FaceData

    n = 40
    data = FaceData(
        name="toy",
        task="fer",
        class_names=["a", "b"],
        train_x=torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 8, 8).contiguous(),
        train_y=torch.arange(n) % 2,
        test_x=torch.full((5, 1, 8, 8), 255, dtype=torch.uint8),
        test_y=torch.zeros(5, dtype=torch.int64),
        train_subjects=np.array([f"s{i // 4}" for i in range(n)]),  # ten subjects, four images each
    )
    split = validation_split(data, 0.2, seed=0)
    ids = lambda x: set(x[:, 0, 0, 0].tolist())  # noqa: E731
    assert ids(split.train_x) | ids(split.test_x) == set(range(n)) and not ids(split.train_x) & ids(
        split.test_x
    )
    assert len(split.test_x) == 8  # two of ten subjects, all their images
    assert not set(split.train_subjects) & set(split.test_subjects)
    assert 255 not in ids(split.test_x)  # the real test split is not used
    no_subjects = validation_split(dataclasses.replace(data, train_subjects=None), 0.1, seed=0)
    assert len(no_subjects.test_x) == 4 and len(no_subjects.train_x) == 36
    with pytest.raises(UserError, match="too few"):
        validation_split(dataclasses.replace(data, train_x=data.train_x[:2], train_y=data.train_y[:2],
                                             train_subjects=None), 0.5, seed=0)  # fmt: skip


def test_study_objectives_must_match_when_joining(db_url: str) -> None:
    storage = open_storage(db_url)
    create_or_load_study(storage, "s", ("accuracy",))
    assert create_or_load_study(storage, "s", ("accuracy",)).user_attrs["objectives"] == ["accuracy"]
    with pytest.raises(UserError, match="optimises accuracy"):
        create_or_load_study(storage, "s", ("accuracy", "latency"))


def test_pareto_front_is_summarised_and_stored(db_url: str) -> None:
    storage = open_storage(db_url, heartbeat_interval=None)
    study = create_or_load_study(storage, "mo", ("accuracy", "latency"))
    points = [(0.5, 10.0), (0.6, 20.0), (0.4, 30.0), (0.7, 40.0), (0.55, 25.0)]
    for acc, lat in points:
        trial = study.ask()
        study.tell(trial, (acc, lat))
    summary = summarise(study, ("accuracy", "latency"))
    front = {row["number"] for row in summary["pareto_front"]}
    assert front == {0, 1, 3}  # (0.4, 30) and (0.55, 25) are dominated by (0.6, 20)
    store_summary(study, summary)
    reloaded = optuna.load_study(study_name="mo", storage=open_storage(db_url))
    assert [p["number"] for p in reloaded.user_attrs["pareto_front"]] == [0, 1, 3]
    assert reloaded.user_attrs["pareto_front"][0]["values"] == [0.5, 10.0]


def test_real_training_objective_links_trials_to_the_store(db_url: str) -> None:
    """Two trials of a tiny genotype trained for one epoch on 200 synthetic faces, in-process."""
    store = open_store(db_url)
    cfg = tiny_config()
    hpo_run = store.create_run(kind="hpo", config=cfg.model_dump(mode="json"))
    arch_id = store.add_architecture(hpo_run, TINY_GENOTYPE, role="hpo_target")
    target = HPOTarget(
        genotype=TINY_GENOTYPE,
        genotype_hash=genotype_hash(TINY_GENOTYPE),
        config=cfg.model_dump(mode="json"),
        store_url=db_url,
        hpo_run_id=hpo_run,
        base_epochs=1,
        device="cpu",
        architecture_id=arch_id,
    )
    known = {"lr": 0.05, "weight_decay": 3e-4, "batch_size": 64, "init_channels": 8}
    summary = run_study(
        target, storage_url=db_url, study_name="real", n_trials=2, configurations=[known], pruner="none"
    )
    assert summary["counts"]["complete"] == 2 and summary["primary_metric"] == "accuracy"
    assert 0.0 <= summary["best_value"] <= 1.0

    study = optuna.load_study(study_name="real", storage=open_storage(db_url))
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    assert {k: trials[0].params[k] for k in known} == known  # the enqueued configuration ran first
    assert study.user_attrs["hpo_run_id"] == hpo_run and study.user_attrs["best_trial"] in (0, 1)
    for trial in trials:
        attrs = trial.user_attrs
        assert attrs["hpo_run_id"] == hpo_run and attrs["architecture_id"] == arch_id
        assert attrs["genotype_hash"] == genotype_hash(TINY_GENOTYPE)
        assert attrs["latency_ms"] > 0 and attrs["params_m"] > 0
        run = store.get_run(attrs["train_run_id"])
        assert run["kind"] == "train" and run["parent_run_id"] == hpo_run and run["state"] == "completed"
        assert run["summary"]["best_val_metric"] == pytest.approx(trial.value)
        assert run["config"]["train"]["init_channels"] == trial.params["init_channels"]
        epochs = store.epochs(attrs["train_run_id"])
        assert len(epochs) == 1 and epochs[0]["val_metric"] == pytest.approx(trial.intermediate_values[0])
    json.dumps(summary)  # what `automl hpo --json` prints must serialise


class _AlwaysPrune(optuna.pruners.BasePruner):
    """Prunes every trial at its first report (an Optuna object where a name is accepted)."""

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return True


class _CtrlCAtFirstReport(optuna.pruners.BasePruner):
    """Stands in for a Ctrl-C arriving mid-trial."""

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        raise KeyboardInterrupt


def _train_runs_of(store, hpo_run_id: int) -> list[dict]:
    return [r for r in store.list_runs(kind="train") if r["parent_run_id"] == hpo_run_id]


def test_tune_job_from_python_records_the_hpo_run_completed(db_url: str) -> None:
    from automl.hpo_job import tune_job

    result = tune_job(
        TINY_GENOTYPE, db_url, config=tiny_config(), trials=1, study_name="py",
        sampler=optuna.samplers.RandomSampler(seed=0), pruner="none",
    )  # fmt: skip
    store = open_store(db_url)
    run = store.get_run(result.run_id)
    assert run["kind"] == "hpo" and run["state"] == "completed" and run["error"] is None
    assert run["config"]["hpo"]["sampler"] == "RandomSampler" and run["config"]["hpo"]["pruner"] == "none"
    assert result.summary["counts"]["complete"] == 1 and result.best_params is not None
    assert run["summary"]["best_val_metric"] == pytest.approx(result.best_value)
    assert run["summary"]["wall_time"] > 0  # written by the run's lifecycle
    (trial_run,) = _train_runs_of(store, result.run_id)
    assert trial_run["state"] == "completed"


def test_a_pruned_trial_run_ends_pruned_and_ctrl_c_ends_interrupted(db_url: str) -> None:
    from automl.hpo_job import tune_job

    result = tune_job(TINY_GENOTYPE, db_url, config=tiny_config(), trials=1, study_name="pruned",
                      pruner=_AlwaysPrune())  # fmt: skip
    store = open_store(db_url)
    assert result.summary["counts"]["pruned"] == 1 and "best" not in result.summary
    assert store.get_run(result.run_id)["state"] == "completed"  # pruning is the study working
    (trial_run,) = _train_runs_of(store, result.run_id)
    assert trial_run["state"] == "pruned" and "pruned after epoch 0" in trial_run["error"]

    with pytest.raises(KeyboardInterrupt):
        tune_job(TINY_GENOTYPE, db_url, config=tiny_config(), trials=1, study_name="stopped",
                 pruner=_CtrlCAtFirstReport())  # fmt: skip
    (hpo_run,) = [r for r in store.list_runs(kind="hpo") if r["id"] != result.run_id]
    assert hpo_run["state"] == "interrupted"
    (trial_run,) = _train_runs_of(store, hpo_run["id"])
    assert trial_run["state"] == "interrupted" and "Ctrl-C" in trial_run["error"]


def test_samplers_and_pruners_come_from_one_registry() -> None:
    from automl.hpo_registry import PRUNERS, SAMPLERS, create_pruner, create_sampler

    assert isinstance(create_sampler("tpe", seed=1), optuna.samplers.TPESampler)
    assert isinstance(create_pruner("none"), optuna.pruners.NopPruner)
    mine = _AlwaysPrune()
    assert create_pruner(mine) is mine
    assert set(SAMPLERS) == {"tpe", "random", "nsga2"} and set(PRUNERS) == {"median", "hyperband", "none"}
    with pytest.raises(UserError, match="unknown sampler 'grid'"):
        create_sampler("grid")
    with pytest.raises(UserError, match="Optuna pruner"):
        create_pruner(3)
