"""``automl.train_job.train_job`` from Python: a tiny in-memory FaceData, a store or none."""

from __future__ import annotations

import json

import pytest
import torch

from automl.checkpoint import load_checkpoint, sha256_file
from automl.data import FaceData
from automl.errors import UserError
from automl.genotype_source import SpaceMismatchError
from automl.progress import ProgressEvent
from automl.store import open_store
from automl.train_job import train_config, train_job

FER = {"space": "face", "task": "fer", "head": "linear", "depths": [1, 1, 1], "ops": ["mb_k3_e3"] * 3}


def _tiny_data(n: int = 64, n_test: int = 32) -> FaceData:
    """Three classes: which half of a 16x16 grey face is bright."""
    g = torch.Generator().manual_seed(0)

    def split(count: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, 3, (count,), generator=g)
        x = torch.randint(0, 60, (count, 1, 16, 16), generator=g)
        x[y == 0, :, :, :8] += 180
        x[y == 1, :, :, 8:] += 180
        x[y == 2, :, :8, :] += 180
        return x.clamp(0, 255).to(torch.uint8), y

    (train_x, train_y), (test_x, test_y) = split(n), split(n_test)
    return FaceData(name="tiny", task="fer", class_names=["left", "right", "top"],
                    train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y)  # fmt: skip


@pytest.fixture
def cfg():
    cfg = train_config(device="cpu", epochs=1, cpu_threads=1)
    cfg.train.batch_size = 32
    return cfg


def _process_state() -> tuple:
    return torch.get_num_threads(), torch.get_default_dtype(), torch.get_rng_state()


def _same_state(before: tuple, after: tuple) -> bool:
    return before[:2] == after[:2] and torch.equal(before[2], after[2])


def test_train_job_records_a_completed_run_with_its_checkpoint(tmp_path, cfg):
    store = open_store(f"sqlite:///{tmp_path / 'runs.db'}")
    events: list[ProgressEvent] = []
    torch.set_num_threads(2)
    torch.manual_seed(123)
    before = _process_state()
    result = train_job(FER, store, config=cfg, data=_tiny_data(), progress=events.append)
    assert _same_state(before, _process_state())  # threads, dtype and RNG as the caller left them
    run = store.get_run(result.run_id)
    assert run["kind"] == "train" and run["state"] == "completed" and run["error"] is None
    assert run["data"] == "tiny" and run["space"] == "face" and run["parent_run_id"] is None
    summary = run["summary"]
    assert summary["test_metric"] == result.metrics["accuracy"] and summary["primary_metric"] == "accuracy"
    assert summary["checkpoint"] == str(result.checkpoint) and summary["cpu_threads"] == 1
    assert "signal" in summary and summary["occlude"] == "none"
    (ckpt,) = store.list_checkpoints(result.run_id)
    assert ckpt["kind"] == "weights" and ckpt["sha256"] == sha256_file(result.checkpoint)
    assert result.checkpoint.parent == store.run_dir(result.run_id)
    assert load_checkpoint(result.checkpoint).meta["class_names"] == ["left", "right", "top"]
    assert [e["epoch"] for e in store.epochs(result.run_id)] == [0]
    assert store.final_architecture(result.run_id)["params"] == result.params > 0
    assert events and events[-1].done == events[-1].total and "epoch 1/1" in events[-1].message
    assert json.loads(json.dumps(result.to_dict(), default=str))["run_id"] == result.run_id


def test_without_a_store_only_the_checkpoint_is_written(tmp_path, cfg):
    result = train_job(FER, None, config=cfg, data=_tiny_data(), out=tmp_path / "model")
    assert result.run_id is None and result.checkpoint == tmp_path / "model" / "model.safetensors"
    assert load_checkpoint(result.checkpoint).meta["data"] == "tiny"
    with pytest.raises(UserError, match="needs the store"):
        train_job(7, None, config=cfg, data=_tiny_data())


def test_a_failure_inside_the_job_is_recorded_failed(tmp_path, cfg, monkeypatch):
    import automl.training

    def broken(*args, **kwargs):
        raise RuntimeError("the loss went\nto NaN")

    monkeypatch.setattr(automl.training, "fit", broken)
    store = open_store(f"sqlite:///{tmp_path / 'runs.db'}")
    torch.manual_seed(7)
    before = _process_state()
    with pytest.raises(RuntimeError, match="NaN"):
        train_job(FER, store, config=cfg, data=_tiny_data())
    assert _same_state(before, _process_state())
    (run,) = store.list_runs(kind="train")
    run = store.get_run(run["id"])
    assert run["state"] == "failed" and run["error"] == "RuntimeError: the loss went to NaN"
    assert store.list_checkpoints(run["id"]) == []


def test_bad_input_fails_before_a_run_exists(tmp_path, cfg):
    store = open_store(f"sqlite:///{tmp_path / 'runs.db'}")
    with pytest.raises(SpaceMismatchError, match="does not match the requested space 'darts'"):
        train_job(FER, store, config=cfg, data=_tiny_data(), space="darts")
    genotype = tmp_path / "user.json"
    genotype.write_text(json.dumps({"space": f"nni:{tmp_path / 'nope.py'}:Space", "arch": {}}))
    with pytest.raises(UserError, match="names user code"):
        train_job(genotype, store, config=cfg, data=_tiny_data())
    with pytest.raises(UserError, match="occlude"):
        train_job(FER, store, config=cfg, data=_tiny_data(), occlude="left")
    assert store.list_runs() == []
