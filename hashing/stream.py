"""Images -> faces -> embeddings -> codes: the streaming side of the index.

The embedding model is an *exported* TorchScript file (``model.pt``) with a JSON sidecar
(``model.pt.json``: ``in_channels``, ``image_size``, ``task``, ``class_names``,
``embedding_dim``). Its ``embed(x)`` method maps float32 (N, C, H, W) images in [0, 1] to (N, D)
features; nothing from the search code is needed, so an index runs wherever a model is shipped.

Raw photos go through OpenCV's Haar frontal-face detector (the largest face, with a margin, is
cropped); a photo with no face is reported back to the caller, never embedded. ``detect=False``
is for images that are already aligned face crops.
"""

from __future__ import annotations

import csv
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hashing.errors import HashingError, ModelFormatError, NoFaceError
from hashing.image_limits import check_image

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".tif", ".tiff", ".webp"}
_FACE_MARGIN = 0.1


@dataclass
class EmbeddingModel:
    """A loaded TorchScript embedding model and its sidecar."""

    module: Any
    path: Path
    in_channels: int
    image_size: int
    task: str
    class_names: list[str]
    embedding_dim: int

    def embed(
        self, images: np.ndarray, batch_size: int = 64, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """float32 (N, C, H, W) in [0, 1] -> (N, D) float32 features (``progress(n)`` per batch)."""
        import torch

        out = []
        with torch.inference_mode():
            for s in range(0, len(images), batch_size):
                x = torch.from_numpy(np.ascontiguousarray(images[s : s + batch_size], dtype=np.float32))
                feats = self.module.embed(x)
                out.append(feats.detach().float().reshape(len(x), -1).cpu().numpy())
                if progress is not None:
                    progress(len(x))
        emb = np.concatenate(out) if out else np.zeros((0, self.embedding_dim), np.float32)
        if emb.shape[1] != self.embedding_dim:
            raise ModelFormatError(
                f"model {self.path.name} returned {emb.shape[1]}-d embeddings, "
                f"sidecar says {self.embedding_dim}"
            )
        return emb

    def describe(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "in_channels": self.in_channels,
            "image_size": self.image_size,
            "task": self.task,
            "class_names": self.class_names,
            "embedding_dim": self.embedding_dim,
        }


def load_model(path: str | Path) -> EmbeddingModel:
    """Load ``model.pt`` + ``model.pt.json``; anything missing or malformed -> ModelFormatError."""
    import torch

    p = Path(path)
    if not p.is_file():
        raise ModelFormatError(
            f"model file {p} not found (export a trained run as TorchScript first)", param="model"
        )
    side = p.with_name(p.name + ".json")
    try:
        meta = json.loads(side.read_text())
    except FileNotFoundError:
        raise ModelFormatError(
            f"model sidecar {side} not found (it is written beside the exported model)"
        ) from None
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"model sidecar {side} is not valid JSON ({exc})") from None
    try:
        in_ch, size, dim = int(meta["in_channels"]), int(meta["image_size"]), int(meta["embedding_dim"])
        task, names = str(meta["task"]), [str(c) for c in meta["class_names"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFormatError(
            f"model sidecar {side} needs in_channels, image_size, task, class_names, embedding_dim ({exc})"
        ) from None
    if in_ch not in (1, 3) or size < 8 or dim < 1 or task not in ("fer", "au"):
        raise ModelFormatError(f"model sidecar {side} has invalid values: {meta}")
    try:
        with warnings.catch_warnings():  # TorchScript is the export contract; its deprecation notice is noise
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(p), map_location="cpu")
    except Exception as exc:  # torch raises RuntimeError/ValueError/zipfile errors for bad files
        raise ModelFormatError(f"{p} is not a TorchScript model ({type(exc).__name__})") from None
    if not hasattr(module, "embed"):
        raise ModelFormatError(
            f"{p} has no exported 'embed' method (the export must add @torch.jit.export embed)"
        )
    module.eval()
    return EmbeddingModel(module, p, in_ch, size, task, names, dim)


# -- images -----------------------------------------------------------------------------------
def list_images(path: str | Path) -> list[Path]:
    """One image file, or every image file under a folder (recursive, sorted)."""
    p = Path(path)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise HashingError(f"{p} is neither an image file nor a folder")
    files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise HashingError(f"no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}) under {p}")
    return files


def read_image(path: Path) -> np.ndarray | None:
    """BGR uint8 image, or None when the file cannot be decoded.

    The header is checked first (:func:`hashing.image_limits.check_image`): an image of more
    pixels than the limit raises :class:`~hashing.image_limits.ImageTooLargeError` before any
    pixel is decoded, and a file whose size nothing can vouch for is not handed to OpenCV.
    """
    if check_image(Path(path), str(path)) is None:
        return None
    data = np.fromfile(str(path), dtype=np.uint8)
    return decode_bgr(data)


def decode_image_bytes(data: bytes, name: str = "the image") -> np.ndarray | None:
    """BGR uint8 image of an encoded file's bytes (e.g. an upload), or None when it cannot be
    decoded; too many pixels -> :class:`~hashing.image_limits.ImageTooLargeError`, undecoded."""
    if not data or check_image(bytes(data), name) is None:
        return None
    return decode_bgr(np.frombuffer(data, np.uint8))


def decode_bgr(data: np.ndarray) -> np.ndarray | None:
    """OpenCV's decode of encoded bytes; call it only on bytes whose header passed
    :func:`~hashing.image_limits.check_image` (as :func:`read_image` does)."""
    if data.size == 0:
        return None
    import cv2

    return cv2.imdecode(data, cv2.IMREAD_COLOR)


class FaceDetector:
    """OpenCV's Haar frontal-face cascade (OpenCV's default detection parameters); returns the
    largest face with a small margin."""

    def __init__(self, scale_factor: float = 1.1, min_neighbors: int = 3, min_size: int = 24) -> None:
        import cv2

        cascade_path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(str(cascade_path))
        if self._cascade.empty():
            raise HashingError(f"OpenCV could not load the face cascade {cascade_path}")
        self.scale_factor, self.min_neighbors, self.min_size = scale_factor, min_neighbors, min_size

    def boxes(self, bgr: np.ndarray) -> np.ndarray:
        import cv2

        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        found = self._cascade.detectMultiScale(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(self.min_size,) * 2
        )
        return np.asarray(found, dtype=np.int64).reshape(-1, 4)

    def crop(self, bgr: np.ndarray) -> np.ndarray | None:
        boxes = self.boxes(bgr)
        if len(boxes) == 0:
            return None
        x, y, w, h = boxes[np.argmax(boxes[:, 2] * boxes[:, 3])]
        mx, my = int(w * _FACE_MARGIN), int(h * _FACE_MARGIN)
        H, W = bgr.shape[:2]
        return bgr[max(0, y - my) : min(H, y + h + my), max(0, x - mx) : min(W, x + w + mx)]


def to_model_input(bgr: np.ndarray, image_size: int, channels: int) -> np.ndarray:
    """BGR uint8 crop -> float32 (C, S, S) in [0, 1] (grey for 1 channel, RGB for 3)."""
    import cv2

    img = cv2.resize(bgr, (image_size, image_size), interpolation=cv2.INTER_AREA)
    if channels == 1:
        arr = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)[None]
    else:
        arr = cv2.cvtColor(img, cv2.COLOR_BGR2RGB).transpose(2, 0, 1)
    return arr.astype(np.float32) / 255.0


