"""Trained weights on disk: safetensors plus a JSON sidecar, written atomically, never unpickled.

Why safetensors: a checkpoint is something users pass around, and ``torch.load`` of a pickle
runs code. A safetensors file is a JSON header and raw tensor bytes, nothing else.

Layout for ``model.safetensors``:

* ``model.safetensors`` -- the state dict; its header metadata also embeds the description
  under the key ``"automl"``, so a lone weights file can still be rebuilt;
* ``model.safetensors.json`` -- the sidecar: genotype, space, in_channels, image_size,
  num_outputs, class_names, task, metrics, network options, and the sha256 of the weights file.

Both files are written with :func:`automl.atomic.atomic_write` (temp file beside the target,
fsync, umask-respecting mode, rename), so a crash leaves either the old pair or the new one.
The weights go first, the sidecar (which names their hash) last: a sidecar never describes
weights that are not complete on disk.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from automl.atomic import atomic_write_bytes
from automl.errors import UserError

META_KEY = "automl"
FORMAT_VERSION = 1


def sidecar_path(path: str | Path) -> Path:
    """``<file>.json`` beside ``path`` (same rule for checkpoints and exported models)."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray | torch.Tensor):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def to_json(payload: Any) -> str:
    """JSON text for metadata that may hold numpy / torch scalars (metrics) or paths."""
    return json.dumps(payload, indent=2, sort_keys=True, default=_json_default, allow_nan=True)


def atomic_write_json(path: str | Path, payload: Any) -> None:
    """Replace ``path`` with :func:`to_json` of ``payload`` via :func:`automl.atomic.atomic_write`."""
    atomic_write_bytes(path, (to_json(payload) + "\n").encode("utf-8"))


@dataclass(frozen=True)
class CheckpointInfo:
    """Where a checkpoint was written."""

    path: Path
    sidecar: Path
    sha256: str


@dataclass
class Checkpoint:
    """A loaded checkpoint: CPU tensors and the description they came with."""

    path: Path
    state_dict: dict[str, torch.Tensor]
    meta: dict[str, Any]
    sha256: str


def save_checkpoint(
    path: str | Path, model: nn.Module | dict[str, torch.Tensor], meta: dict[str, Any]
) -> CheckpointInfo:
    """Save the weights of ``model`` (or a state dict) and ``meta`` as a safetensors + sidecar pair."""
    path = Path(path)
    state = model.state_dict() if isinstance(model, nn.Module) else model
    # Clone: safetensors refuses tensors that share storage, and the copy must be on the CPU anyway.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items() if torch.is_tensor(v)}
    meta_text = to_json(meta)
    # One metadata key only: safetensors keeps metadata in a hash map whose iteration order varies,
    # and with two keys identical checkpoints could get different bytes (and sha256).
    data = st_save(tensors, metadata={META_KEY: meta_text})
    digest = sha256_bytes(data)
    atomic_write_bytes(path, data)
    sidecar = sidecar_path(path)
    atomic_write_json(
        sidecar,
        {
            **json.loads(meta_text),
            "format": "safetensors",
            "format_version": FORMAT_VERSION,
            "weights": path.name,
            "sha256": digest,
            "torch_version": torch.__version__,
        },
    )
    return CheckpointInfo(path=path, sidecar=sidecar, sha256=digest)


def read_sidecar(path: str | Path) -> dict[str, Any] | None:
    """The sidecar of ``path`` if there is one (invalid JSON -> UserError)."""
    side = sidecar_path(path)
    if not side.is_file():
        return None
    try:
        payload = json.loads(side.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(
            f"checkpoint sidecar {side} is not valid JSON ({exc}); re-create it with `automl train`"
        ) from None
    if not isinstance(payload, dict):
        raise UserError(f"checkpoint sidecar {side} must hold a JSON object")
    return payload


def load_checkpoint(path: str | Path, *, verify: bool = True) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint` (weights only; nothing is unpickled).

    With ``verify`` the file's sha256 must match the one its sidecar recorded: a truncated or
    swapped weights file is an error, not a silently different model.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path} (train one with `automl train`)")
    data = path.read_bytes()
    digest = sha256_bytes(data)
    sidecar = read_sidecar(path)
    if verify and sidecar is not None and sidecar.get("sha256") and sidecar["sha256"] != digest:
        raise UserError(
            f"checkpoint {path} does not match its sidecar (sha256 {digest[:12]}... != "
            f"{str(sidecar['sha256'])[:12]}...): the file is corrupt or was replaced"
        )
    try:
        state = st_load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise UserError(f"{path} is not a valid safetensors checkpoint ({exc})") from None
    meta = sidecar
    if meta is None:
        meta = _embedded_meta(path, data)
    return Checkpoint(path=path, state_dict=state, meta=meta, sha256=digest)


def _embedded_meta(path: Path, data: bytes) -> dict[str, Any]:
    """The description embedded in the safetensors header (for a weights file without sidecar)."""
    try:
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + header_len])
        meta = json.loads(header.get("__metadata__", {}).get(META_KEY, "null"))
    except (ValueError, TypeError):
        meta = None
    if not isinstance(meta, dict):
        raise UserError(
            f"{path} has no sidecar ({sidecar_path(path).name}) and no embedded description; "
            "it was not written by `automl train`"
        )
    return meta
