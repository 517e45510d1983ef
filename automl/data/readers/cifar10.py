"""CIFAR-10 python batches (``data_batch_1..5``, ``test_batch``): the NAS sanity benchmark.

The batches are pickles. We never unpickle arbitrary user files, so a restricted unpickler is
used that can only rebuild plain containers and numpy uint8/int arrays (the only things a
genuine CIFAR batch holds); anything else (a function, a class, os.system...) is refused.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import torch

from automl.data.facedata import FaceData
from automl.data.readers.common import require_dir
from automl.data.spec import LoadOptions
from automl.errors import UserError

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch")


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 (N,3,32,32), labels int64 (N,))`` from one batch file."""
    try:
        obj = _SafeUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise UserError(f"{path}: not a CIFAR-10 python batch ({exc})") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path}: not a CIFAR-10 python batch (expected a dict)")
    data = obj.get(b"data", obj.get("data"))
    labels = obj.get(b"labels", obj.get("labels"))
    if data is None or labels is None:
        raise UserError(f"{path}: CIFAR batch without 'data'/'labels'")
    data = np.asarray(data, dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise UserError(f"{path}: CIFAR 'data' must be (N, 3072) uint8 with one label per row")
    return data.reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)


def load_cifar10(path: str, opts: LoadOptions) -> FaceData:
    root = require_dir(path, "CIFAR-10", "give cifar10:/path/to/cifar-10-batches-py")
    train_files = [root / f"data_batch_{i}" for i in range(1, 6)]
    present = [p for p in train_files if p.is_file()]
    if not present or not (root / "test_batch").is_file():
        raise UserError(f"{root}: needs data_batch_1..5 and test_batch (the CIFAR-10 python version)")
    xs, ys = zip(*(read_batch(p) for p in present), strict=True)
    x_tr, y_tr = np.concatenate(xs), np.concatenate(ys)
    x_te, y_te = read_batch(root / "test_batch")
    if opts.n is not None:
        rng = np.random.default_rng(opts.seed)
        n_tr = min(len(y_tr), max(1, int(round(opts.n * len(y_tr) / (len(y_tr) + len(y_te))))))
        n_te = min(len(y_te), max(1, opts.n - n_tr))
        a, b = (
            np.sort(rng.choice(len(y_tr), n_tr, replace=False)),
            np.sort(rng.choice(len(y_te), n_te, replace=False)),
        )
        x_tr, y_tr, x_te, y_te = x_tr[a], y_tr[a], x_te[b], y_te[b]

    def conv(x: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(x))
        if opts.channels == 1:
            t = (
                (t.float() * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1))
                .sum(1, keepdim=True)
                .round()
                .to(torch.uint8)
            )
        if opts.image_size and opts.image_size != 32:
            t = torch.nn.functional.interpolate(
                t.float(), size=(opts.image_size,) * 2, mode="bilinear", align_corners=False
            )
            t = t.round().clamp(0, 255).to(torch.uint8)
        return t

    return FaceData(
        name="cifar10",
        task="fer",
        class_names=list(CIFAR10_CLASSES),
        train_x=conv(x_tr),
        train_y=torch.from_numpy(y_tr),
        test_x=conv(x_te),
        test_y=torch.from_numpy(y_te),
    )