@dataclass
class EmbeddedBatch:
    """Embeddings of the images that produced one, and the images that did not, with why."""

    embeddings: np.ndarray
    paths: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)


def embed_images(
    model: EmbeddingModel,
    paths: list[Path],
    *,
    detect: bool = True,
    detector: FaceDetector | None = None,
    progress: Callable[[int], None] | None = None,
) -> EmbeddedBatch:
    """Read, detect (unless ``detect=False``), crop, resize and embed images
    (``progress(1)`` after each image is read)."""
    det = (detector or FaceDetector()) if detect else None
    inputs, kept, skipped = [], [], []
    for p in paths:
        img = read_image(p)
        if img is None:
            skipped.append((str(p), "unreadable image"))
            if progress is not None:
                progress(1)
            continue
        if det is not None:
            img = det.crop(img)
            if img is None:
                skipped.append((str(p), "no face detected"))
                if progress is not None:
                    progress(1)
                continue
        inputs.append(to_model_input(img, model.image_size, model.in_channels))
        kept.append(str(p))
        if progress is not None:
            progress(1)
    if not inputs:
        return EmbeddedBatch(np.zeros((0, model.embedding_dim), np.float32), [], skipped)
    return EmbeddedBatch(model.embed(np.stack(inputs)), kept, skipped)


def embed_query(model: EmbeddingModel, path: Path, *, detect: bool = True) -> np.ndarray:
    """(1, D) embedding of one query photo; NoFaceError when no face is found (never a silent
    embedding of the whole photo), HashingError when the file cannot be decoded."""
    got = embed_images(model, [Path(path)], detect=detect)
    if got.skipped:
        why = got.skipped[0][1]
        if why == "no face detected":
            raise NoFaceError(
                f"{path}: no face detected; turn detection off for aligned face crops", param="detect"
            )
        raise HashingError(f"{path}: {why}")
    return got.embeddings


