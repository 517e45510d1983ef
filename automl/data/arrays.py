"""Your own tensors as a :class:`~automl.data.FaceData`: what a library user hands to a search.

Images may be numpy arrays or torch tensors, ``(N, H, W)`` (grey) or ``(N, C, H, W)`` with C = 1
or 3, square; uint8 0..255 is kept as is and floats in [0, 1] are scaled to uint8 (the whole
pipeline keeps images as uint8 so a split fits on a GPU). Labels: class indices (N,) for
``task="fer"``, 0/1 rows (N, A) for ``task="au"``. Without a test split, a seeded 20% of the
rows is held out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from automl.data.facedata import FaceData
from automl.errors import UserError


def _images(x: Any, what: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).detach().cpu()
    if t.ndim == 3:
        t = t[:, None]
    if t.ndim != 4 or t.shape[1] not in (1, 3) or t.shape[2] != t.shape[3]:
        raise UserError(f"{what} must be (N, H, W) or (N, C, H, W) square images with C = 1 or 3, "
                        f"not shape {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise UserError(f"{what} holds no images")
    if t.dtype == torch.uint8:
        return t.contiguous()
    if not t.is_floating_point():
        raise UserError(f"{what} must be uint8 (0..255) or float (0..1), not {t.dtype}")
    if not torch.isfinite(t).all() or t.min() < 0 or t.max() > 1:
        raise UserError(f"{what} as floats must lie in [0, 1] (finite); scale them or pass uint8")
    return (t * 255).round().to(torch.uint8).contiguous()


def _labels(y: Any, task: str, n: int, what: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y).detach().cpu()
    if t.shape[0] != n:
        raise UserError(f"{what} has {t.shape[0]} labels for {n} images")
    if task == "fer":
        if t.ndim != 1 or t.is_floating_point() or (t < 0).any():
            raise UserError(f"{what} for task 'fer' must be non-negative class indices (N,)")
        return t.long()
    if t.ndim != 2 or not bool(((t == 0) | (t == 1)).all()):
        raise UserError(f"{what} for task 'au' must be 0/1 rows (N, number of AUs)")
    return t.float()


def face_data(
    train_x: Any,
    train_y: Any,
    *,
    test_x: Any = None,
    test_y: Any = None,
    task: str = "fer",
    class_names: Sequence[str] | None = None,
    name: str = "arrays",
    hflip_ok: bool = True,
    seed: int = 0,
) -> FaceData:
    """Wrap images and labels as a :class:`FaceData` (see the module docstring for the layouts)."""
    if task not in ("fer", "au"):
        raise UserError(f"task must be 'fer' or 'au', not {task!r}")
    x = _images(train_x, "train_x")
    y = _labels(train_y, task, int(x.shape[0]), "train_y")
    if (test_x is None) != (test_y is None):
        raise UserError("give both test_x and test_y, or neither (then 20% of the rows are held out)")
    if test_x is None:
        if x.shape[0] < 10:
            raise UserError(f"{x.shape[0]} images are too few to hold out a test split: give at least 10")
        order = torch.from_numpy(np.random.default_rng(seed).permutation(int(x.shape[0])))
        cut = max(1, int(round(0.2 * len(order))))
        tx, ty, x, y = x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]]
    else:
        tx = _images(test_x, "test_x")
        ty = _labels(test_y, task, int(tx.shape[0]), "test_y")
        if tx.shape[1:] != x.shape[1:]:
            raise UserError(f"test_x images are {tuple(tx.shape[1:])}, train_x images {tuple(x.shape[1:])}")
    outputs = int(y.max().item()) + 1 if task == "fer" else int(y.shape[1])
    if task == "fer" and ty.numel() and int(ty.max().item()) >= outputs:
        outputs = int(ty.max().item()) + 1
    names = list(class_names) if class_names is not None else [str(i) for i in range(outputs)]
    if len(names) < outputs or (task == "au" and len(names) != outputs):
        raise UserError(f"{len(names)} class names for {outputs} {'classes' if task == 'fer' else 'AUs'}")
    return FaceData(name=name, task=task, class_names=names, train_x=x, train_y=y, test_x=tx, test_y=ty,
                    hflip_ok=hflip_ok)
