"""Write synthetic faces in the exact on-disk layouts of the real data sets.

Why: none of FER2013, FER+, RAF-DB, AffectNet, BP4D or DISFA can be downloaded here, yet their
readers must be exercised end to end. Each writer renders honestly labelled synthetic faces and
lays them out like the distributed originals (CSV headers, file names, folder trees), so
``automl data synth --format X`` followed by ``--data X:DIR`` runs the real reader.
Every written set carries a ``SYNTHETIC.txt`` note saying what it is.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from automl.atomic import atomic_write, atomic_write_text, check_writable
from automl.data.folds import BP4D_FOLDS, DISFA_FOLDS
from automl.data.readers.affectnet import AFFECTNET_HEADER
from automl.data.readers.fer2013 import FERPLUS_HEADER
from automl.data.synthface.facs import AU_INDEX, CONFUSABLE, FER7, FER8
from automl.data.synthface.generate import SynthSet, synth_clips, synth_expressions

FORMATS = ("fer2013", "ferplus", "rafdb", "affectnet", "bp4d", "disfa", "folder")

# FER8 index (Angry, Disgust, Fear, Happy, Sad, Surprise, Neutral, Contempt) -> FER+ vote column
_FER8_TO_FERPLUS = np.array([4, 5, 6, 1, 3, 2, 0, 7])
# FER7 index -> RAF-DB label 1..7 (the order of readers.rafdb.RAFDB_CLASSES)
_FER7_TO_RAFDB = np.array([6, 3, 2, 4, 5, 1, 7])
# FER8 index -> AffectNet expression (the order of readers.affectnet.AFFECTNET_CLASSES)
_FER8_TO_AFFECTNET = np.array([6, 5, 4, 1, 2, 3, 0, 7])
BP4D_CSV_AUS = tuple(range(1, 28))  # columns 1..27 after the frame column 0
DISFA_FILE_AUS = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)


def _atomic_write_text(path: Path, text: str) -> None:
    atomic_write_text(path, text)


def _save_image(path: Path, chw: np.ndarray, fmt: str = "JPEG") -> None:
    arr = chw[0] if chw.shape[0] == 1 else chw.transpose(1, 2, 0)
    img = Image.fromarray(arr)
    with atomic_write(path) as fh:
        if fmt == "JPEG":
            img.save(fh, format="JPEG", quality=92)
        else:
            img.save(fh, format=fmt)


def _note(out: Path, fmt: str, n: int, seed: int) -> None:
    _atomic_write_text(
        out / "SYNTHETIC.txt",
        f"Synthetic faces (automl synthface), written in the {fmt} layout: {n} samples, seed {seed}.\n"
        "Rendered from FACS action-unit intensities; not real people. Metrics on this data are\n"
        "synthetic and must not be compared with published results on the real data set.\n",
    )


def _usage(subjects: np.ndarray) -> np.ndarray:
    """FER2013-style usage by subject (subject-exclusive): 80 % Training, 10 % each test split."""
    k = subjects % 10
    return np.where(k == 0, "PublicTest", np.where(k == 5, "PrivateTest", "Training"))


def write_fer2013(out: Path, n: int, seed: int) -> dict:
    s = synth_expressions(n, classes=7, size=48, channels=1, seed=seed)
    _write_fer2013_csv(out / "fer2013.csv", s)
    return {"file": str(out / "fer2013.csv"), "rows": n}


def _write_fer2013_csv(path: Path, s: SynthSet) -> None:
    usage = _usage(s.subjects)
    buf = io.StringIO()
    buf.write("emotion,pixels,Usage\n")
    flat = s.images.reshape(len(s.images), -1)
    for lab, pix, use in zip(s.expression, flat, usage, strict=True):
        buf.write(f"{int(lab)},{' '.join(map(str, pix.tolist()))},{use}\n")
    _atomic_write_text(path, buf.getvalue())


def write_ferplus(out: Path, n: int, seed: int) -> dict:
    """fer2013.csv (pixels) + fer2013new.csv (10 crowd votes per row, same row order)."""
    s = synth_expressions(n, classes=8, size=48, channels=1, seed=seed)
    # fer2013.csv has no contempt: its label for contempt rows is Neutral, as a rater might pick
    fer_labels = np.where(s.expression == 7, 6, s.expression)
    _write_fer2013_csv(out / "fer2013.csv", SynthSet(s.images, s.subjects, s.intensity, fer_labels, FER7))
    rng = np.random.default_rng(seed + 1)
    usage = _usage(s.subjects)
    buf = io.StringIO()
    buf.write(",".join(FERPLUS_HEADER) + "\n")
    dropped = 0
    for i, lab in enumerate(s.expression):
        votes = np.zeros(10, np.int64)
        if rng.random() < 0.01:  # a "no face" row: FER+ leaves its image name empty
            votes[9] = 10
            buf.write(f"{usage[i]},," + ",".join(map(str, votes.tolist())) + "\n")
            dropped += 1
            continue
        true = _FER8_TO_FERPLUS[lab]
        other = FER8.index(CONFUSABLE[FER8[lab]][0])
        p = np.full(10, 0.01)
        p[true] += rng.uniform(0.45, 0.85)
        p[_FER8_TO_FERPLUS[other]] += rng.uniform(0.05, 0.3)
        p[8] += 0.03
        votes = rng.multinomial(10, p / p.sum())
        buf.write(f"{usage[i]},fer{i:07d}.png," + ",".join(map(str, votes.tolist())) + "\n")
    _atomic_write_text(out / "fer2013new.csv", buf.getvalue())
    return {"file": str(out / "fer2013new.csv"), "rows": n, "no_face_rows": dropped}


def write_rafdb(out: Path, n: int, seed: int) -> dict:
    """RAF-DB basic: EmoLabel/list_patition_label.txt + Image/aligned/<name>_aligned.jpg (100x100)."""
    s = synth_expressions(n, classes=7, size=100, channels=3, seed=seed)
    test = s.subjects % 5 == 0
    lines, n_tr, n_te = [], 0, 0
    for i in range(n):
        if test[i]:
            n_te += 1
            name = f"test_{n_te:04d}"
        else:
            n_tr += 1
            name = f"train_{n_tr:05d}"
        lines.append(f"{name}.jpg {int(_FER7_TO_RAFDB[s.expression[i]])}\n")
        _save_image(out / "Image" / "aligned" / f"{name}_aligned.jpg", s.images[i])
    _atomic_write_text(out / "EmoLabel" / "list_patition_label.txt", "".join(lines))
    return {"train": n_tr, "test": n_te}


def write_affectnet(out: Path, n: int, seed: int) -> dict:
    """AffectNet: training.csv / validation.csv + Manually_Annotated_Images/<dir>/<hash>.jpg.

    Images are larger than the face and the CSV's face box says where it is; a few rows carry
    the labels the reader must drop (8 None, 9 Uncertain, 10 No-Face).
    """
    s = synth_expressions(n, classes=8, size=112, channels=3, seed=seed)
    rng = np.random.default_rng(seed + 2)
    header = ",".join(AFFECTNET_HEADER) + "\n"
    rows = {"training": [header], "validation": [header]}
    va = {
        0: (0.0, 0.0),
        1: (0.7, 0.4),
        2: (-0.6, -0.3),
        3: (0.2, 0.8),
        4: (-0.5, 0.7),
        5: (-0.6, 0.4),
        6: (-0.5, 0.6),
        7: (-0.3, 0.2),
    }
    counts = {"training": 0, "validation": 0, "dropped": 0}
    for i in range(n):
        split = "validation" if s.subjects[i] % 5 == 0 else "training"
        expr = int(_FER8_TO_AFFECTNET[s.expression[i]])
        if rng.random() < 0.04:
            expr = int(rng.integers(8, 11))
            counts["dropped"] += 1
        else:
            counts[split] += 1
        pad = int(rng.integers(8, 40))
        canvas = np.full((3, 112 + 2 * pad, 112 + 2 * pad), int(rng.integers(0, 255)), np.uint8)
        canvas[:, pad : pad + 112, pad : pad + 112] = s.images[i]
        rel = f"{int(rng.integers(1, 1000))}/{rng.bytes(20).hex()}.jpg"
        _save_image(out / "Manually_Annotated_Images" / rel, canvas)
        lm = _landmarks_68(rng, pad)
        v, a = va[expr] if expr < 8 else (-2.0, -2.0)
        if expr < 8:
            v, a = (
                float(np.clip(v + rng.normal(0, 0.15), -1, 1)),
                float(np.clip(a + rng.normal(0, 0.15), -1, 1)),
            )
        rows[split].append(f"{rel},{pad},{pad},112,112,{lm},{expr},{v:.6f},{a:.6f}\n")
    for split, lines in rows.items():
        _atomic_write_text(out / f"{split}.csv", "".join(lines))
    return counts


def _landmarks_68(rng: np.random.Generator, pad: int) -> str:
    """68 points "x;y;..." around the face box (synthetic; the reader does not use them)."""
    t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    x = pad + 56 + 44 * np.cos(t) + rng.normal(0, 1, 68)
    y = pad + 60 + 50 * np.sin(t) + rng.normal(0, 1, 68)
    return ";".join(f"{a:.2f};{b:.2f}" for a, b in zip(x, y, strict=True))


def _subjects_over_folds(folds, n_subjects: int) -> list[str]:
    """First subjects of each fold in turn, so every CV fold gets test subjects."""
    names: list[str] = []
    k = 0
    while len(names) < n_subjects:
        group = folds[k % 3]
        idx = k // 3
        if idx < len(group):
            names.append(group[idx])
        k += 1
        if k > 3 * max(len(g) for g in folds):
            break
    return names


def write_bp4d(out: Path, n: int, seed: int, frames: int = 12) -> dict:
    """BP4D: AUCoding/AU_OCC/<subject>_<task>.csv (frame column 0, AU columns 1..27, 9 = not
    coded) and frames img/<subject>/<task>/<frame>.jpg. One onset-apex-offset clip per task."""
    n_clips = max(3, -(-n // frames))
    subjects = _subjects_over_folds(BP4D_FOLDS, min(41, max(3, n_clips // 2)))
    # cover=3: the first three subjects are one of each CV fold, so even 3 clips make a readable set
    s = synth_clips(n_clips, frames, size=112, channels=3, seed=seed, n_subjects=len(subjects), cover=3)
    rng = np.random.default_rng(seed + 3)
    peak = s.intensity.max(axis=1)
    task_no: dict[str, int] = {}
    written = 0
    for c in range(n_clips):
        subj = subjects[int(s.subjects[c * frames]) - 1]
        task_no[subj] = task_no.get(subj, 0) + 1
        task = f"T{task_no[subj]}"
        start = int(rng.integers(1, 400))
        lines = ["0," + ",".join(str(a) for a in BP4D_CSV_AUS) + "\n"]
        for f in range(frames):
            i = c * frames + f
            frame = start + f
            occ = [int(peak[i, AU_INDEX[a]] >= 2.0) if a in AU_INDEX else 0 for a in BP4D_CSV_AUS]
            if rng.random() < 0.03:  # an uncoded frame
                occ = [9] * len(occ)
            lines.append(f"{frame}," + ",".join(map(str, occ)) + "\n")
            _save_image(out / "img" / subj / task / f"{frame}.jpg", s.images[i])
            written += 1
        _atomic_write_text(out / "AUCoding" / "AU_OCC" / f"{subj}_{task}.csv", "".join(lines))
    return {"frames": written, "clips": n_clips, "subjects": len(set(task_no))}


def write_disfa(out: Path, n: int, seed: int, frames: int = 12) -> dict:
    """DISFA: ActionUnit_Labels/SNxxx/SNxxx_au<N>.txt ("frame,intensity" 0..5) and frames
    img/SNxxx/<frame>.jpg (DISFA ships videos; frames are what users extract from them)."""
    n_clips = max(3, -(-n // frames))
    subjects = _subjects_over_folds(DISFA_FOLDS, min(27, max(3, n_clips // 2)))
    # cover=3: the first three subjects are one of each CV fold, so even 3 clips make a readable set
    s = synth_clips(n_clips, frames, size=112, channels=3, seed=seed, n_subjects=len(subjects), cover=3)
    inten = s.au_intensity(DISFA_FILE_AUS)
    per_subject: dict[str, list[int]] = {}
    for c in range(n_clips):
        subj = subjects[int(s.subjects[c * frames]) - 1]
        per_subject.setdefault(subj, []).extend(range(c * frames, (c + 1) * frames))
    for subj, rows in per_subject.items():
        for j, a in enumerate(DISFA_FILE_AUS):
            text = "".join(f"{f + 1},{int(inten[i, j])}\n" for f, i in enumerate(rows))
            _atomic_write_text(out / "ActionUnit_Labels" / subj / f"{subj}_au{a}.txt", text)
        for f, i in enumerate(rows):
            _save_image(out / "img" / subj / f"{f + 1}.jpg", s.images[i])
    return {"frames": n_clips * frames, "subjects": len(per_subject)}


def write_folder(out: Path, n: int, seed: int) -> dict:
    """``folder:`` layout: train/<class>/*.png and test/<class>/*.png."""
    s = synth_expressions(n, classes=7, size=64, channels=3, seed=seed)
    test = s.subjects % 5 == 0
    for i in range(n):
        split = "test" if test[i] else "train"
        _save_image(out / split / FER7[s.expression[i]] / f"{i:06d}.png", s.images[i], fmt="PNG")
    return {"train": int((~test).sum()), "test": int(test.sum())}


WRITERS: dict[str, Callable[[Path, int, int], dict]] = {
    "fer2013": write_fer2013,
    "ferplus": write_ferplus,
    "rafdb": write_rafdb,
    "affectnet": write_affectnet,
    "bp4d": write_bp4d,
    "disfa": write_disfa,
    "folder": write_folder,
}


def write_format(fmt: str, out: str | os.PathLike, n: int = 2000, seed: int = 0) -> dict:
    """Write ``n`` synthetic samples in format ``fmt`` under ``out``; returns a summary."""
    from automl.config import check_seed

    if fmt not in WRITERS:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    check_seed(seed)  # before anything is written
    root = Path(out)
    check_writable(root / "SYNTHETIC.txt")  # creates ``root``; unwritable -> ArtifactWriteError
    info = WRITERS[fmt](root, int(n), int(seed))
    _note(root, fmt, int(n), int(seed))
    return {"format": fmt, "out": str(root), **info}


__all__ = ["FORMATS", "WRITERS", "write_format"]