def embed_uint8(
    model: EmbeddingModel, images: np.ndarray, progress: Callable[[int], None] | None = None
) -> np.ndarray:
    """Embed already-aligned uint8 (N, C, H, W) images (e.g. a data set split), resizing and
    converting channels to what the model expects."""
    import cv2

    x = np.asarray(images)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise HashingError(f"images must be uint8 (N, C, H, W) with C in (1, 3), got {x.shape}")
    if x.shape[2:] != (model.image_size, model.image_size) or x.shape[1] != model.in_channels:
        out = np.empty((len(x), model.in_channels, model.image_size, model.image_size), np.float32)
        for i, img in enumerate(x):
            hwc = img.transpose(1, 2, 0)
            bgr = (
                cv2.cvtColor(hwc, cv2.COLOR_GRAY2BGR)
                if hwc.shape[2] == 1
                else cv2.cvtColor(hwc, cv2.COLOR_RGB2BGR)
            )
            out[i] = to_model_input(np.ascontiguousarray(bgr), model.image_size, model.in_channels)
        return model.embed(out, progress=progress)
    parts = [
        model.embed(x[s : s + 4096].astype(np.float32) / 255.0, progress=progress)
        for s in range(0, len(x), 4096)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, model.embedding_dim), np.float32)


# -- labels -----------------------------------------------------------------------------------
def _not_utf8(path: Path, exc: UnicodeDecodeError) -> HashingError:
    byte = exc.object[exc.start : exc.start + 1].hex() if isinstance(exc.object, bytes) else "?"
    return HashingError(
        f"labels CSV {path} must be UTF-8 text (found byte 0x{byte}, {exc.reason}): re-save it as UTF-8"
    )


def label_columns(csv_path: str | Path) -> list[str]:
    """The label column names of a labels CSV (everything but the file column)."""
    p = Path(csv_path)
    try:
        with open(p, newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh), [])
    except OSError as exc:
        raise HashingError(f"cannot read labels CSV {p} ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise _not_utf8(p, exc) from None
    names = [h.strip() for h in header]
    return [h for h in names if h.lower() not in ("file", "path", "image", "filename")]


def read_labels_csv(
    csv_path: str | Path, images: list[str], class_names: list[str] | None = None
) -> np.ndarray:
    """Labels for ``images`` from a CSV with a ``file`` column and either one ``label`` column
    (class index or class name) or several 0/1 columns (multi-label, e.g. AU1, AU2, ...).

    Rows are matched by path as written, by path relative to the CSV's folder, or by file name.
    """
    p = Path(csv_path)
    try:
        with open(p, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise HashingError(f"cannot read labels CSV {p} ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise _not_utf8(p, exc) from None
    if len(rows) < 2:
        raise HashingError(f"labels CSV {p} needs a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    key_cols = [i for i, h in enumerate(header) if h.lower() in ("file", "path", "image", "filename")]
    if not key_cols:
        raise HashingError(f"labels CSV {p} needs a 'file' column (got {header})")
    kc = key_cols[0]
    value_cols = [i for i in range(len(header)) if i != kc]
    if not value_cols:
        raise HashingError(f"labels CSV {p} has no label column")
    single = len(value_cols) == 1 and header[value_cols[0]].lower() in ("label", "class", "emotion", "y")
    lookup: dict[str, list[str]] = {}
    for line_no, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise HashingError(f"labels CSV {p} line {line_no}: {len(row)} fields, header has {len(header)}")
        vals = [row[i].strip() for i in value_cols]
        name = row[kc].strip()
        for key in {name, str((p.parent / name).resolve()), Path(name).name}:
            lookup.setdefault(key, vals)
    out = []
    for img in images:
        vals = lookup.get(img) or lookup.get(str(Path(img).resolve())) or lookup.get(Path(img).name)
        if vals is None:
            raise HashingError(f"labels CSV {p} has no row for image {img}")
        out.append(vals)
    if single:
        names = {c: i for i, c in enumerate(class_names or [])}
        labels = []
        for (v,) in out:
            if v in names:
                labels.append(names[v])
            else:
                try:
                    labels.append(int(v))
                except ValueError:
                    raise HashingError(
                        f"label {v!r} is neither a class index nor a known class name"
                    ) from None
        return np.asarray(labels, np.int64)
    try:
        mat = np.asarray([[int(float(v)) for v in vals] for vals in out], np.int64)
    except ValueError:
        raise HashingError(f"multi-label columns of {p} must hold 0/1 values") from None
    if not np.isin(mat, (0, 1)).all():
        raise HashingError(f"multi-label columns of {p} must hold 0/1 values")
    return mat.astype(np.uint8)
