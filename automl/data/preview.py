"""A labelled image grid of a data set, so people can look at their data before a search."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from automl.atomic import atomic_write, check_writable
from automl.data.facedata import FaceData
from automl.errors import UserError


def label_text(data: FaceData, y) -> str:
    """Readable label: class name (fer), active AU names (au), or top class (probabilities)."""
    arr = np.asarray(y)
    if data.task == "au":
        on = [n for n, v in zip(data.class_names, arr.tolist(), strict=True) if v > 0.5]
        return "+".join(a.replace("AU", "") for a in on) if on else "none"
    if arr.ndim == 1 and arr.size > 1:  # probability target
        k = int(arr.argmax())
        return f"{data.class_names[k]} {arr[k]:.0%}"
    return data.class_names[int(arr)]


MAX_GRID_FACES = 10_000
"""The most faces one grid shows (100 x 100 tiles of 96 px: a 9600 px wide image)."""


def check_grid_faces(n: int) -> int:
    """``n`` when a grid can show that many faces (1..MAX_GRID_FACES), else a :class:`UserError`."""
    if not 1 <= n <= MAX_GRID_FACES:
        raise UserError(f"a preview grid shows 1 to {MAX_GRID_FACES:,} faces, not {n:,}")
    return n


def make_grid(
    data: FaceData, n: int = 64, split: str = "train", tile: int = 96, seed: int = 0
) -> Image.Image:
    """Up to ``n`` random faces of ``split`` as a grid of ``tile``-pixel tiles with captions."""
    check_grid_faces(n)
    x, y = (data.train_x, data.train_y) if split == "train" else (data.test_x, data.test_y)
    count = min(n, len(x))
    idx = (
        np.sort(np.random.default_rng(seed).choice(len(x), count, replace=False))
        if count
        else np.array([], int)
    )
    cols = max(1, int(np.ceil(np.sqrt(count)))) if count else 1
    rows = max(1, int(np.ceil(count / cols)))
    cap = 14
    grid = Image.new("RGB", (cols * tile, rows * (tile + cap)), (24, 24, 24))
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default()
    for k, i in enumerate(idx):
        arr = x[int(i)].numpy()
        img = Image.fromarray(arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)).convert("RGB")
        img = img.resize((tile, tile), Image.NEAREST if arr.shape[-1] < tile else Image.BILINEAR)
        r, c = divmod(k, cols)
        grid.paste(img, (c * tile, r * (tile + cap)))
        text = label_text(data, y[int(i)])[: max(4, tile // 6)]
        draw.text((c * tile + 2, r * (tile + cap) + tile + 1), text, fill=(230, 230, 230), font=font)
    return grid


def save_grid(data: FaceData, out: str | os.PathLike, **kwargs) -> Path:
    """Write the grid with :func:`automl.atomic.atomic_write`; the format follows the suffix."""
    path = check_writable(out)
    img = make_grid(data, **kwargs)
    with atomic_write(path) as fh:
        img.save(fh, format=(path.suffix.lstrip(".") or "png").upper().replace("JPG", "JPEG"))
    return path
