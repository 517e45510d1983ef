"""Export: TorchScript that loads with torch alone, ONNX checked by onnxruntime, JSON, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from automl.checkpoint import save_checkpoint
from automl.errors import UserError
from automl.exporting import (
    export_checkpoint,
    export_genotype,
    export_onnx,
    export_torchscript,
    inference_model,
    model_from_checkpoint,
)
from automl.training import build_network

GENOTYPE = {
    "space": "darts",
    "normal": [["sep_conv_3x3", 0], ["skip_connect", 1], ["max_pool_3x3", 0], ["dil_conv_3x3", 2],
               ["sep_conv_5x5", 1], ["avg_pool_3x3", 3], ["skip_connect", 0], ["sep_conv_3x3", 4]],
    "reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1], ["skip_connect", 2], ["max_pool_3x3", 0],
               ["dil_conv_5x5", 2], ["sep_conv_3x3", 0], ["skip_connect", 2], ["avg_pool_3x3", 1]],
}  # fmt: skip
OPTIONS = {"init_channels": 4, "layers": 3, "auxiliary": True}
SIZE = 15  # odd on purpose: FactorizedReduce pads, and the trace must keep that


def _trained_like_network() -> tuple[nn.Module, dict]:
    """A DARTS network with non-trivial BN statistics (as after training), and its description."""
    torch.manual_seed(0)
    model, _ = build_network(GENOTYPE, in_channels=1, num_outputs=5, image_size=SIZE, options=OPTIONS)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model.forward_with_aux(torch.rand(8, 1, SIZE, SIZE))
    meta = {
        "genotype": model.genotype,
        "space": "darts",
        "in_channels": 1,
        "image_size": SIZE,
        "num_outputs": 5,
        "class_names": ["a", "b", "c", "d", "e"],
        "task": "fer",
        "metrics": {"accuracy": 0.4},
        "network_options": OPTIONS,
    }
    return model.eval(), meta


FRESH_PROCESS = r"""
import json, sys
import numpy as np
import torch
path, inp = sys.argv[1], sys.argv[2]
m = torch.jit.load(path)
x = torch.from_numpy(np.load(inp))
with torch.no_grad():
    logits, emb = m(x), m.embed(x)
np.save(inp + ".logits.npy", logits.numpy())
np.save(inp + ".embed.npy", emb.numpy())
extra = {"automl.json": ""}
torch.jit.load(path, _extra_files=extra)
print(json.dumps({
    "foreign": sorted(k for k in sys.modules if k.split(".")[0] in ("automl", "search_spaces", "hashing")),
    "embedded_keys": sorted(json.loads(extra["automl.json"])),
}))
"""


def test_torchscript_runs_in_a_fresh_process_with_torch_only(tmp_path):
    model, meta = _trained_like_network()
    info = export_torchscript(model, meta, tmp_path / "model.pt")
    x = torch.rand(6, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(5))
    np.save(tmp_path / "x.npy", x.numpy())
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(info.path), str(tmp_path / "x.npy")],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["foreign"] == []  # nothing of this package was needed to load and run it
    with torch.no_grad():
        want_logits = model(x)
        want_embed = model.pool(_features(model, x)).flatten(1)
    got_logits = torch.from_numpy(np.load(tmp_path / "x.npy.logits.npy"))
    got_embed = torch.from_numpy(np.load(tmp_path / "x.npy.embed.npy"))
    assert torch.allclose(got_logits, want_logits, atol=1e-5, rtol=1e-4)
    assert torch.allclose(got_embed, want_embed, atol=1e-5, rtol=1e-4)
    assert got_embed.shape == (6, info.meta["embedding_dim"])

    side = json.loads((tmp_path / "model.pt.json").read_text())
    for key in ("in_channels", "image_size", "task", "class_names", "embedding_dim", "genotype", "space"):
        assert key in side and key in report["embedded_keys"], key
    assert side["embedding_dim"] == model.classifier.in_features
    assert side["genotype"] == model.genotype and side["class_names"] == meta["class_names"]
    assert side["sha256"] == info.sha256


def _features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The DARTS network's last cell output, computed independently of the export wrapper."""
    s0 = s1 = model.stem(x)
    for cell in model.cells:
        s0, s1 = s1, cell(s0, s1, 0.0)
    return s1


