"""Where the face detector's box falls on a model's training images: the crop ``predict`` must take.

A network learns the framing of its training faces. ``synth:fer`` tiles, RAF-DB's aligned crops
and a user's ``folder:`` photos each frame the face differently, and none of them is "the Haar
box plus 10%". A model trained on synthetic tiles and fed detector crops scored 0.26 accuracy
over 7 classes on detected faces while the same faces as bare tiles scored 0.76 (BENCHMARKS.md,
"predict"): the crop, not the model, was wrong.

So training measures the framing: for a sample of its training images, each is upscaled to
``upscale`` pixels (Haar needs faces of 24 px or more), padded by half its side with its own
edge pixels (the detector needs context), and searched; for every image with a face, the image's
square is written in units of the detector's box: ``dx = -x / w``, ``dy = -y / h`` (where the
image's corner lies from the box's, in box sizes) and ``scale = side / w``. The medians go into
the checkpoint and the export's sidecar as ``face_crop``; ``predict`` then crops
``(x + dx w, y + dy h, scale w, scale h)`` around every detected face. With the synthetic tiles
above this crop scored 0.56 (from 0.26). A training set the detector rarely finds faces in (under
:data:`MIN_FOUND` of the sample) gets no calibration, and ``predict`` falls back to the box plus
a 10% margin.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SAMPLE = 128  # ~0.4 s of detection per training run; the medians settle well before
MIN_FOUND = 0.1
UPSCALE = 128


def crop_calibration(
    images: Any, *, sample: int = SAMPLE, upscale: int = UPSCALE, seed: int = 0
) -> dict[str, Any] | None:
    """The ``face_crop`` record of uint8 ``(N, C, H, W)`` square training images (a tensor or an
    array), or None when OpenCV is missing or faces are found in too few of them."""
    try:
        import cv2

        from hashing.stream import FaceDetector
    except ImportError:  # the 'faces' extra is not installed: predict falls back to the margin
        return None
    x = images.numpy() if hasattr(images, "numpy") else np.asarray(images)
    if x.ndim != 4 or len(x) == 0 or x.shape[1] not in (1, 3):
        return None
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(x), size=min(sample, len(x)), replace=False)
    detector = FaceDetector()
    rel = []
    for i in picked:
        img = x[i].transpose(1, 2, 0)
        bgr = np.repeat(img, 3, axis=2) if img.shape[2] == 1 else np.ascontiguousarray(img[:, :, ::-1])
        h, w = bgr.shape[:2]
        big = cv2.resize(bgr, (upscale, round(upscale * h / w)), interpolation=cv2.INTER_LINEAR)
        pad = upscale // 2
        canvas = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        boxes, _ = detector.scored_boxes(canvas, None)
        if len(boxes) == 0:
            continue
        bx, by, bw, bh = boxes[int(np.argmax(boxes[:, 2] * boxes[:, 3]))]
        rel.append(((pad - bx) / bw, (pad - by) / bh, big.shape[1] / bw))
    found = len(rel)
    if found < max(10, MIN_FOUND * len(picked)):
        return None
    dx, dy, scale = (float(v) for v in np.median(np.asarray(rel), axis=0))
    return {
        "detector": "haar_frontalface_default",
        "dx": round(dx, 4),
        "dy": round(dy, 4),
        "scale": round(scale, 4),
        "found": found,
        "sampled": int(len(picked)),
    }


def calibrated_box(
    box: tuple[float, float, float, float], crop: dict[str, Any]
) -> tuple[float, float, float, float]:
    """The training images' frame around a detected ``(x, y, w, h)``: ``crop_calibration``'s
    offsets and scale applied (may extend past the frame; the crop clips it)."""
    x, y, w, h = box
    return x + crop["dx"] * w, y + crop["dy"] * h, crop["scale"] * w, crop["scale"] * h


def check_face_crop(crop: Any) -> dict[str, Any] | None:
    """A sidecar's ``face_crop`` if it is well formed (finite numbers, a positive scale), else None."""
    if not isinstance(crop, dict):
        return None
    try:
        dx, dy, scale = float(crop["dx"]), float(crop["dy"]), float(crop["scale"])
    except (KeyError, TypeError, ValueError):
        return None
    if not all(np.isfinite([dx, dy, scale])) or not 0.2 < scale < 5.0:
        return None
    return {**crop, "dx": dx, "dy": dy, "scale": scale}
