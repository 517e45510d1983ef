"""BP4D and DISFA: per-frame AU labels of video sequences, subject-exclusive 3-fold CV.

BP4D: ``AUCoding/AU_OCC/F001_T1.csv`` with column ``0`` = frame and columns ``1``, ``2``, ... = AU
occurrence (0/1, 9 = not coded: such frames are dropped); frames ``img/F001/T1/<frame>.jpg``.
Twelve AUs are used: 1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24.

DISFA: ``ActionUnit_Labels/SN001/SN001_au<N>.txt`` with lines ``frame,intensity`` (0..5); an AU is
present when intensity >= 2. DISFA ships videos; frames are read from ``img/SN001/<frame>.jpg``
(extract them with any tool). Eight AUs: 1, 2, 4, 6, 9, 12, 25, 26.

Frame files are matched by the integer value of their name, so any zero padding works.
"""

from __future__ import annotations

import csv
import re
import warnings
from pathlib import Path

import numpy as np

from automl.data.facedata import FaceData
from automl.data.folds import BP4D_FOLDS, DISFA_FOLDS, assign_folds
from automl.data.images import DataWarning
from automl.data.readers.common import Manifest, build_facedata, finite, read_utf8, require_dir, utf8_lines
from automl.data.spec import LoadOptions
from automl.errors import UserError

BP4D_AUS = (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)
DISFA_AUS = (1, 2, 4, 6, 9, 12, 25, 26)
IMAGE_ROOTS = ("img", "images", "Images")
IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp"}


def frame_files(folder: Path) -> dict[int, str]:
    """Integer frame number -> file path for the images in ``folder``."""
    out: dict[int, str] = {}
    if folder.is_dir():
        for p in folder.iterdir():
            if p.suffix.lower() in IMAGE_EXT and p.stem.isdigit():
                out[int(p.stem)] = str(p)
    return out


def _image_root(root: Path, what: str) -> Path:
    for name in IMAGE_ROOTS:
        if (root / name).is_dir():
            return root / name
    raise UserError(f"{what}: no frame folder under {root} (expected {root / 'img'}/<subject>/...)")


def _warn_missing(what: str, missing: int, total: int) -> None:
    if missing:
        if missing == total:
            raise UserError(
                f"{what}: none of the {total} labelled frames has an image file; check the img/ folder"
            )
        warnings.warn(
            f"{what}: skipped {missing} of {total} labelled frames without an image file",
            DataWarning,
            stacklevel=3,
        )


def _au_columns(header: list[str], path: Path) -> dict[int, int]:
    cols: dict[int, int] = {}
    for j, h in enumerate(header):
        m = re.fullmatch(r"\s*(?:AU)?0*(\d+)\s*", h, flags=re.IGNORECASE)
        if m:
            cols[int(m.group(1))] = j
    if 0 not in cols and header and header[0].strip() != "0":
        raise UserError(f"{path}: first column must be the frame number '0' (BP4D AU_OCC layout)")
    missing = [a for a in BP4D_AUS if a not in cols]
    if missing:
        raise UserError(
            f"{path}: no AU column(s) {', '.join(map(str, missing))}; a BP4D AU_OCC CSV needs "
            "columns 0 (frame) and 1,2,4,6,7,10,12,14,15,17,23,24"
        )
    return cols


