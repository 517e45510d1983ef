"""Drawn faces and tiny videos for the detection, prediction and index tests.

``draw_face`` is a cartoon face OpenCV's Haar cascade detects reliably (at ``size=120`` the image is
240x240; two side by side are both detected). The video writers use MJPG in ``.avi``, which this
OpenCV build writes and reads back frame-exactly.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

FPS = 10.0
CANVAS = (640, 300)  # (width, height) of the two-face videos


def draw_face(size: int = 160, mouth: int = 0, shade: int = 0) -> np.ndarray:
    """A cartoon face OpenCV's Haar cascade detects (eyes, brows, nose, mouth on a skin ellipse)."""
    img = np.full((size * 2, size * 2, 3), 200, np.uint8)
    c = size
    cv2.ellipse(
        img, (c, c), (int(size * 0.38), int(size * 0.5)), 0, 0, 360, (140 + shade, 170 + shade, 210), -1
    )
    for dx in (-1, 1):
        ex, ey = c + dx * int(size * 0.16), c - int(size * 0.1)
        cv2.ellipse(img, (ex, ey), (int(size * 0.08), int(size * 0.04)), 0, 0, 360, (255, 255, 255), -1)
        cv2.circle(img, (ex, ey), int(size * 0.035), (30, 30, 30), -1)
        brow = (ex - int(size * 0.1), ey - int(size * 0.09)), (ex + int(size * 0.1), ey - int(size * 0.1))
        cv2.line(img, *brow, (40, 40, 60), int(size * 0.03))
    cv2.line(img, (c, c - int(size * 0.05)), (c, c + int(size * 0.12)), (110, 130, 170), int(size * 0.03))
    cv2.ellipse(
        img,
        (c, c + int(size * 0.25)),
        (int(size * 0.14), int(size * 0.03 + 0.03 * mouth * size / 10)),
        0,
        0,
        360,
        (60, 60, 150),
        -1,
    )
    return cv2.GaussianBlur(img, (5, 5), 0)


def write_video(path: Path, frames: Iterable[np.ndarray], fps: float = FPS) -> Path:
    """An MJPG ``.avi`` of BGR uint8 frames (all of one size); no frames: a 0-frame file."""
    frames = list(frames)
    h, w = frames[0].shape[:2] if frames else (64, 64)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened(), f"OpenCV cannot write MJPG to {path}"
    for f in frames:
        writer.write(np.ascontiguousarray(f))
    writer.release()
    return path


def empty_video(path: Path, size: tuple[int, int] = (64, 64), fps: float = FPS) -> Path:
    """A video file whose writer was opened and released without a frame."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    writer.release()
    return path


def numbered_frames(n: int, size: tuple[int, int] = (64, 48)) -> list[np.ndarray]:
    """``n`` frames whose brightness encodes their 1-based number (10, 20, ...: JPEG-safe)."""
    w, h = size
    return [np.full((h, w, 3), min(10 * (i + 1), 250), np.uint8) for i in range(n)]


def frame_number(bgr: np.ndarray) -> int:
    """The 1-based number of a :func:`numbered_frames` frame after decoding."""
    return int(round(float(bgr.mean()) / 10.0))


def two_faces_frames(n: int = 12, step: int = 2, mouths: Sequence[int] = (0, 3)) -> list[np.ndarray]:
    """``n`` frames of a 640x300 canvas: two 240x240 drawn faces, the left one moving right and the
    right one moving left by ``step`` pixels a frame (they never overlap). The defaults are detected
    in every frame of the MJPG file (a wider mouth is missed at some offsets)."""
    w, h = CANVAS
    left, right = draw_face(120, mouth=mouths[0]), draw_face(120, mouth=mouths[1])
    out = []
    for i in range(n):
        canvas = np.full((h, w, 3), 200, np.uint8)
        x1, x2 = 20 + step * i, 380 - step * i
        canvas[30:270, x1 : x1 + 240] = left
        canvas[30:270, x2 : x2 + 240] = right
        out.append(canvas)
    return out


def blank_frames(n: int = 8, size: tuple[int, int] = (320, 240)) -> list[np.ndarray]:
    """Frames without a face (a grey gradient)."""
    w, h = size
    ramp = np.linspace(60, 180, w, dtype=np.float32)[None, :, None]
    return [np.broadcast_to(ramp + i, (h, w, 3)).astype(np.uint8) for i in range(n)]


def two_faces_photo() -> np.ndarray:
    """One 480x240 photo of two drawn faces side by side."""
    return np.concatenate([draw_face(120), draw_face(120, mouth=3)], axis=1)


# -- tiny models beyond tests.tiny_embedder ----------------------------------------------------


class TinyNet(torch.nn.Module):
    """The export contract (forward -> logits, exported ``embed``) for any channels / outputs."""

    def __init__(self, in_channels: int = 1, outputs: int = 3, dim: int = 16) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(in_channels, 4, 3, padding=1)
        self.pool = torch.nn.AdaptiveAvgPool2d(4)
        self.fc = torch.nn.Linear(64, dim)
        self.head = torch.nn.Linear(dim, outputs)

    @torch.jit.export
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(torch.relu(self.conv(x))).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


def write_tiny_model(
    path: Path,
    *,
    in_channels: int = 1,
    image_size: int = 32,
    task: str = "fer",
    class_names: Sequence[str] = ("happy", "sad", "surprise"),
    seed: int = 0,
    head_scale: float = 1.0,
    extra: dict | None = None,
) -> Path:
    """A scripted :class:`TinyNet` at ``path`` and its sidecar ``<path>.json``; ``head_scale``
    multiplies the head's weights (large values spread the predictions over classes / AUs)."""
    torch.manual_seed(seed)
    net = TinyNet(in_channels, len(class_names))
    with torch.no_grad():
        net.head.weight.mul_(head_scale)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(net).save(str(path))
    side = {"in_channels": in_channels, "image_size": image_size, "task": task,
            "class_names": list(class_names), "embedding_dim": 16, **(extra or {})}  # fmt: skip
    path.with_name(path.name + ".json").write_text(json.dumps(side))
    return path
