"""FER2013 (``fer2013.csv``) and FER+ (``fer2013new.csv`` votes over the same rows).

fer2013.csv: header ``emotion,pixels,Usage``; 48x48 grey as 2304 space-separated ints; Usage
Training / PublicTest / PrivateTest. We train on Training, test on PrivateTest (the number
papers report) and keep PublicTest as validation in ``meta["val_x"/"val_y"]``.

FER+: ``Usage,Image name,neutral,...,contempt,unknown,NF`` with 10 votes per row in the same row
order as fer2013.csv; rows with an empty image name are dropped. Two target modes: majority
(a class needs more than half of the votes left after dropping single-vote outliers) and
probability (the vote distribution over the 8 emotions); rows whose votes go mostly to
unknown/NF are dropped in both modes.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import torch

from automl.data.cache import cache_dir, cache_key, open_mmap, save_atomic
from automl.data.facedata import FaceData
from automl.data.images import DataWarning
from automl.data.readers.common import require_file, utf8_lines
from automl.data.spec import LoadOptions
from automl.errors import UserError

FER2013_CLASSES = ["Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"]
FER2013_HEADER = ["emotion", "pixels", "Usage"]
USAGES = ("Training", "PublicTest", "PrivateTest")
FERPLUS_HEADER = [
    "Usage",
    "Image name",
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
]
FERPLUS_CLASSES = ["Neutral", "Happiness", "Surprise", "Sadness", "Anger", "Disgust", "Fear", "Contempt"]


def parse_fer2013(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(images uint8 (N,1,48,48), labels int64 (N,), usage str (N,))``, validated row by row."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(utf8_lines(fh, path))
        header = next(reader, None)
        if header is None or [h.strip() for h in header] != FER2013_HEADER:
            raise UserError(
                f"{path}: header is {','.join(header or [])!r}, "
                "expected 'emotion,pixels,Usage' (the Kaggle fer2013.csv)"
            )
        images, labels, usage = [], [], []
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != 3:
                raise UserError(
                    f"{path}:{lineno}: expected 3 fields (emotion,pixels,Usage), found {len(row)}"
                )
            try:
                lab = int(row[0])
                pix = np.array(row[1].split(), dtype=np.int64)
            except OverflowError:  # a pixel beyond int64 (99999999999999999999)
                raise UserError(f"{path}:{lineno}: pixel values must be 0..255") from None
            except ValueError:
                raise UserError(f"{path}:{lineno}: emotion and pixels must be integers") from None
            if pix.size != 48 * 48:
                raise UserError(f"{path}:{lineno}: pixels has {pix.size} values, expected 2304 (48x48 grey)")
            if not 0 <= lab <= 6:
                raise UserError(f"{path}:{lineno}: emotion {lab} is outside 0..6")
            if pix.min() < 0 or pix.max() > 255:
                raise UserError(f"{path}:{lineno}: pixel values must be 0..255")
            use = row[2].strip()
            if use not in USAGES:
                raise UserError(f"{path}:{lineno}: Usage {use!r} is not one of {', '.join(USAGES)}")
            images.append(pix.astype(np.uint8))
            labels.append(lab)
            usage.append(use)
    if not images:
        raise UserError(f"{path}: no data rows")
    return np.stack(images).reshape(-1, 1, 48, 48), np.asarray(labels, np.int64), np.asarray(usage)


def cached_fer2013(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse once (several seconds for the real 35,887 rows), then memory-map the cache."""
    d = cache_dir(path)
    key = cache_key({"kind": "fer2013"}, [path])
    img_p, lab_p, use_p = (d / f"fer2013-{key}.{s}.npy" for s in ("img", "lab", "use"))
    if img_p.exists() and lab_p.exists() and use_p.exists():
        use = np.load(use_p, allow_pickle=False)
        return open_mmap(img_p), np.load(lab_p, allow_pickle=False), np.asarray(USAGES)[use]
    images, labels, usage = parse_fer2013(path)
    save_atomic(lab_p, labels)
    save_atomic(use_p, np.array([USAGES.index(u) for u in usage], np.int8))
    save_atomic(img_p, images)
    return open_mmap(img_p), labels, usage


def _resize(x: np.ndarray, size: int | None, channels: int | None) -> torch.Tensor:
    """Grey 48x48 -> requested size/channels (bilinear), uint8."""
    t = torch.from_numpy(np.ascontiguousarray(x))
    if size and size != t.shape[-1]:
        t = torch.nn.functional.interpolate(
            t.float(), size=(size, size), mode="bilinear", align_corners=False
        )
        t = t.round().clamp(0, 255).to(torch.uint8)
    if channels == 3:
        t = t.expand(-1, 3, -1, -1).contiguous()
    return t


def _select(n_total: int, n: int | None, seed: int) -> np.ndarray:
    if n is None or n >= n_total:
        return np.arange(n_total)
    return np.sort(np.random.default_rng(seed).choice(n_total, n, replace=False))


