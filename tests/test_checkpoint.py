"""Checkpoints: safetensors + sidecar, atomic, verified by sha256, never unpickled."""

from __future__ import annotations

import hashlib
import json
import os
import pickle

import pytest
import torch
from torch import nn

from automl.checkpoint import load_checkpoint, save_checkpoint, sidecar_path
from automl.errors import UserError

META = {
    "genotype": {"space": "darts"},
    "space": "darts",
    "in_channels": 1,
    "image_size": 16,
    "num_outputs": 3,
    "class_names": ["a", "b", "c"],
    "task": "fer",
    "metrics": {"accuracy": 0.5, "confusion": [[1, 0], [0, 1]]},
}


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(3))


def test_round_trip_keeps_weights_meta_and_hash(tmp_path):
    model = _model()
    model(torch.rand(2, 1, 8, 8))  # materialise the lazy layer, update BN buffers
    info = save_checkpoint(tmp_path / "m.safetensors", model, META)
    assert info.sidecar == tmp_path / "m.safetensors.json"
    assert info.sha256 == hashlib.sha256(info.path.read_bytes()).hexdigest()
    side = json.loads(info.sidecar.read_text())
    assert side["sha256"] == info.sha256 and side["format"] == "safetensors"
    assert {k: side[k] for k in META} == META
    # nothing temporary left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors", "m.safetensors.json"]

    ckpt = load_checkpoint(info.path)
    state = model.state_dict()
    assert set(ckpt.state_dict) == set(state)
    for key, value in state.items():
        assert torch.equal(ckpt.state_dict[key], value), key
    assert ckpt.meta["class_names"] == ["a", "b", "c"] and ckpt.sha256 == info.sha256


def test_weights_without_sidecar_use_the_embedded_description(tmp_path):
    info = save_checkpoint(tmp_path / "m.safetensors", _model()[:2], META)
    info.sidecar.unlink()
    ckpt = load_checkpoint(info.path)
    assert ckpt.meta["task"] == "fer" and ckpt.meta["genotype"] == {"space": "darts"}


def test_tampered_weights_are_rejected(tmp_path):
    info = save_checkpoint(tmp_path / "m.safetensors", _model()[:2], META)
    data = bytearray(info.path.read_bytes())
    data[-1] ^= 0xFF
    info.path.write_bytes(bytes(data))
    with pytest.raises(UserError, match="does not match its sidecar"):
        load_checkpoint(info.path)
    assert load_checkpoint(info.path, verify=False).sha256 != info.sha256


def test_bad_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(UserError, match="not a valid safetensors"):
        load_checkpoint(junk)
    info = save_checkpoint(tmp_path / "m.safetensors", _model()[:2], META)
    info.sidecar.write_text("{broken")
    with pytest.raises(UserError, match="not valid JSON"):
        load_checkpoint(info.path)


class _Boom:
    """Unpickling this would create a file: loading must never get that far."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_a_pickle_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps(_Boom(str(marker))))
    with pytest.raises(UserError):
        load_checkpoint(evil)
    assert not marker.exists()
    assert not sidecar_path(evil).exists()


def test_same_weights_and_meta_give_the_same_bytes(tmp_path):
    model = _model()[:2]
    digests = {save_checkpoint(tmp_path / f"m{i}.safetensors", model, META).sha256 for i in range(8)}
    assert len(digests) == 1
