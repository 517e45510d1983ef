"""``automl train``: from a genotype file or a search run, into the store; bad input -> exit 2."""

from __future__ import annotations

import json

import pytest

from automl.checkpoint import load_checkpoint, sha256_file
from automl.config import load_config
from automl.store import open_store

GENOTYPE = {
    "space": "darts",
    "normal": [["sep_conv_3x3", 0], ["skip_connect", 1], ["max_pool_3x3", 0], ["dil_conv_3x3", 2],
               ["sep_conv_5x5", 1], ["avg_pool_3x3", 3], ["skip_connect", 0], ["sep_conv_3x3", 4]],
    "reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1], ["skip_connect", 2], ["max_pool_3x3", 0],
               ["dil_conv_5x5", 2], ["sep_conv_3x3", 0], ["skip_connect", 2], ["avg_pool_3x3", 1]],
}  # fmt: skip
TINY_TOML = """
[data]
image_size = 16
n = 64
[train]
epochs = 2
batch_size = 32
init_channels = 4
layers = 3
"""


@pytest.fixture
def files(tmp_path):
    genotype = tmp_path / "genotype.json"
    genotype.write_text(json.dumps(GENOTYPE))
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML)
    return genotype, config


def test_train_a_genotype_file_records_everything(cli, db_url, files, tmp_path):
    genotype, config = files
    res = cli("--db", db_url, "train", genotype, "--config", config, "--json", "--out", tmp_path / "copy")
    assert res.code == 0, res.err
    out = json.loads(res.out)
    store = open_store(db_url)
    run = store.get_run(out["run_id"])
    assert run["kind"] == "train" and run["state"] == "completed" and run["parent_run_id"] is None
    assert run["config"]["train"]["epochs"] == 2 and run["data"] == "synth:fer"
    assert run["summary"]["test_metric"] == out["metrics"]["accuracy"]
    epochs = store.epochs(out["run_id"])
    assert [e["epoch"] for e in epochs] == [0, 1]
    assert all(e["train_loss"] is not None and e["val_metric"] is not None for e in epochs)
    (ckpt,) = store.list_checkpoints(out["run_id"])
    assert ckpt["kind"] == "weights" and ckpt["sha256"] == sha256_file(ckpt["path"])
    assert ckpt["path"] == out["checkpoint"] and str(store.run_dir(out["run_id"])) in ckpt["path"]
    meta = load_checkpoint(ckpt["path"]).meta
    assert meta["genotype"]["normal"] == GENOTYPE["normal"] and meta["class_names"][0] == "Angry"
    assert meta["in_channels"] == 1 and meta["image_size"] == 16 and meta["task"] == "fer"
    (arch,) = store.list_architectures(out["run_id"])
    assert arch["params"] == out["params"] > 0
    assert load_checkpoint(tmp_path / "copy" / "model.safetensors").sha256 == ckpt["sha256"]


def test_train_a_search_run_uses_its_architecture_and_config(cli, db_url, files):
    genotype, config = files
    store = open_store(db_url)
    cfg = load_config("quick", config, overrides={"train": {"epochs": 1}})
    search_id = store.create_run(kind="search", config=cfg.model_dump(mode="json"), space="darts", task="fer")
    store.add_architecture(search_id, GENOTYPE, role="final")
    res = cli("--db", db_url, "train", str(search_id), "--occlude", "lower", "--seed", "3")
    assert res.code == 0, res.err
    assert "accuracy" in res.out and "confusion" in res.out
    (train_run,) = store.list_runs(kind="train")
    run = store.get_run(train_run["id"])
    assert run["parent_run_id"] == search_id and run["seed"] == 3
    assert len(store.epochs(run["id"])) == 1  # the stored config's [train] epochs = 1
    assert run["summary"]["occlude"] == "lower"
    assert load_checkpoint(store.list_checkpoints(run["id"])[0]["path"]).meta["occlude"] == "lower"


def test_bad_input_is_one_line_exit_2(cli, db_url, files, tmp_path):
    genotype, config = files
    store = open_store(db_url)
    empty_search = store.create_run(kind="search", config={}, space="darts")
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{nope")
    bad_op = tmp_path / "bad_op.json"
    bad_op.write_text(json.dumps({**GENOTYPE, "reduce": [["conv_7x7", 0]] + GENOTYPE["reduce"][1:]}))
    no_space = tmp_path / "no_space.json"
    no_space.write_text(json.dumps({"normal": []}))
    cases = [
        (("missing.json",), "genotype file not found"),
        ((bad_json,), "not valid JSON"),
        ((bad_op,), "unknown op 'conv_7x7'"),
        ((no_space,), "'space' key"),
        ((str(empty_search),), "has no final architecture"),
        (("999",), "unknown run id 999"),
        ((genotype, "--data", "mnist:/x"), "unknown data kind 'mnist' in 'mnist:/x'"),
        ((genotype, "--data", "mnist:/x"), "(as KIND:PATH) (--data)"),
        ((genotype, "--data", "fer2013:/does/not/exist.csv"), "fer2013.csv not found"),
        ((genotype, "--occlude", "left"), "--occlude must be one of"),
        ((genotype, "--config", tmp_path / "none.toml"), "config file not found"),
    ]
    for args, message in cases:
        extra = () if "--config" in args else ("--config", config)
        res = cli("--db", db_url, "train", *args, *extra)
        assert res.code == 2, (args, res.out, res.err)
        assert message in res.err and "Traceback" not in res.err, (args, res.err)
        assert len(res.err.strip().splitlines()) == 1, res.err
    # nothing half-made: no train run was created for any of these
    assert store.list_runs(kind="train") == []


@pytest.mark.slow
def test_search_then_train_then_export_end_to_end(cli, db_url, files, tmp_path):
    _, config = files
    (tmp_path / "e2e.toml").write_text(TINY_TOML + "[supernet]\ninit_channels = 4\nlayers = 3\n")
    res = cli("--db", db_url, "search", "--strategy", "random", "--config", tmp_path / "e2e.toml",
              "--epochs-scale", "0.1", "--json")  # fmt: skip
    assert res.code == 0, res.err
    search_id = json.loads(res.out)["run_id"]
    res = cli("--db", db_url, "train", str(search_id), "--epochs", "1", "--json")
    assert res.code == 0, res.err
    train_id = json.loads(res.out)["run_id"]
    res = cli("--db", db_url, "export", str(train_id), "--format", "torchscript", "--json")
    assert res.code == 0, res.err
    exported = json.loads(res.out)
    side = json.loads(open(exported["sidecar"]).read())
    store = open_store(db_url)
    assert side["genotype"] == store.final_architecture(search_id)["genotype"]
    assert store.get_run(train_id)["parent_run_id"] == search_id
