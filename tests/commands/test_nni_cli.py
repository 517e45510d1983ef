"""NNI from the command line: search a user's NNI space, train it, export NNI frozen architectures."""

from __future__ import annotations

import json
import sys

import torch

from automl.store import open_store

TINY = """
[search]
device = "cpu"
cpu_threads = 1
[data]
image_size = 16
n = 60
[ddpnas]
pruning_step = 1
warmup_epochs = 1
[darts]
epochs = 2
[train]
epochs = 1
batch_size = 32
"""

SPACE = "nni:user_nni_space:TinyFaceSpace"


def _config(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def test_search_train_export_a_user_nni_space(cli, db_url, tmp_path, nni_space_module):
    from search_spaces.nni_export import instantiate

    cfg = _config(tmp_path)
    try:
        res = cli("--db", db_url, "search", "--space", SPACE, "--config", str(cfg))
        assert res.code == 0, res.err
        store = open_store(db_url)
        search_id = store.list_runs(kind="search")[0]["id"]
        genotype = store.final_architecture(search_id)["genotype"]
        assert genotype["space"] == SPACE and set(genotype["arch"]) == {"block1", "block2", "skip"}
        # One distribution row per NNI decision, pruned down to one survivor each.
        assert SPACE in res.out

        out = tmp_path / "a.json"
        res = cli("--db", db_url, "export", str(search_id), "--format", "nni", "--out", str(out))
        assert res.code == 0, res.err
        payload = json.loads((tmp_path / "a.json").read_text())
        assert payload["format"] == "nni-frozen-architecture"
        assert payload["model_space"] == "user_nni_space:TinyFaceSpace"
        assert payload["arch"] == genotype["arch"]
        assert payload["init_kwargs"] == {"in_channels": 1, "num_classes": 7}
        # what an NNI user does: build the space, freeze(arch) -- the user's own module, so allowed
        net = instantiate(payload, allow_user_code=True)
        assert net(torch.rand(2, 1, 16, 16)).shape == (2, 7)

        res = cli("--db", db_url, "train", str(search_id), "--config", str(cfg))
        assert res.code == 0, res.err
        train_id = store.list_runs(kind="train")[0]["id"]
        res = cli("--db", db_url, "export", str(train_id), "--format", "nni")
        assert res.code == 0, res.err
        trained = json.loads((store.run_dir(train_id) / "nni_arch.json").read_text())
        assert trained["arch"] == genotype["arch"] and trained["meta"]["task"] == "fer"
        res = cli("--db", db_url, "export", str(train_id), "--format", "torchscript")
        assert res.code == 0, res.err

        res = cli("--db", db_url, "search", "--space", SPACE, "--strategy", "darts", "--config", str(cfg))
        assert res.code == 0, res.err
        darts_run = store.list_runs(kind="search")[0]
        assert store.final_architecture(darts_run["id"])["genotype"]["space"] == SPACE
    finally:
        torch.set_num_threads(2)


def test_bad_nni_spaces_are_one_line_errors(cli, db_url, tmp_path, nni_space_module):
    cfg = _config(tmp_path)
    cases = [
        ("nni:user_nni_space:NotASpace", "not an NNI ModelSpace"),
        ("nni:user_nni_space:WithDropout", "'dropout' is a Numerical"),
        ("nni:nowhere_xyz:Space", "cannot import NNI space module"),
        ("nni:broken", "unknown search space"),
        ("resnet", "unknown search space"),
    ]
    for target, message in cases:
        res = cli("--db", db_url, "search", "--space", target, "--config", str(cfg))
        assert res.code == 2 and message in res.err and "Traceback" not in res.err, (target, res.err)
        assert len(res.err.strip().splitlines()) == 1, res.err
    assert open_store(db_url).list_runs(kind="search") == [] or all(
        r["state"] != "completed" for r in open_store(db_url).list_runs(kind="search")
    )


def test_darts_run_exports_to_nni_hub_darts(cli, db_url, tmp_path, nni_installed):
    from search_spaces.nni_export import instantiate
    from tests.commands.test_export_cli import _train_run

    store = open_store(db_url)
    run_id, _ = _train_run(store)
    out = tmp_path / "darts_nni.json"
    res = cli("--db", db_url, "export", str(run_id), "--format", "nni", "--out", str(out))
    assert res.code == 0, res.err
    payload = json.loads(out.read_text())
    assert payload["model_space"] == "nni.nas.hub.pytorch:DARTS"
    assert payload["init_kwargs"] == {"width": 4, "num_cells": 3, "dataset": "cifar"}
    assert payload["arch"]["normal/op_2_0"] == "sep_conv_3x3" and payload["arch"]["normal/input_2_0"] == [0]
    assert payload["arch"]["reduce/op_5_1"] == "avg_pool_3x3" and payload["arch"]["reduce/input_5_1"] == [1]
    net = instantiate(payload)
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    assert any(c["kind"] == "nni" for c in store.list_checkpoints(run_id))


def test_export_nni_without_the_extra_says_how_to_get_it(cli, db_url, tmp_path, monkeypatch):
    from tests.commands.test_export_cli import _train_run

    store = open_store(db_url)
    run_id, _ = _train_run(store)
    monkeypatch.setitem(sys.modules, "search_spaces.nni_export", None)  # as if NNI were absent
    out = tmp_path / "x.json"
    res = cli("--db", db_url, "export", str(run_id), "--format", "nni", "--out", str(out))
    assert res.code == 2 and "pip install -e '.[nni]'" in res.err and "Traceback" not in res.err
    assert not out.exists()
