import json

import numpy as np
import pytest

from automl.errors import UserError
from automl.nas.recorder import MemoryRecorder
from automl.store import open_store
from automl.store.recorder import StoreRecorder


def test_run_round_trip_epochs_distributions_architecture(any_db_url):
    db_url = any_db_url
    store = open_store(db_url)
    run_id = store.create_run(
        kind="search",
        config={"search": {"seed": 3}},
        seed=3,
        space="darts",
        task="fer",
        strategy="ddpnas",
        data="synth:fer",
    )
    rec = StoreRecorder(store, run_id)
    rec.on_start({"search_epochs": 2})
    theta = np.full((3, 4), 0.25)
    alive = np.ones((3, 4), dtype=bool)
    rec.on_epoch(
        0,
        {
            "phase": "search",
            "round": 0,
            "sample": np.array([1, 2, 3]),
            "train_loss": 1.5,
            "val_metric": np.float32(0.25),
            "lr": 0.1,
            "wall_time": 1.0,
            "custom": "x",
        },
    )
    rec.on_epoch(1, {"phase": "search", "round": 0, "sample": [0, 0, 0], "val_metric": 0.5})
    alive[0, 2] = False
    rec.on_distribution(0, 1, theta, alive, {"pruned": [[0, 2]]})
    genotype = {"space": "darts", "normal": [["sep_conv_3x3", 0]]}
    rec.on_finish(genotype, {"best_val_metric": 0.5, "variants": {"skip_cap_2": genotype}})
    assert store.get_run(run_id)["state"] == "created"  # the recorder never writes the state...
    store.set_state(run_id, "completed")  # ...the run lifecycle does (tests/store/test_lifecycle.py)

    report = store.run_report(run_id)
    assert report["state"] == "completed"
    assert report["config"] == {"search": {"seed": 3}}
    assert [e["epoch"] for e in report["epochs"]] == [0, 1]
    assert report["epochs"][0]["sample"] == [1, 2, 3]
    assert report["epochs"][0]["custom"] == "x"
    assert report["epochs"][0]["val_metric"] == pytest.approx(0.25)
    assert report["distributions"][0]["alive"][0] == [True, True, False, True]
    assert report["distributions"][0]["extra"] == {"pruned": [[0, 2]]}
    assert report["genotype"] == genotype
    assert {a["role"] for a in report["architectures"]} == {"final", "skip_cap_2"}
    assert report["summary"]["best_val_metric"] == 0.5
    json.dumps(report)  # the whole report is JSON-serialisable
    # a second process reading the same file sees the same thing
    assert open_store(db_url).run_report(run_id)["epochs"] == report["epochs"]


def test_epoch_rewrite_is_idempotent_and_resume_truncates(any_db_url):
    db_url = any_db_url
    store = open_store(db_url)
    run_id = store.create_run(kind="search")
    for epoch in range(5):
        store.record_epoch(run_id, epoch, {"val_metric": epoch / 10})
        store.record_distribution(run_id, epoch, epoch, [[1.0]], [[True]])
    store.record_epoch(run_id, 4, {"val_metric": 0.9})
    assert len(store.epochs(run_id)) == 5
    assert store.epochs(run_id)[-1]["val_metric"] == pytest.approx(0.9)
    StoreRecorder(store, run_id).on_resume(2)
    assert [e["epoch"] for e in store.epochs(run_id)] == [0, 1, 2]
    assert [d["epoch"] for d in store.distributions(run_id)] == [0, 1, 2]


def test_memory_recorder_matches_protocol_semantics():
    rec = MemoryRecorder()
    for epoch in range(4):
        rec.on_epoch(epoch, {"val_metric": epoch})
        rec.on_distribution(epoch, epoch, np.zeros((1, 2)), np.ones((1, 2), bool), {})
    rec.on_resume(1)
    assert sorted(rec.epochs) == [0, 1] and sorted(rec.distributions) == [0, 1]


def test_unknown_run_and_missing_architecture_are_user_errors(db_url):
    store = open_store(db_url)
    with pytest.raises(UserError, match="unknown run id 42"):
        store.get_run(42)
    run_id = store.create_run(kind="search")
    with pytest.raises(UserError, match="no final architecture"):
        store.final_architecture(run_id)


def test_checkpoint_and_index_records_hash_files(db_url, tmp_path):
    store = open_store(db_url)
    run_id = store.create_run(kind="train")
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"abc")
    store.add_checkpoint(run_id, weights, metrics={"accuracy": 0.7})
    ckpt = store.list_checkpoints(run_id)[0]
    assert ckpt["sha256"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    store.add_index(tmp_path, sha256="0" * 64, bits=64, size=10, run_id=run_id)
    assert store.list_indexes()[0]["bits"] == 64


def test_run_dir_lives_beside_the_sqlite_file(db_url, tmp_path):
    store = open_store(db_url)
    run_id = store.create_run(kind="search")
    assert store.run_dir(run_id) == tmp_path / "runs" / store.store_id[:12] / str(run_id)
    assert store.run_dir(run_id).is_dir()


def test_list_runs_paginates_newest_first(db_url):
    store = open_store(db_url)
    ids = [store.create_run(kind="search") for _ in range(7)]
    page1 = store.list_runs(limit=3)
    page2 = store.list_runs(limit=3, offset=3)
    assert [r["id"] for r in page1] == ids[::-1][:3]
    assert [r["id"] for r in page2] == ids[::-1][3:6]
    assert store.count_runs() == 7