def _build(name, classes, x, y, usage, opts: LoadOptions, extra_meta=None) -> FaceData:
    keep = _select(len(y), opts.n, opts.seed)
    x, y, usage = x, y[keep], usage[keep]
    parts = {}
    for split in USAGES:
        idx = keep[usage == split]
        parts[split] = (
            _resize(x[idx], opts.image_size, opts.channels),
            torch.from_numpy(np.ascontiguousarray(y[usage == split])),
        )
    tr, va, te = parts["Training"], parts["PublicTest"], parts["PrivateTest"]
    if len(tr[1]) == 0 or len(te[1]) == 0:
        raise UserError(
            f"{name}: needs both Training and PrivateTest rows (found {len(tr[1])} and {len(te[1])})"
        )
    return FaceData(
        name=name,
        task="fer",
        class_names=list(classes),
        train_x=tr[0],
        train_y=tr[1],
        test_x=te[0],
        test_y=te[1],
        meta={
            "val_x": va[0],
            "val_y": va[1],
            "val_split": "PublicTest",
            "test_split": "PrivateTest",
            **(extra_meta or {}),
        },
    )


def load_fer2013(path: str, opts: LoadOptions) -> FaceData:
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / "fer2013.csv"
    require_file(p, "fer2013.csv", "give fer2013:/path/to/fer2013.csv")
    x, y, usage = cached_fer2013(p)
    return _build("fer2013", FER2013_CLASSES, x, y, usage, opts)


def parse_ferplus_votes(path: Path, n_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(votes int (N,10), has_image bool (N,), usage str (N,))`` in fer2013.csv row order."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(utf8_lines(fh, path))
        header = next(reader, None)
        if header is None or [h.strip() for h in header] != FERPLUS_HEADER:
            raise UserError(f"{path}: header must be '{','.join(FERPLUS_HEADER)}' (FER+ fer2013new.csv)")
        votes, has_img, usage = [], [], []
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != 12:
                raise UserError(f"{path}:{lineno}: expected 12 fields, found {len(row)}")
            try:
                votes.append([int(v) for v in row[2:]])
            except ValueError:
                raise UserError(f"{path}:{lineno}: vote counts must be integers") from None
            has_img.append(bool(row[1].strip()))
            usage.append(row[0].strip())
    if len(votes) != n_rows:
        raise UserError(
            f"{path}: {len(votes)} rows but fer2013.csv has {n_rows}; both files must have the same rows"
        )
    return np.asarray(votes, np.int64), np.asarray(has_img), np.asarray(usage)


def ferplus_targets(votes: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Targets from raw votes (N, 10) -> ``(targets, keep)``.

    Single votes are treated as outliers and removed first. ``majority``: int64 class when one
    emotion has more than half of the remaining votes; ``probability``: float32 rows over the 8
    emotions. Rows are dropped (``keep`` False) when unknown/NF hold the most votes or, in
    majority mode, when no class has a majority.
    """
    v = votes.astype(np.float64).copy()
    v[v <= 1] = 0.0
    total = v.sum(axis=1)
    top = v.argmax(axis=1)
    keep = (total > 0) & (top < 8)
    if mode == "majority":
        keep &= v.max(axis=1) > 0.5 * total
        return top.astype(np.int64), keep
    emo = v[:, :8]
    s = emo.sum(axis=1, keepdims=True)
    keep &= s[:, 0] > 0
    return (emo / np.maximum(s, 1e-9)).astype(np.float32), keep


def load_ferplus(path: str, opts: LoadOptions) -> FaceData:
    raw, _, query = path.partition("?")
    mode = "majority"
    for item in filter(None, query.split("&")):
        k, _, val = item.partition("=")
        if k != "mode" or val not in ("majority", "probability"):
            raise UserError(
                f"ferplus option {item!r} not understood: use ?mode=majority or ?mode=probability"
            )
        mode = val
    root = Path(raw).expanduser()
    new = root / "fer2013new.csv" if root.is_dir() else root
    require_file(new, "fer2013new.csv", "give ferplus:/dir holding fer2013new.csv and fer2013.csv")
    old = next(
        (c for c in (new.parent / "fer2013.csv", new.parent.parent / "fer2013.csv") if c.is_file()), None
    )
    if old is None:
        raise UserError(
            f"fer2013.csv not found beside {new}: FER+ labels need the FER2013 pixels (same row order)"
        )
    x, _, usage_old = cached_fer2013(old)
    votes, has_img, usage = parse_ferplus_votes(new, len(usage_old))
    y, keep = ferplus_targets(votes, mode)
    keep &= has_img
    dropped = int((~keep).sum())
    if dropped:
        warnings.warn(
            f"ferplus: dropped {dropped} rows (no image name, or no clear label in {mode} mode)",
            DataWarning,
            stacklevel=2,
        )
    idx = np.flatnonzero(keep)
    data = _build(
        "ferplus",
        FERPLUS_CLASSES,
        _Rows(x, idx),
        y[idx],
        usage[idx],
        opts,
        {"mode": mode, "dropped": dropped},
    )
    return data


class _Rows:
    """A row selection of a (memory-mapped) array without copying it first."""

    def __init__(self, base: np.ndarray, idx: np.ndarray) -> None:
        self.base, self.idx = base, idx

    def __getitem__(self, i):
        return self.base[self.idx[i]]

    def __len__(self) -> int:
        return len(self.idx)
