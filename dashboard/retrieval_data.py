"""What the Retrieval page needs from a saved index, kept out of the page for testing.

An index directory is ``hashing.index.HashIndex``'s format (``manifest.json`` + ``.npy`` parts,
loaded without pickles). Queries come from an item of the index (its stored embedding) or from an
uploaded image embedded with the index's TorchScript model (``hashing.stream``), whose path the
index records in its ``extra`` metadata. Relevance follows the retrieval metrics: same class, or
at least one shared label for multi-label (AU) data.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hashing.index import MANIFEST, HashIndex

VERIFY_LIMIT_BYTES = 256 * 1024 * 1024
MODEL_KEYS = ("model", "embedding_model", "model_path")
HISTORY_KEYS = ("stream_map", "map_history", "stream_metrics", "stream", "history")
X_KEYS = ("update", "stage", "batch", "items", "step", "t")
Y_KEYS = ("mAP", "map", "mAP@1000", "map_at_1000", "map@1000")


@dataclass
class Hits:
    """Top-K answer of one query: ids, row positions, Hamming distances (nearest first)."""

    ids: np.ndarray
    positions: np.ndarray
    distances: np.ndarray


def candidate_dirs(configured: Iterable[Path], recorded: Iterable[dict[str, Any]]) -> list[Path]:
    """Index directories from ``--index``/``AUTOML_INDEXES`` then those recorded in the store."""
    out: list[Path] = []
    for p in [*configured, *(Path(r["path"]) for r in recorded if r.get("path"))]:
        p = Path(p).expanduser()
        if p not in out:
            out.append(p)
    return out


def manifest_stamp(path: Path) -> float:
    """Changes whenever the index is saved again (the manifest is atomically replaced)."""
    return (Path(path) / MANIFEST).stat().st_mtime_ns / 1e9


def load_index(path: Path) -> HashIndex:
    """Load on the CPU; sha256-verify every part unless the index is very large."""
    root = Path(path)
    size = sum(p.stat().st_size for p in root.iterdir() if p.is_file())
    return HashIndex.load(root, verify=size <= VERIFY_LIMIT_BYTES, device="cpu")


def model_path(index: HashIndex, root: Path) -> Path | None:
    """The embedding model recorded with the index (``extra``), or ``model.pt`` beside it."""
    for key in MODEL_KEYS:
        value = index.extra.get(key)
        if isinstance(value, dict):
            value = value.get("path")
        if isinstance(value, str) and value:
            p = Path(value).expanduser()
            return p if p.is_absolute() else (root / p if (root / p).exists() else p)
    local = root / "model.pt"
    return local if local.is_file() else None


def class_names(index: HashIndex) -> list[str]:
    for key in MODEL_KEYS:
        value = index.extra.get(key)
        if isinstance(value, dict) and isinstance(value.get("class_names"), list):
            return [str(c) for c in value["class_names"]]
    names = index.extra.get("class_names")
    return [str(c) for c in names] if isinstance(names, list) else []


def label_text(label: Any, names: list[str]) -> str:
    """A class name, the active labels of a multi-label row, or ``unlabelled``."""
    arr = np.asarray(label)
    if arr.ndim == 0:
        value = int(arr)
        if value < 0:
            return "unlabelled"
        return names[value] if value < len(names) else str(value)
    if (arr < 0).any():
        return "unlabelled"
    active = np.flatnonzero(arr > 0)
    if not active.size:
        return "none"
    return ", ".join(names[i] if i < len(names) else f"L{i}" for i in active)


def relevance(query_label: Any, labels: np.ndarray) -> np.ndarray | None:
    """Boolean per result (same class / shared label), or None when the query label is unknown."""
    q = np.asarray(query_label)
    if q.ndim == 0:
        if int(q) < 0:
            return None
        return np.asarray(labels) == int(q)
    if (q < 0).any():
        return None
    lab = np.asarray(labels)
    return ((lab > 0) & (q[None, :] > 0)).any(axis=1)


def resolve_source(source: str, root: Path) -> Path | None:
    """The image file of an item: its path as recorded (relative paths are relative to where the
    index was built, unknown here), else relative to the index directory or its parent."""
    if not source:
        return None
    p = Path(source).expanduser()
    for cand in (p, root / p, root.parent / p, root / p.name):
        if cand.is_file():
            return cand
    return None


VIDEO_SOURCE = re.compile(r"^(?P<path>.+)#frame=(?P<frame>\d+)&face=(?P<face>\d+)$")
THUMBNAIL_SIDE = 320


def source_image(source: str, root: Path) -> Path | np.ndarray | None:
    """What to show for an item: its image file (:func:`resolve_source`), or for a face of a video
    (``automl index add --video`` records ``clip.mp4#frame=N&face=K``) that frame, decoded and
    shrunk to :data:`THUMBNAIL_SIDE` pixels (RGB); None when neither can be found or read."""
    m = VIDEO_SOURCE.match(source or "")
    if m is None:
        return resolve_source(source, root)
    video = resolve_source(m["path"], root)
    return None if video is None else video_frame(video, int(m["frame"]))


def video_frame(path: Path, frame: int, max_side: int = THUMBNAIL_SIDE) -> np.ndarray | None:
    """RGB uint8 of the 1-based ``frame`` of a video, shrunk to ``max_side``; None when OpenCV is
    missing, the video cannot be opened, its frames exceed the pixel limit or the frame is past
    its end."""
    try:
        import cv2
    except ImportError:
        return None
    from hashing.image_limits import ImageTooLargeError, check_pixels

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return None
        try:
            width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
            check_pixels(width, height, str(path))
        except ImageTooLargeError:
            return None
        cap.set(cv2.CAP_PROP_POS_FRAMES, max(0, frame - 1))
        ok, bgr = cap.read()
    finally:
        cap.release()
    if not ok or bgr is None:
        return None
    scale = min(1.0, max_side / max(bgr.shape[:2]))
    if scale < 1.0:
        size = (round(bgr.shape[1] * scale), round(bgr.shape[0] * scale))
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(bgr[:, :, ::-1])


def stored_embedding(index: HashIndex, position: int) -> np.ndarray:
    """The raw (float16 -> float32) embedding of the item at row ``position``."""
    start = 0
    for seg in index.embeddings():
        if position < start + seg.shape[0]:
            return np.asarray(seg[position - start], dtype=np.float32)[None, :]
        start += seg.shape[0]
    raise IndexError(f"item position {position} is outside the index ({len(index)} items)")


def search(index: HashIndex, embedding: np.ndarray, k: int, *, exclude_id: int | None = None) -> Hits:
    """Top-``k`` by Hamming distance, leaving out ``exclude_id`` (the query item itself)."""
    extra = 1 if exclude_id is not None else 0
    res = index.search(embedding, k=min(len(index), k + extra))
    ids, dist = res.ids[0], res.distances[0]
    keep = ids >= 0
    if exclude_id is not None:
        keep &= ids != exclude_id
    ids, dist = ids[keep][:k], dist[keep][:k]
    return Hits(ids=ids, positions=index.position_of(ids), distances=dist)


def embed_upload(model_file: Path, data: bytes, *, detect: bool) -> tuple[np.ndarray, str]:
    """Embed an uploaded image; returns the embedding and a note on how the face was found.

    When ``detect`` is on and no face is found the whole image is used (and the note says so), so
    an already-cropped face still gets a result.
    """
    from hashing.errors import HashingError
    from hashing.image_limits import check_image
    from hashing.stream import FaceDetector, image_input

    # The header first: too many pixels -> ImageTooLargeError (a HashingError), nothing decoded.
    name = "the uploaded image"
    not_an_image = HashingError("the uploaded file is not an image that can be decoded (png, jpg, webp...)")
    if not data or check_image(bytes(data), name) is None:
        raise not_an_image
    model = _model(str(model_file), model_file.stat().st_mtime_ns)
    # The same decode, crop and resize as `automl index build|query` (hashing.image_io).
    size, channels = model.image_size, model.in_channels
    x, why, note = None, "", "whole image used (face detection off)"
    if detect:
        x, why = image_input(bytes(data), size, channels, detector=FaceDetector(), name=name)
        note = "largest detected face used" if x is not None else "no face detected: the whole image was used"
    if x is None and why != "unreadable image":  # detection off, or no face: the whole image
        x, why = image_input(bytes(data), size, channels, name=name)
    if x is None:
        raise not_an_image
    return model.embed(x[None]), note


@functools.lru_cache(maxsize=4)
def _model(path: str, mtime_ns: int) -> Any:
    """One loaded TorchScript model per file version (loading costs far more than one query)."""
    from hashing.stream import load_model

    return load_model(path)


def stream_history(*sources: dict[str, Any]) -> list[tuple[float, float]]:
    """mAP over the stream, when recorded: a list of ``{update|items|stage: x, mAP|map: y}``."""
    for extra in sources:
        for key in HISTORY_KEYS:
            rows = (extra or {}).get(key)
            if not isinstance(rows, list):
                continue
            points = []
            for i, row in enumerate(rows):
                if not isinstance(row, dict):
                    continue
                x = next((row[k] for k in X_KEYS if isinstance(row.get(k), int | float)), i + 1)
                y = next((row[k] for k in Y_KEYS if isinstance(row.get(k), int | float)), None)
                if y is not None:
                    points.append((float(x), float(y)))
            if points:
                return points
    return []
