"""Shared plumbing for file-based readers: a manifest of samples -> a cached, split FaceData.

A reader only has to list its samples (file, label, subject, split or fold); this module applies
``n`` (a seeded subset), decodes through the memory-mapped cache and arranges rows so both splits
are *views* of the cache, never copies: official splits are stored train-then-test; 3-fold CV
sets are stored as blocks ``[fold1, fold2, fold3, fold1]`` so that the training part of every
fold (the two other folds) is one contiguous range.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from automl.data.cache import build_images, cache_dir, cache_key
from automl.data.facedata import FaceData
from automl.data.folds import check_fold
from automl.data.images import check_bad, decode_into
from automl.data.progress import progress_bar
from automl.data.spec import LoadOptions
from automl.errors import UserError


@dataclass
class Manifest:
    """Samples of a file-based data set, in any order."""

    paths: list[str]
    labels: np.ndarray  # (N,) int64 or (N, K) float32
    split: np.ndarray | None = None  # (N,) bool: True = held-out/test (official split)
    fold: np.ndarray | None = None  # (N,) int 1..3 (subject-exclusive CV)
    subjects: np.ndarray | None = None  # (N,) str
    boxes: list | None = None  # optional face boxes (x, y, w, h)
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.paths)


def require_dir(path: str, what: str, hint: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_dir():
        raise UserError(f"{what} folder not found: {path} ({hint})")
    return p


def require_file(path: Path, what: str, hint: str) -> Path:
    if not path.is_file():
        raise UserError(f"{what} not found: {path} ({hint})")
    return path


def not_utf8(path: str | os.PathLike, exc: UnicodeDecodeError) -> UserError:
    """The one-line error for a label file that is not UTF-8 text (e.g. saved as Latin-1)."""
    byte = exc.object[exc.start : exc.start + 1].hex() if isinstance(exc.object, bytes) else "?"
    return UserError(f"{path} must be UTF-8 text (found byte 0x{byte}, {exc.reason}): re-save it as UTF-8")


def utf8_lines(fh: Iterable[str], path: str | os.PathLike) -> Iterator[str]:
    """The lines of ``fh`` (a file opened as UTF-8): a byte that is not UTF-8 is a :class:`UserError`
    naming ``path``, wherever in the file it is (text files decode chunk by chunk while read)."""
    try:
        yield from fh
    except UnicodeDecodeError as exc:
        raise not_utf8(path, exc) from None


def read_utf8(path: Path) -> str:
    """The text of a UTF-8 label file (a leading byte-order mark is dropped)."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise not_utf8(path, exc) from None


