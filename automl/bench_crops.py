"""Does ``predict`` crop detected faces the way the model saw its training faces? Measured.

A trained expression model of the synthetic faces is applied to labelled synthetic faces three
ways: the bare tiles (``--no-detect``: exactly the training framing), and the same tiles pasted on
a plain canvas, found by the detector and cropped either as the detector's box plus a 10% margin
or with the training framing (:mod:`automl.face_calibration`: from the model's sidecar, and
measured afresh on rendered training tiles at the model's size). Accuracy against the
generator's labels says which crop the model can read; chance is the largest class's share.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from automl.errors import UserError


def _canvas(tile_bgr: np.ndarray, grey: int) -> np.ndarray:
    side = tile_bgr.shape[0]
    canvas = np.full((3 * side, 3 * side, 3), grey, np.uint8)
    canvas[side : 2 * side, side : 2 * side] = tile_bgr
    return canvas


def crop_bench(model: str | Path, *, n: int = 400, tile: int = 128, seed: int = 5) -> dict[str, Any]:
    """Accuracy of an expression model on ``n`` synthetic faces per crop rule (see the module)."""
    from automl.data.synthface.generate import synth_expressions
    from automl.face_calibration import check_face_crop, crop_calibration
    from automl.face_model import load_face_model
    from automl.face_stream import crop_face
    from automl.face_tracking import photo_faces
    from hashing.stream import FaceDetector

    fm = load_face_model(model, device="cpu")
    if fm.task != "fer" or len(fm.class_names) not in (7, 8):
        raise UserError("the crop check needs an expression model of 7 or 8 classes (one of synth:fer)")
    faces = synth_expressions(n, classes=len(fm.class_names), size=tile, channels=3, seed=seed)
    if [c.lower() for c in faces.class_names] != [c.lower() for c in fm.class_names]:
        synthetic = list(faces.class_names)
        raise UserError(f"the model's classes {fm.class_names} are not the synthetic ones {synthetic}")
    tiles = [np.ascontiguousarray(im.transpose(1, 2, 0)[:, :, ::-1]) for im in faces.images]
    size, ch = fm.image_size, fm.in_channels

    def accuracy(xs: list[np.ndarray], labels: np.ndarray) -> float:
        return float((fm.logits(np.stack(xs)).argmax(1) == labels).mean()) if xs else float("nan")

    bare = accuracy([crop_face(t, None, size, ch) for t in tiles], faces.expression)
    rows = [{"crop": "bare tiles (--no-detect: the training framing)", "faces": n, "accuracy": bare}]
    rng = np.random.default_rng(seed)
    detector = FaceDetector()
    found: list[tuple[np.ndarray, tuple[float, float, float, float], int]] = []
    for t, label in zip(tiles, faces.expression, strict=True):
        canvas = _canvas(t, int(rng.integers(60, 200)))
        got = photo_faces(detector, canvas, None)
        if got:
            found.append((canvas, max(got, key=lambda f: f.box[2] * f.box[3]).box, int(label)))
    labels = np.asarray([f[2] for f in found])
    rules: list[tuple[str, dict[str, Any] | None]] = [("detector box + 10% margin", None)]
    sidecar = check_face_crop(fm.meta.get("face_crop"))
    if sidecar is not None:
        rules.append(("training framing, from the sidecar", sidecar))
    train_tiles = synth_expressions(256, classes=len(fm.class_names), size=size, channels=ch, seed=seed + 1)
    measured = crop_calibration(train_tiles.images, seed=seed)
    if measured is not None:
        rules.append((f"training framing, measured on {size}-px tiles", measured))
    for name, rule in rules:
        xs = [crop_face(c, box, size, ch, face_crop=rule) for c, box, _ in found]
        rows.append({"crop": name, "faces": len(found), "accuracy": accuracy(xs, labels), "face_crop": rule})
    chance = float(np.bincount(labels).max() / len(labels)) if len(labels) else float("nan")
    return {"model": fm.describe(), "n": n, "tile": tile, "detected": len(found), "chance": chance,
            "rows": rows, "seed": seed}  # fmt: skip


def crop_table(report: dict[str, Any]) -> tuple[str, list[str], list[list[str]]]:
    title = (f"expression accuracy by crop: {report['n']} synthetic faces ({report['tile']} px), "
             f"{report['detected']} detected on a canvas; chance {report['chance']:.2f}")  # fmt: skip
    rows = [[r["crop"], str(r["faces"]), f"{r['accuracy']:.3f}"] for r in report["rows"]]
    return title, ["crop", "faces", "accuracy"], rows
