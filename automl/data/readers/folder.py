"""``folder:/root``: one sub-folder per class (images inside), optional ``train/`` + ``test/``.

With ``train/`` and ``test/`` (or ``val/``) sub-folders the split is theirs; otherwise a seeded,
stratified 80/20 split is drawn. The images may be anything, so ``hflip_ok`` is False: training
does not mirror them unless ``augment.flip = true``. Corrupt images are skipped with a warning and
a count; more than 5 % bad images is an error. Images decode by the shared rules of
:mod:`hashing.image_io` (EXIF orientation, 16 bits scaled, centre square, bilinear), and every
row keeps its file's absolute path (:attr:`FaceData.train_sources` / ``test_sources``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from automl.data.facedata import FaceData
from automl.data.readers.common import Manifest, build_facedata, require_dir
from automl.data.spec import LoadOptions
from automl.errors import UserError

IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm", ".ppm"}


def _class_files(folder: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for d in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(str(f) for f in d.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXT)
        if files:
            out[d.name] = files
    return out


def load_folder(path: str, opts: LoadOptions) -> FaceData:
    root = require_dir(path, "image", "give folder:/root with one sub-folder of images per class")
    test_dir = next((root / n for n in ("test", "val") if (root / n).is_dir()), None)
    if (root / "train").is_dir() and test_dir is not None:
        tr, te = _class_files(root / "train"), _class_files(test_dir)
        classes = sorted(set(tr) | set(te))
        paths = [f for c in classes for f in tr.get(c, [])] + [f for c in classes for f in te.get(c, [])]
        labels = [i for i, c in enumerate(classes) for _ in tr.get(c, [])] + [
            i for i, c in enumerate(classes) for _ in te.get(c, [])
        ]
        n_tr = sum(len(v) for v in tr.values())
        split = np.arange(len(paths)) >= n_tr
    else:
        per = _class_files(root)
        classes = sorted(per)
        paths = [f for c in classes for f in per[c]]
        labels = [i for i, c in enumerate(classes) for _ in per[c]]
        rng = np.random.default_rng(opts.seed)
        split = np.zeros(len(paths), bool)
        start = 0
        for c in classes:  # stratified: 20 % of every class
            k = len(per[c])
            pick = rng.permutation(k)[: max(1, k // 5)] if k > 1 else []
            split[start + np.asarray(pick, dtype=np.int64)] = True
            start += k
    if len(classes) < 2:
        raise UserError(
            f"{root}: found {len(classes)} class folder(s) with images; "
            "need at least 2 (one sub-folder per class)"
        )
    man = Manifest(paths=paths, labels=np.asarray(labels, np.int64), split=split)
    # unknown content: digits and text change meaning when mirrored (augment.flip = true overrides)
    return build_facedata(
        "folder", "fer", classes, man, opts, root, native_size=64, native_channels=3, hflip_ok=False
    )
