"""The Python API (automl.api): a search on your own tensors, recorded, resumable, and leaving the
caller's process-wide torch state as it found it."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

import automl
from automl.errors import UserError
from automl.nas.strategies import create_strategy, strategy_names
from automl.store import open_store
from automl.store.lifecycle import RunRestartWarning
from search_spaces.registry import create_space

TINY = {
    "search": {"device": "cpu", "steps_per_epoch": "pass"},
    "data": {"batch_size": 64},
    "supernet": {"init_channels": 2, "layers": 3, "nodes": 1},
    "ddpnas": {"pruning_step": 1},
    "random": {"epochs": 2, "candidates": 2},
}


@pytest.fixture
def faces() -> automl.FaceData:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (120, 1, 8, 8), dtype=np.uint8)
    y = rng.integers(0, 3, 120)
    x[y == 1, :, :4] = 255  # something to learn
    return automl.face_data(x, y, class_names=["a", "b", "c"])


def test_import_automl_is_light() -> None:
    heavy = "('torch', 'optuna', 'sqlalchemy')"
    code = f"import automl, sys; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_face_data_checks_shapes_and_scales_floats() -> None:
    d = automl.face_data(np.full((20, 8, 8), 0.5, dtype=np.float32), np.arange(20) % 2)
    assert d.train_x.dtype == torch.uint8 and int(d.train_x[0, 0, 0, 0]) == 128
    assert len(d.train_x) + len(d.test_x) == 20 and d.in_channels == 1
    with pytest.raises(UserError, match="square images"):
        automl.face_data(np.zeros((20, 8, 6)), np.zeros(20, dtype=int))
    with pytest.raises(UserError, match=r"\[0, 1\]"):
        automl.face_data(np.full((20, 8, 8), 3.0), np.zeros(20, dtype=int))
    with pytest.raises(UserError, match="19 labels for 20 images"):
        automl.face_data(np.zeros((20, 8, 8), dtype=np.uint8), np.zeros(19, dtype=int))


def test_search_on_tensors_is_recorded_and_restores_process_state(faces, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'api.db'}"
    torch.set_num_threads(2)
    dtype_before, rng_before = torch.get_default_dtype(), torch.get_rng_state()
    result = automl.search(faces, space="darts", config=TINY, store=url, precision="float64", cpu_threads=1)
    assert torch.get_default_dtype() == dtype_before and torch.get_num_threads() == 2
    assert torch.equal(torch.get_rng_state(), rng_before)
    store = open_store(url)
    run = store.get_run(result.run_id)
    assert run["state"] == "completed" and run["data"] == "memory:arrays" and run["task"] == "fer"
    assert store.final_architecture(result.run_id)["genotype"] == result.genotype
    assert result.signal is not None and result.wall_time == run["summary"]["wall_time"]


def test_objects_are_accepted_where_names_are(faces) -> None:
    cfg = automl.resolve_config(TINY, search={"strategy": "random"})
    space = create_space("darts", task="fer", nodes=1)
    strategy = create_strategy("random", space, cfg)
    result = automl.search(faces, strategy=strategy, config=TINY)
    assert result.run_id is None and result.genotype["space"] == "darts"
    assert set(strategy_names()) >= {"ddpnas", "darts", "random"}
    with pytest.raises(UserError, match="unknown strategy 'nope'"):
        automl.search(faces, strategy="nope", config=TINY)


def test_resume_without_state_restarts_and_says_so(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    store = open_store(url)
    cfg = automl.resolve_config({**TINY, "data": {"batch_size": 64, "n": 40, "image_size": 8}},
                                search={"space": "darts"})
    stored = cfg.model_dump(mode="json")
    with pytest.raises(KeyboardInterrupt), store.run(kind="search", config=stored) as run:
        raise KeyboardInterrupt  # interrupted before its first epoch: no state file
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = automl.search(store=url, resume=run.id)
    assert any(issubclass(w.category, RunRestartWarning) for w in caught)
    summary = store.get_run(run.id)["summary"]
    assert len(summary["restarts"]) == 1 and "starts again from epoch 0" in summary["restarts"][0]["reason"]
    assert result.run_id == run.id and store.get_run(run.id)["state"] == "completed"


def test_search_then_train_then_export_from_python(faces, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'chain.db'}"
    found = automl.search(faces, space="darts", config=TINY, store=url)
    trained = automl.train(found.run_id, faces, config=TINY, store=url, epochs=1, init_channels=4, layers=3)
    store = open_store(url)
    run = store.get_run(trained.run_id)
    assert run["kind"] == "train" and run["state"] == "completed" and run["parent_run_id"] == found.run_id
    assert trained.checkpoint.is_file() and "accuracy" in trained.metrics
    info = automl.export(trained.run_id, "json", store=url, out=tmp_path / "g.json")
    assert info.path.is_file()


def test_api_names_are_functions_even_after_every_module_is_imported() -> None:
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(automl.__path__):  # a submodule named like a function would shadow it
        if info.name not in ("__main__", "cli"):
            importlib.import_module(f"automl.{info.name}")
    for name in ("search", "train", "tune", "export", "load_data", "face_data"):
        assert callable(getattr(automl, name)) and not isinstance(getattr(automl, name), type(automl)), name
