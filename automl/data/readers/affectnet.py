"""AffectNet (manually annotated): ``training.csv`` / ``validation.csv`` + image folders.

Columns ``subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,
valence,arousal``; expression 0..10 = Neutral, Happy, Sad, Surprise, Fear, Disgust, Anger,
Contempt, None, Uncertain, No-Face. 8 (None), 9 (Uncertain) and 10 (No-Face) are dropped; the
7-class mode (``affectnet:/root?classes=7``, the default) drops Contempt too. Validation is the
test split (AffectNet's test set is not public). Faces are cropped with the CSV's face box.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from automl.data.facedata import FaceData
from automl.data.readers.common import (
    Manifest,
    build_facedata,
    finite,
    require_dir,
    require_file,
    utf8_lines,
)
from automl.data.spec import LoadOptions
from automl.errors import UserError

AFFECTNET_CLASSES = ["Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt"]
AFFECTNET_HEADER = [
    "subDirectory_filePath",
    "face_x",
    "face_y",
    "face_width",
    "face_height",
    "facial_landmarks",
    "expression",
    "valence",
    "arousal",
]
IMAGE_DIRS = ("Manually_Annotated_Images", "Manually_Annotated/Manually_Annotated_Images", ".")


def _rows(csv_path: Path, image_dir: Path, classes: int) -> tuple[list[str], list, list[int]]:
    paths, boxes, labels = [], [], []
    with open(csv_path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(utf8_lines(fh, csv_path))
        header = next(reader, None)
        if header is None or [h.strip() for h in header] != AFFECTNET_HEADER:
            raise UserError(f"{csv_path}: header must be '{','.join(AFFECTNET_HEADER)}' (AffectNet CSV)")
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(AFFECTNET_HEADER):
                raise UserError(
                    f"{csv_path}:{lineno}: expected {len(AFFECTNET_HEADER)} fields, found {len(row)}"
                )
            try:
                expr = int(row[6])
                box = tuple(finite(v) for v in row[1:5])
            except ValueError:
                raise UserError(
                    f"{csv_path}:{lineno}: face box and expression must be finite numbers"
                ) from None
            if not 0 <= expr <= 10:
                raise UserError(f"{csv_path}:{lineno}: expression {expr} is outside 0..10")
            if expr >= classes:  # None / Uncertain / No-Face (and Contempt in 7-class mode)
                continue
            paths.append(str(image_dir / row[0]))
            boxes.append(box)
            labels.append(expr)
    return paths, boxes, labels


def load_affectnet(path: str, opts: LoadOptions) -> FaceData:
    raw, _, query = path.partition("?")
    classes = 7
    for item in filter(None, query.split("&")):
        k, _, val = item.partition("=")
        if k != "classes" or val not in ("7", "8"):
            raise UserError(f"affectnet option {item!r} not understood: use ?classes=7 or ?classes=8")
        classes = int(val)
    root = require_dir(raw, "AffectNet", "give affectnet:/root holding training.csv and validation.csv")
    train_csv = require_file(root / "training.csv", "AffectNet training.csv", "expected ROOT/training.csv")
    val_csv = require_file(
        root / "validation.csv", "AffectNet validation.csv", "expected ROOT/validation.csv"
    )
    image_dir = next((root / d for d in IMAGE_DIRS if (root / d).is_dir() and d != "."), root)
    p_tr, b_tr, y_tr = _rows(train_csv, image_dir, classes)
    p_te, b_te, y_te = _rows(val_csv, image_dir, classes)
    man = Manifest(
        paths=p_tr + p_te,
        labels=np.asarray(y_tr + y_te, np.int64),
        split=np.asarray([False] * len(p_tr) + [True] * len(p_te)),
        boxes=b_tr + b_te,
        extra={"classes": classes},
    )
    return build_facedata(
        f"affectnet{classes}",
        "fer",
        AFFECTNET_CLASSES[:classes],
        man,
        opts,
        root,
        native_size=112,
        native_channels=3,
    )