def load_bp4d(path: str, opts: LoadOptions) -> FaceData:
    root = require_dir(path, "BP4D", "give bp4d:/root holding AUCoding/AU_OCC/ and img/")
    occ_dir = root / "AUCoding" / "AU_OCC"
    if not occ_dir.is_dir():
        raise UserError(
            f"BP4D label folder not found: {occ_dir} (expected AUCoding/AU_OCC/<subject>_<task>.csv)"
        )
    csvs = sorted(occ_dir.glob("*.csv"))
    if not csvs:
        raise UserError(f"no BP4D label CSVs in {occ_dir}")
    img_root = _image_root(root, "BP4D")
    paths, labels, subjects = [], [], []
    missing = total = uncoded = 0
    for f in csvs:
        m = re.fullmatch(r"([FM]\d{3})_(T\d+)", f.stem)
        if not m:
            raise UserError(f"{f}: file name must be <subject>_<task>.csv like F001_T1.csv")
        subj, task = m.groups()
        frames = frame_files(img_root / subj / task)
        with open(f, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(utf8_lines(fh, f))
            header = next(reader, None) or []
            cols = _au_columns(header, f)
            idx = [cols[a] for a in BP4D_AUS]
            for lineno, row in enumerate(reader, start=2):
                if not row:
                    continue
                try:
                    frame = int(finite(row[0]))
                    vals = [int(finite(row[j])) for j in idx]
                except (ValueError, IndexError):
                    raise UserError(f"{f}:{lineno}: frame and AU values must be integers") from None
                if 9 in vals:
                    uncoded += 1
                    continue
                total += 1
                p = frames.get(frame)
                if p is None:
                    missing += 1
                    continue
                paths.append(p)
                labels.append([1.0 if v > 0 else 0.0 for v in vals])
                subjects.append(subj)
    _warn_missing("bp4d", missing, total)
    return _finish(
        "bp4d", BP4D_AUS, BP4D_FOLDS, paths, labels, subjects, opts, root, {"uncoded_frames": uncoded}
    )


def load_disfa(path: str, opts: LoadOptions) -> FaceData:
    root = require_dir(path, "DISFA", "give disfa:/root holding ActionUnit_Labels/ and img/")
    lab_dir = root / "ActionUnit_Labels"
    if not lab_dir.is_dir():
        raise UserError(
            f"DISFA label folder not found: {lab_dir} (expected ActionUnit_Labels/SN001/SN001_au1.txt)"
        )
    subjects_dirs = sorted(p for p in lab_dir.iterdir() if p.is_dir() and re.fullmatch(r"SN\d{3}", p.name))
    if not subjects_dirs:
        raise UserError(f"no DISFA subject folders (SN001, ...) in {lab_dir}")
    img_root = _image_root(root, "DISFA")
    paths, labels, subjects = [], [], []
    missing = total = 0
    for sdir in subjects_dirs:
        subj = sdir.name
        per_au: list[dict[int, int]] = []
        for a in DISFA_AUS:
            fp = sdir / f"{subj}_au{a}.txt"
            if not fp.is_file():
                raise UserError(
                    f"DISFA label file missing: {fp} "
                    f"(every subject needs {subj}_au<N>.txt for AUs 1,2,4,6,9,12,25,26)"
                )
            table: dict[int, int] = {}
            for lineno, line in enumerate(read_utf8(fp).splitlines(), start=1):
                if not line.strip():
                    continue
                parts = line.replace(" ", "").split(",")
                try:
                    table[int(parts[0])] = int(finite(parts[1]))
                except (ValueError, IndexError):
                    raise UserError(
                        f"{fp}:{lineno}: expected 'frame,intensity', got {line.strip()!r}"
                    ) from None
            per_au.append(table)
        frames = frame_files(img_root / subj)
        common = sorted(set(per_au[0]).intersection(*per_au[1:]))
        for fr in common:
            total += 1
            p = frames.get(fr)
            if p is None:
                missing += 1
                continue
            paths.append(p)
            labels.append([1.0 if t[fr] >= 2 else 0.0 for t in per_au])
            subjects.append(subj)
    _warn_missing("disfa", missing, total)
    return _finish("disfa", DISFA_AUS, DISFA_FOLDS, paths, labels, subjects, opts, root, {})


def _finish(name, aus, folds, paths, labels, subjects, opts, root, extra) -> FaceData:
    if not paths:
        raise UserError(f"{name}: no usable labelled frames under {root}")
    subj = np.asarray(subjects)
    table = assign_folds(list(set(subjects)), folds)
    fold = np.array([table[s] for s in subjects], np.int64)
    if len(set(fold.tolist())) < 3:
        raise UserError(
            f"{name}: subjects cover only fold(s) {sorted(set(fold.tolist()))}; "
            "3-fold CV needs subjects from all three"
        )
    man = Manifest(paths=paths, labels=np.asarray(labels, np.float32), fold=fold, subjects=subj, extra=extra)
    return build_facedata(
        name, "au", [f"AU{a}" for a in aus], man, opts, root, native_size=112, native_channels=3
    )