def test_onnx_export_matches_pytorch_in_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model, meta = _trained_like_network()
    info = export_onnx(model, meta, tmp_path / "model.onnx")
    session = ort.InferenceSession(str(info.path), providers=["CPUExecutionProvider"])
    x = torch.rand(7, 1, SIZE, SIZE)  # a batch size the export never saw
    logits, embedding = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        assert np.allclose(logits, model(x).numpy(), atol=1e-4, rtol=1e-3)
    assert embedding.shape == (7, model.classifier.in_features)
    side = json.loads((tmp_path / "model.onnx.json").read_text())
    assert side["output_names"] == ["logits", "embedding"] and side["embedding_dim"] == embedding.shape[1]


def test_checkpoint_round_trip_and_json_export(tmp_path):
    model, meta = _trained_like_network()
    ckpt = save_checkpoint(tmp_path / "model.safetensors", model, meta)
    rebuilt, rmeta = model_from_checkpoint(ckpt.path)
    x = torch.rand(3, 1, SIZE, SIZE)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), model(x))
    assert rmeta["sha256"] == ckpt.sha256
    info = export_checkpoint(ckpt.path, "json", tmp_path / "genotype.json")
    payload = json.loads(info.path.read_text())
    assert payload["genotype"] == model.genotype and payload["space"] == "darts"
    assert payload["source_checkpoint_sha256"] == ckpt.sha256
    ts = export_checkpoint(ckpt.path, "torchscript", tmp_path / "m.pt")
    assert torch.allclose(torch.jit.load(str(ts.path))(x), model(x), atol=1e-5)


class _OwnEmbed(nn.Module):
    """A network that says what its embedding is (e.g. attention heads after the features)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 3, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out = nn.Linear(3, 2)

    def embed(self, x):
        return self.body(x) * 2.0

    def forward(self, x):
        return self.out(self.body(x))


class _ClassifierNotLast(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(16, 4))
        self.classifier = nn.Linear(4, 2)

    def forward(self, x):
        return torch.sigmoid(self.classifier(self.body(x))) * 3.0


class _NoClassifier(nn.Module):
    def forward(self, x):
        return x.flatten(1)[:, :2]


def test_wrapper_uses_embed_or_refuses_networks_it_cannot_split(tmp_path):
    meta = {"in_channels": 1, "image_size": 4, "num_outputs": 2, "task": "fer", "class_names": ["a", "b"],
            "genotype": {"space": "custom"}, "space": "custom"}  # fmt: skip
    net = _OwnEmbed().eval()
    info = export_torchscript(net, meta, tmp_path / "own.pt")
    x = torch.rand(2, 1, 4, 4)
    loaded = torch.jit.load(str(info.path))
    assert torch.allclose(loaded.embed(x), net.embed(x)) and torch.allclose(loaded(x), net(x))
    with pytest.raises(UserError, match="not the last step"):
        inference_model(_ClassifierNotLast(), in_channels=1, image_size=4)
    with pytest.raises(UserError, match="no final nn.Linear"):
        inference_model(_NoClassifier(), in_channels=1, image_size=4)


def test_formats_without_weights_or_adapter_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="needs trained weights"):
        export_genotype(GENOTYPE, "torchscript", tmp_path / "x.pt", {})
    with pytest.raises(UserError, match="NNI"):  # no sizes: the network it describes is unknown
        export_genotype(GENOTYPE, "nni", tmp_path / "x", {})
    assert not (tmp_path / "x").exists()
    with pytest.raises(UserError, match="unknown export format"):
        export_genotype(GENOTYPE, "tflite", tmp_path / "x", {})
    info = export_genotype(GENOTYPE, "json", tmp_path / "g.json", {"run_id": 3})
    assert json.loads(info.path.read_text())["genotype"] == GENOTYPE
    with pytest.raises(UserError, match="checkpoint not found"):
        export_checkpoint(tmp_path / "nope.safetensors", "torchscript", tmp_path / "x.pt")


@pytest.mark.slow
def test_onnx_export_with_the_torch_export_based_exporter(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    model, meta = _trained_like_network()
    info = export_onnx(model, meta, tmp_path / "model.onnx", dynamo=True)
    session = ort.InferenceSession(str(info.path), providers=["CPUExecutionProvider"])
    x = torch.rand(4, 1, SIZE, SIZE)
    (logits, _embedding) = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        assert np.allclose(logits, model(x).numpy(), atol=1e-4, rtol=1e-3)