def finite(text: str) -> float:
    """``float(text)`` for a label value, refusing ``inf`` / ``nan`` and values beyond a double
    (``1e400``) with ``ValueError``: they are no label, and ``int()`` of them overflows."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {text!r}")
    return value


def subset(man: Manifest, n: int | None, seed: int) -> Manifest:
    """A seeded random subset of ``n`` samples (all when ``n`` is None or larger)."""
    if n is None or n >= len(man):
        return man
    keep = np.sort(np.random.default_rng(seed).choice(len(man), int(n), replace=False))
    return take(man, keep)


def take(man: Manifest, idx: np.ndarray) -> Manifest:
    def pick(a):
        return None if a is None else a[idx]

    return Manifest(
        paths=[man.paths[i] for i in idx],
        labels=man.labels[idx],
        split=pick(man.split),
        fold=pick(man.fold),
        subjects=pick(man.subjects),
        boxes=None if man.boxes is None else [man.boxes[i] for i in idx],
        extra=man.extra,
    )


def _split_layout(
    man: Manifest, fold: int | None
) -> tuple[np.ndarray, tuple[Any, Any], tuple[Any, Any], int]:
    """``(order, train range, test range, unique rows)``: the manifest rows in cache order and
    where each split lies in it, so that each split is one contiguous slice of the cache.

    With folds the blocks are 1, 2, 3 and then block 1 again: the two training folds of any
    choice are then adjacent. Only the first ``unique rows`` are decoded; the repeat is copied.
    """
    if man.fold is not None:
        f = check_fold(fold)
        blocks = [np.flatnonzero(man.fold == k) for k in (1, 2, 3)]
        order = np.concatenate(blocks + [blocks[0]])
        starts = np.cumsum([0] + [len(b) for b in blocks + [blocks[0]]])
        test_range = (starts[f - 1], starts[f])
        # the two other folds, contiguous thanks to the repeated fold-1 block at the end
        train_range = (starts[f], starts[f + 2]) if f < 3 else (0, starts[2])
        return order, train_range, test_range, len(man)  # decode three blocks, copy block 1 to the end
    if man.split is None:
        raise ValueError("manifest needs split or fold")
    tr, te = np.flatnonzero(~man.split), np.flatnonzero(man.split)
    order = np.concatenate([tr, te])
    return order, (0, len(tr)), (len(tr), len(man)), len(man)


def _decoded_images(
    name: str,
    root: str | os.PathLike,
    ordered: Manifest,
    n_rows: int,
    unique_rows: int,
    shape: tuple[int, int, int],
    opts: LoadOptions,
) -> tuple[np.ndarray, np.ndarray, Path]:
    """``(images, ok mask, cache path)``: the cached decode when the cache key (name, size,
    sampling and the ordered paths) matches, else a fresh decode written to the cache."""
    from hashing.image_io import DECODE_VERSION  # lazy: the hashing package imports scipy

    channels, size, _ = shape
    parts = {"name": name, "size": size, "channels": channels, "n": opts.n, "seed": opts.seed}
    # the decode rules are part of the key: a cache of older rules is decoded again
    key = cache_key({**parts, "decode": DECODE_VERSION}, ordered.paths)
    path = cache_dir(root) / f"{name.split(':')[0]}-{key}.npy"

    def fill(out: np.ndarray) -> np.ndarray:
        boxes = None if ordered.boxes is None else ordered.boxes[:unique_rows]
        with progress_bar(f"decoding {name}", unique_rows) as advance:
            ok = decode_into(out[:unique_rows], ordered.paths[:unique_rows], size, channels, boxes, advance)
        if n_rows > unique_rows:  # the repeated fold-1 block
            nb = n_rows - unique_rows
            out[unique_rows:] = out[:nb]
            ok = np.concatenate([ok, ok[:nb]])
        return ok

    images, ok = build_images(path, n_rows, shape, fill)
    return images, ok, path


def _compact_rows(pos: np.ndarray, a: int, b: int) -> tuple[int, int]:
    """Positions ``[a, b)`` of the cache order as rows of the compacted cache (bad images are
    dropped from it, so a range shrinks by the undecodable rows before its end)."""
    lo = int(pos[a - 1] + 1) if a > 0 else 0
    hi = int(pos[b - 1] + 1) if b > 0 else 0
    return lo, hi


def _range_labels(ordered: Manifest, ok: np.ndarray, a: int, b: int) -> tuple[np.ndarray, Any]:
    """Labels and subjects of the decodable rows in positions ``[a, b)``, matching the images."""
    sel = np.arange(a, b)[ok[a:b]]
    return ordered.labels[sel], (None if ordered.subjects is None else ordered.subjects[sel])


def _range_sources(ordered: Manifest, ok: np.ndarray, a: int, b: int) -> list[str]:
    """Absolute paths of the files of the decodable rows in positions ``[a, b)`` (they are not
    in the cache: the manifest lists the files on every load, cached or not)."""
    return [os.path.realpath(ordered.paths[i]) for i in np.arange(a, b)[ok[a:b]]]


def build_facedata(
    name: str,
    task: str,
    class_names: list[str],
    man: Manifest,
    opts: LoadOptions,
    root: str | os.PathLike,
    native_size: int,
    native_channels: int,
    hflip_ok: bool = True,
) -> FaceData:
    """Decode (or reuse the cache of) the manifest's images and split them.

    ``hflip_ok`` goes to :attr:`FaceData.hflip_ok` (the cache holds only pixels, so it is the
    reader's say on every load, cached or not); the absolute path of every row's file goes to
    :attr:`FaceData.train_sources` / ``test_sources``, from the manifest, on every load too."""
    if len(man) == 0:
        raise UserError(f"{name}: no labelled samples found under {root}")
    man = subset(man, opts.n, opts.seed)
    size = int(opts.image_size or native_size)
    channels = int(opts.channels or native_channels)
    order, train_range, test_range, unique_rows = _split_layout(man, opts.fold)
    ordered = take(man, order)
    images, ok, path = _decoded_images(
        name, root, ordered, len(order), unique_rows, (channels, size, size), opts
    )
    check_bad(ok[:unique_rows], ordered.paths[:unique_rows], name)
    # map the ranges (in 'order' positions) to rows of the compacted cache
    pos = np.cumsum(ok) - 1  # row in the compact array for every position that is ok
    (trl, trh), (tel, teh) = _compact_rows(pos, *train_range), _compact_rows(pos, *test_range)
    if trh <= trl or teh <= tel:
        which = "training" if trh <= trl else "held-out"
        raise UserError(
            f"{name}: the {which} split is empty (too few samples: raise n, or a fold without subjects)",
            argument="n",
        )
    y_tr, s_tr = _range_labels(ordered, ok, *train_range)
    y_te, s_te = _range_labels(ordered, ok, *test_range)
    x_all = torch.from_numpy(images)
    return FaceData(
        name=name,
        task=task,
        class_names=class_names,
        train_x=x_all[trl:trh],
        train_y=torch.from_numpy(np.ascontiguousarray(y_tr)),
        test_x=x_all[tel:teh],
        test_y=torch.from_numpy(np.ascontiguousarray(y_te)),
        train_subjects=s_tr,
        test_subjects=s_te,
        meta={"cache": str(path), "fold": opts.fold if man.fold is not None else None, **man.extra},
        hflip_ok=hflip_ok,
        train_sources=_range_sources(ordered, ok, *train_range),
        test_sources=_range_sources(ordered, ok, *test_range),
    )
