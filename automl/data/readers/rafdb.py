"""RAF-DB basic emotions: ``EmoLabel/list_patition_label.txt`` + ``Image/aligned/*_aligned.jpg``.

Label file lines are ``train_00001.jpg 5`` / ``test_0001.jpg 3`` with labels 1..7 = Surprise, Fear,
Disgust, Happiness, Sadness, Anger, Neutral; the name prefix gives the official split. Aligned
faces are 100x100 RGB (the native size here).
"""

from __future__ import annotations

import numpy as np

from automl.data.facedata import FaceData
from automl.data.readers.common import Manifest, build_facedata, read_utf8, require_dir, require_file
from automl.data.spec import LoadOptions
from automl.errors import UserError

RAFDB_CLASSES = ["Surprise", "Fear", "Disgust", "Happiness", "Sadness", "Anger", "Neutral"]


def load_rafdb(path: str, opts: LoadOptions) -> FaceData:
    root = require_dir(path, "RAF-DB", "give rafdb:/root holding EmoLabel/ and Image/aligned/")
    labels_file = require_file(
        root / "EmoLabel" / "list_patition_label.txt",
        "RAF-DB label list",
        "expected EmoLabel/list_patition_label.txt",
    )
    image_dir = root / "Image" / "aligned"
    paths, labels, test = [], [], []
    for lineno, line in enumerate(read_utf8(labels_file).splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit() or not 1 <= int(parts[1]) <= 7:
            raise UserError(
                f"{labels_file}:{lineno}: expected 'name.jpg LABEL' with LABEL 1..7, got {line.strip()!r}"
            )
        name = parts[0]
        if not (name.startswith("train_") or name.startswith("test_")):
            raise UserError(f"{labels_file}:{lineno}: image name {name!r} must start with train_ or test_")
        stem = name.rsplit(".", 1)[0]
        paths.append(str(image_dir / f"{stem}_aligned.jpg"))
        labels.append(int(parts[1]) - 1)
        test.append(name.startswith("test_"))
    man = Manifest(paths=paths, labels=np.asarray(labels, np.int64), split=np.asarray(test, bool))
    return build_facedata("rafdb", "fer", RAFDB_CLASSES, man, opts, root, native_size=100, native_channels=3)
