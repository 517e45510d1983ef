"""``automl export``: a train run's checkpoint -> TorchScript / ONNX / JSON; a search run -> JSON only."""

from __future__ import annotations

import json

import torch

from automl.checkpoint import save_checkpoint
from automl.store import open_store
from automl.training import build_network

GENOTYPE = {
    "space": "darts",
    "normal": [["sep_conv_3x3", 0], ["skip_connect", 1], ["max_pool_3x3", 0], ["dil_conv_3x3", 2],
               ["sep_conv_5x5", 1], ["avg_pool_3x3", 3], ["skip_connect", 0], ["sep_conv_3x3", 4]],
    "reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1], ["skip_connect", 2], ["max_pool_3x3", 0],
               ["dil_conv_5x5", 2], ["sep_conv_3x3", 0], ["skip_connect", 2], ["avg_pool_3x3", 1]],
}  # fmt: skip
OPTIONS = {"init_channels": 4, "layers": 3, "auxiliary": True}


def _train_run(store, parent: int | None = None) -> tuple[int, torch.nn.Module]:
    """A completed train run with a checkpoint (weights made directly: training is tested elsewhere)."""
    torch.manual_seed(0)
    model, _ = build_network(GENOTYPE, in_channels=1, num_outputs=3, image_size=16, options=OPTIONS)
    model.eval()
    meta = {"genotype": model.genotype, "space": "darts", "in_channels": 1, "image_size": 16,
            "num_outputs": 3, "class_names": ["x", "y", "z"], "task": "fer",
            "metrics": {"accuracy": 0.5}, "network_options": OPTIONS}  # fmt: skip
    run_id = store.create_run(kind="train", config={}, space="darts", task="fer", parent_run_id=parent)
    info = save_checkpoint(store.run_dir(run_id) / "model.safetensors", model, meta)
    store.add_checkpoint(run_id, info.path, sha256=info.sha256, kind="weights")
    store.set_state(run_id, "completed")
    return run_id, model


def test_export_a_train_run_in_every_format(cli, db_url, tmp_path):
    store = open_store(db_url)
    run_id, model = _train_run(store)
    res = cli("--db", db_url, "export", str(run_id), "--format", "torchscript", "--json")
    assert res.code == 0, res.err
    out = json.loads(res.out)
    path = store.run_dir(run_id) / "model.pt"
    assert out["path"] == str(path) and out["embedding_dim"] == model.classifier.in_features
    x = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        assert torch.allclose(torch.jit.load(str(path))(x), model(x), atol=1e-5)
    assert json.loads((store.run_dir(run_id) / "model.pt.json").read_text())["task"] == "fer"

    res = cli("--db", db_url, "export", str(run_id), "--format", "onnx", "--out", tmp_path / "m.onnx")
    assert res.code == 0, res.err and (tmp_path / "m.onnx").is_file()
    res = cli("--db", db_url, "export", str(run_id), "--format", "json", "--out", tmp_path / "g.json")
    assert res.code == 0, res.err
    assert json.loads((tmp_path / "g.json").read_text())["genotype"]["reduce"] == GENOTYPE["reduce"]
    kinds = [c["kind"] for c in store.list_checkpoints(run_id)]
    assert kinds == ["weights", "torchscript", "onnx", "json"]
    # the JSON export trains again (round trip through `automl train`'s file reader)
    from automl.genotype_source import read_genotype_file

    assert read_genotype_file(tmp_path / "g.json")["normal"] == GENOTYPE["normal"]


def test_export_a_search_run_json_only(cli, db_url, tmp_path):
    store = open_store(db_url)
    search_id = store.create_run(kind="search", config={}, space="darts", task="fer")
    store.add_architecture(search_id, GENOTYPE, params=1234.0, role="final")
    res = cli("--db", db_url, "export", str(search_id), "--format", "json")
    assert res.code == 0, res.err
    payload = json.loads((store.run_dir(search_id) / "genotype.json").read_text())
    assert payload["genotype"] == GENOTYPE and payload["trained"] is False and payload["params"] == 1234.0
    res = cli("--db", db_url, "export", str(search_id), "--format", "torchscript")
    assert res.code == 2 and f"automl train {search_id}" in res.err
    child, _ = _train_run(store, parent=search_id)
    res = cli("--db", db_url, "export", str(search_id), "--format", "onnx")
    assert res.code == 2 and f"automl export {child} --format onnx" in res.err


def test_export_errors_exit_2(cli, db_url):
    store = open_store(db_url)
    run_id, _ = _train_run(store)
    empty_train = store.create_run(kind="train", config={})
    empty_search = store.create_run(kind="search", config={})
    ckpt = store.list_checkpoints(run_id)[0]["path"]
    cases = [
        ((str(run_id), "--format", "tflite"), "unknown export format"),
        (("424242", "--format", "json"), "unknown run id"),
        ((str(empty_train), "--format", "torchscript"), "has no checkpoint"),
        ((str(empty_search), "--format", "json"), "no final architecture"),
    ]
    for args, message in cases:
        res = cli("--db", db_url, "export", *args)
        assert res.code == 2 and message in res.err and "Traceback" not in res.err, (args, res.err)
    with open(ckpt, "r+b") as fh:  # tamper with the stored weights
        fh.seek(-1, 2)
        fh.write(b"\x00" if fh.read(1) != b"\x00" else b"\x01")
    res = cli("--db", db_url, "export", str(run_id), "--format", "torchscript")
    assert res.code == 2 and "sha256 mismatch" in res.err
