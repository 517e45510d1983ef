"""An exported face model, ready to run on crops: TorchScript or ONNX, on the CPU or a GPU.

``automl predict`` and ``automl index add --video`` take what ``automl export`` writes: a
TorchScript ``model.pt`` or an ONNX ``model.onnx``, each with its JSON sidecar (input size and
channels, task, class names, embedding width, the training metrics and learning signal). A *train
run id* of the store works too: its TorchScript export is used, made first when the run has none.
A search run has no trained weights, and says which train run has them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from automl.errors import UserError

if TYPE_CHECKING:
    from automl.store import Store


@dataclass
class FaceModel:
    """A loaded export: ``logits(x)`` and ``embed(x)`` on float32 ``(N, C, S, S)`` in [0, 1]."""

    path: Path
    format: str
    task: str
    class_names: list[str]
    in_channels: int
    image_size: int
    embedding_dim: int
    device: str
    meta: dict[str, Any] = field(default_factory=dict)
    _module: Any = None
    _session: Any = None

    def _torch(self, method: str, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
            if self.device != "cpu":
                t = t.pin_memory().to(self.device, non_blocking=True)
            out = getattr(self._module, method)(t)
            return out.float().reshape(len(x), -1).cpu().numpy()

    def _onnx(self, output: str, x: np.ndarray) -> np.ndarray:
        (out,) = self._session.run([output], {"input": np.ascontiguousarray(x, dtype=np.float32)})
        return np.asarray(out, np.float32).reshape(len(x), -1)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Raw outputs ``(N, classes)`` (no softmax / sigmoid)."""
        return self._torch("forward", x) if self._session is None else self._onnx("logits", x)

    def embed(self, x: np.ndarray) -> np.ndarray:
        """Penultimate features ``(N, embedding_dim)``: what the index hashes."""
        return self._torch("embed", x) if self._session is None else self._onnx("embedding", x)

    def describe(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "format": self.format,
            "task": self.task,
            "class_names": list(self.class_names),
            "in_channels": self.in_channels,
            "image_size": self.image_size,
            "embedding_dim": self.embedding_dim,
            "device": self.device,
        }


def _device(device: str) -> str:
    from automl.training import resolve_device

    return str(resolve_device(device))


def _load_torchscript(path: Path, meta: dict[str, Any], device: str) -> FaceModel:
    from hashing.stream import load_torchscript

    module = load_torchscript(path, device)
    return FaceModel(path, "torchscript", meta["task"], meta["class_names"], meta["in_channels"],
                     meta["image_size"], meta["embedding_dim"], device, meta, _module=module)  # fmt: skip


def _load_onnx(path: Path, meta: dict[str, Any], device: str) -> FaceModel:
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError("running an ONNX model needs onnxruntime (the 'export' extra), or give the "
                        "TorchScript export instead") from None  # fmt: skip
    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise UserError(
                "this onnxruntime has no CUDA provider; install onnxruntime-gpu or use the cpu device",
                argument="device",
            )
        providers.insert(0, "CUDAExecutionProvider")
    try:
        session = ort.InferenceSession(str(path), providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise UserError(f"{path} is not an ONNX model onnxruntime can load ({type(exc).__name__})") from None
    outputs = {o.name for o in session.get_outputs()}
    if not {"logits", "embedding"} <= outputs:
        raise UserError(f"{path} lacks the outputs 'logits' and 'embedding' of `automl export --format onnx`")
    return FaceModel(path, "onnx", meta["task"], meta["class_names"], meta["in_channels"],
                     meta["image_size"], meta["embedding_dim"], device, meta, _session=session)  # fmt: skip


def _run_export(store: Store | str | None, run_id: int) -> Path:
    """The TorchScript export of train run ``run_id``: its latest registered one whose file is
    present and unchanged, else a new one (registered with the run)."""
    from automl.checkpoint import sha256_file
    from automl.export_job import export_run, trained_children
    from automl.nas.job import as_store

    if store is None:
        raise UserError(f"the model {run_id} is a run id; give the store holding it", argument="db")
    store = as_store(store)
    assert store is not None
    run = store.get_run(run_id)
    if run["kind"] != "train":
        trained = trained_children(store, run_id)
        hint = f"use its train run {trained[0]}" if trained else f"train it first (`automl train {run_id}`)"
        raise UserError(f"run {run_id} is a {run['kind']} run without trained weights; {hint}")
    for ckpt in reversed([c for c in store.list_checkpoints(run_id) if c["kind"] == "torchscript"]):
        p = Path(ckpt["path"])
        if p.is_file() and p.with_name(p.name + ".json").is_file() and sha256_file(p) == ckpt["sha256"]:
            return p
    return export_run(store, run_id, "torchscript").path


def load_face_model(
    model: FaceModel | str | Path | int, *, store: Store | str | None = None, device: str = "auto"
) -> FaceModel:
    """A :class:`FaceModel` from an export's path (``.onnx``: ONNX, else TorchScript), a train run
    id of ``store`` (an int or its digits), or a loaded one (returned as it is)."""
    from hashing.stream import read_model_sidecar

    if isinstance(model, FaceModel):
        return model
    if isinstance(model, int) or (isinstance(model, str) and model.isdigit() and not Path(model).exists()):
        path = _run_export(store, int(model))
    else:
        path = Path(model)
        if not path.is_file():
            raise UserError(
                f"model {path} not found: give an exported model (`automl export RUN_ID --format "
                "torchscript`) or a train run id"
            )
    meta = read_model_sidecar(path)
    dev = _device(device)
    if path.suffix.lower() == ".onnx" or meta.get("format") == "onnx":
        return _load_onnx(path, meta, dev)
    return _load_torchscript(path, meta, dev)
