"""Images -> faces -> embeddings -> codes: the streaming side of the index.

The embedding model is an *exported* TorchScript file (``model.pt``) with a JSON sidecar
(``model.pt.json``: ``in_channels``, ``image_size``, ``task``, ``class_names``,
``embedding_dim``). Its ``embed(x)`` method maps float32 (N, C, H, W) images in [0, 1] to (N, D)
features; nothing from the search code is needed, so an index runs wherever a model is shipped.

Images are decoded by :mod:`hashing.image_io`, the path the data readers use too (pixel limit from
the header, EXIF orientation, 16-bit and float images scaled to 8 bits, alpha over white, the
centre square, bilinear resize), so a file embeds to the same input as a query and as a data set
item. Raw photos go through OpenCV's Haar frontal-face detector, run on the full-resolution
upright 8-bit image: the largest face, with a margin, is cropped and goes through the same
crop-and-resize step; a photo with no face is reported back to the caller, never embedded.
``detect=False`` is for images that are already aligned face crops: they take exactly the
decode of the data readers (:func:`hashing.image_io.model_input`, JPEG draft included).
"""

from __future__ import annotations

import csv
import json
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hashing import image_io
from hashing.errors import HashingError, ModelFormatError, NoFaceError

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
    meta: dict[str, Any] = field(default_factory=dict)  # the whole sidecar (metrics, signal, ...)

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


def read_model_sidecar(path: str | Path) -> dict[str, Any]:
    """The checked sidecar (``<file>.json``) of an exported model file: ``in_channels``,
    ``image_size``, ``task``, ``class_names``, ``embedding_dim`` as their types, plus every other
    key it holds. Anything missing or malformed -> ModelFormatError."""
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
    if not isinstance(meta, dict):
        raise ModelFormatError(f"model sidecar {side} must hold a JSON object")
    try:
        in_ch, size, dim = int(meta["in_channels"]), int(meta["image_size"]), int(meta["embedding_dim"])
        task, names = str(meta["task"]), [str(c) for c in meta["class_names"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFormatError(
            f"model sidecar {side} needs in_channels, image_size, task, class_names, embedding_dim ({exc})"
        ) from None
    if in_ch not in (1, 3) or size < 8 or dim < 1 or task not in ("fer", "au") or not names:
        raise ModelFormatError(f"model sidecar {side} has invalid values: {meta}")
    return {**meta, "in_channels": in_ch, "image_size": size, "embedding_dim": dim, "task": task,
            "class_names": names}  # fmt: skip


def load_torchscript(path: str | Path, device: str = "cpu") -> Any:
    """The eval-mode TorchScript module of an export on ``device``; a file that is not one, or
    one without an exported ``embed`` method, -> ModelFormatError."""
    import torch

    p = Path(path)
    try:
        with warnings.catch_warnings():  # TorchScript is the export contract; its deprecation notice is noise
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(p), map_location=device)
    except Exception as exc:  # torch raises RuntimeError/ValueError/zipfile errors for bad files
        raise ModelFormatError(f"{p} is not a TorchScript model ({type(exc).__name__})") from None
    if not hasattr(module, "embed"):
        raise ModelFormatError(
            f"{p} has no exported 'embed' method (the export must add @torch.jit.export embed)"
        )
    module.eval()
    return module


def load_model(path: str | Path) -> EmbeddingModel:
    """Load ``model.pt`` + ``model.pt.json``; anything missing or malformed -> ModelFormatError."""
    p = Path(path)
    meta = read_model_sidecar(p)
    in_ch, size, dim = meta["in_channels"], meta["image_size"], meta["embedding_dim"]
    return EmbeddingModel(load_torchscript(p), p, in_ch, size, meta["task"], meta["class_names"], dim, meta)


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
    """Full-resolution upright BGR uint8 (H, W, 3) image of a file, or None when it cannot be
    decoded (:func:`hashing.image_io.decode`: EXIF orientation applied, 16-bit scaled to 8 bits,
    alpha over white).

    The header is checked first (:func:`hashing.image_limits.open_image`): an image of more
    pixels than the limit raises :class:`~hashing.image_limits.ImageTooLargeError` before any
    pixel is decoded.
    """
    return _bgr(image_io.decode(Path(path), str(path)))


def decode_image_bytes(data: bytes, name: str = "the image") -> np.ndarray | None:
    """BGR uint8 image of an encoded file's bytes (e.g. an upload), as :func:`read_image`, or None
    when it cannot be decoded; too many pixels -> :class:`~hashing.image_limits.ImageTooLargeError`,
    undecoded."""
    if not data:
        return None
    return _bgr(image_io.decode(bytes(data), name))


def decode_bgr(data: np.ndarray) -> np.ndarray | None:
    """BGR uint8 image of encoded bytes held in a uint8 array (as :func:`decode_image_bytes`; the
    pixel limit applies)."""
    if data.size == 0:
        return None
    return _bgr(image_io.decode(np.ascontiguousarray(data, np.uint8).tobytes(), "the image"))


def _bgr(rgb: np.ndarray | None) -> np.ndarray | None:
    return None if rgb is None else np.ascontiguousarray(rgb[:, :, ::-1])


def _rgb(image: np.ndarray) -> np.ndarray:
    """A BGR (H, W, 3) or grey (H, W) / (H, W, 1) uint8 image as RGB (H, W, 3) or grey (H, W).

    The channel swap is OpenCV's (exactly the reversed channels, contiguous): a reversed numpy
    view would be copied element by element by the next step, ~20x slower on a video frame."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[2] == 1:
        return img[:, :, 0]
    if img.ndim == 3 and img.dtype == np.uint8 and img.shape[2] == 3:
        import cv2

        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return img[:, :, ::-1] if img.ndim == 3 else img


rgb_of = _rgb  # public name: automl's face crops swap channels the same way


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
        """``(N, 4)`` int64 ``x, y, w, h`` faces of a BGR (or grey) uint8 image."""
        grey = image_io.to_channels(_rgb(bgr), 1)
        found = self._cascade.detectMultiScale(
            grey, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(self.min_size,) * 2
        )
        return np.asarray(found, dtype=np.int64).reshape(-1, 4)

    def scored_boxes(self, bgr: np.ndarray, max_side: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(N, 4)`` float64 ``x, y, w, h`` faces in the image's pixels and ``(N,)`` scores in
        (0, 1): the cascade's last-stage weight through a logistic (higher = more face-like; a
        ranking score, not a calibrated probability).

        ``max_side``: an image larger than this is searched on a copy shrunk to it (area
        interpolation) and the boxes scaled back: a 1080p frame costs what a 640-pixel one does,
        and faces smaller than ``min_size`` at the shrunk scale are not found."""
        import cv2

        grey = image_io.to_channels(_rgb(bgr), 1) if bgr.ndim == 3 else np.asarray(bgr)
        scale = 1.0
        if max_side is not None and max(grey.shape[:2]) > max_side:
            scale = max_side / max(grey.shape[:2])
            size = (max(1, round(grey.shape[1] * scale)), max(1, round(grey.shape[0] * scale)))
            grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        found, _levels, weights = self._cascade.detectMultiScale3(
            grey, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(self.min_size,) * 2, outputRejectLevels=True,
        )  # fmt: skip
        boxes = np.asarray(found, dtype=np.float64).reshape(-1, 4) / scale
        scores = 1.0 / (1.0 + np.exp(-np.asarray(weights, dtype=np.float64).reshape(-1)))
        return boxes, scores[: len(boxes)]

    def face_box(self, bgr: np.ndarray) -> tuple[int, int, int, int] | None:
        """``(x, y, w, h)`` of the largest face plus a 10% margin on every side, clipped to the
        image; None when no face is found."""
        boxes = self.boxes(bgr)
        if len(boxes) == 0:
            return None
        largest = boxes[np.argmax(boxes[:, 2] * boxes[:, 3])]
        return with_margin(tuple(int(v) for v in largest), bgr.shape[:2])  # type: ignore[arg-type]

    def crop(self, bgr: np.ndarray) -> np.ndarray | None:
        """The image inside :meth:`face_box` (None without a face); :func:`to_model_input` then
        keeps its centre square."""
        box = self.face_box(bgr)
        if box is None:
            return None
        x, y, w, h = box
        return bgr[y : y + h, x : x + w]


def with_margin(
    box: tuple[int, int, int, int], shape: tuple[int, ...], margin: float = _FACE_MARGIN
) -> tuple[int, int, int, int]:
    """A detector's ``(x, y, w, h)`` plus ``margin`` (a fraction of its size, 10% by default) on
    every side, clipped to an image of ``shape`` ``(H, W, ...)``: the crop a detected face takes
    (a negative margin shrinks the box)."""
    x, y, w, h = (int(v) for v in box)
    mx, my = int(w * margin), int(h * margin)
    H, W = shape[:2]
    left, top = max(0, x - mx), max(0, y - my)
    return left, top, min(W, x + w + mx) - left, min(H, y + h + my) - top


def to_model_input(
    bgr: np.ndarray, image_size: int, channels: int, box: tuple[float, float, float, float] | None = None
) -> np.ndarray:
    """A decoded BGR (or grey) uint8 image -> float32 (C, S, S) in [0, 1] (grey for 1 channel,
    RGB for 3) by :func:`hashing.image_io.fit`: channels converted, cropped to ``box`` if given,
    else to the centre square (never stretched), bilinear resize."""
    return image_io.fit(_rgb(bgr), image_size, channels, box).astype(np.float32) / 255.0


def image_input(
    source: Path | bytes,
    image_size: int,
    channels: int,
    *,
    detector: FaceDetector | None = None,
    name: str | None = None,
) -> tuple[np.ndarray | None, str]:
    """float32 (C, S, S) model input of one image file or encoded bytes, and why not when None
    (``"unreadable image"``, ``"no face detected"``).

    Without ``detector`` (aligned crops): :func:`hashing.image_io.model_input`, exactly the
    decode of the data readers. With one: the full-resolution upright image is decoded, the
    largest face found (:meth:`FaceDetector.face_box`) and cropped and resized by the same rule.
    Too many pixels -> :class:`~hashing.image_limits.ImageTooLargeError`, undecoded."""
    label = name if name is not None else (str(source) if isinstance(source, str | Path) else None)
    if detector is None:
        x = image_io.model_input(source, image_size, channels, name=label)
        return (None, "unreadable image") if x is None else (x.astype(np.float32) / 255.0, "")
    rgb = image_io.decode(source, label)
    if rgb is None:
        return None, "unreadable image"
    box = detector.face_box(rgb[:, :, ::-1])
    if box is None:
        return None, "no face detected"
    return image_io.fit(rgb, image_size, channels, box).astype(np.float32) / 255.0, ""


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
    (:func:`image_input`; ``progress(1)`` after each image is read)."""
    det = (detector or FaceDetector()) if detect else None
    inputs, kept, skipped = [], [], []
    for p in paths:
        x, why = image_input(Path(p), model.image_size, model.in_channels, detector=det, name=str(p))
        if x is None:
            skipped.append((str(p), why))
        else:
            inputs.append(x)
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
    """Embed already-aligned uint8 (N, C, H, W) images (e.g. a data set split); images of another
    size or channel count are converted by :func:`hashing.image_io.fit` (centre square, bilinear)."""
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise HashingError(f"images must be uint8 (N, C, H, W) with C in (1, 3), got {x.shape}")
    if x.shape[2:] != (model.image_size, model.image_size) or x.shape[1] != model.in_channels:
        out = np.empty((len(x), model.in_channels, model.image_size, model.image_size), np.float32)
        for i, img in enumerate(x):
            pixels = img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)
            out[i] = image_io.fit(pixels, model.image_size, model.in_channels).astype(np.float32) / 255.0
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


_KEY_COLUMNS = ("file", "path", "image", "filename")
_CLASS_COLUMNS = ("label", "class", "emotion", "y")
_INTEGER = re.compile(r"^[+-]?[0-9]+$")


def label_columns(csv_path: str | Path) -> list[str]:
    """The label column names of a labels CSV (everything but the file column), in file order."""
    p = Path(csv_path)
    try:
        with open(p, newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh), [])
    except OSError as exc:
        raise HashingError(f"cannot read labels CSV {p} ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise _not_utf8(p, exc) from None
    names = [h.strip() for h in header]
    return [h for h in names if h.lower() not in _KEY_COLUMNS]


@dataclass
class CsvLabels:
    """What a labels CSV says about a list of images, in the CSV's own names.

    Single-label (``multi_label`` False): ``labels`` is (n,) int64, each an id into ``names``,
    the CSV's class vocabulary (:func:`vocabulary_order`). Multi-label: ``labels`` is (n, A)
    uint8 0/1 and ``names`` are the A column names, in the file's order. Nothing here refers to
    a model's classes: mapping onto an index's vocabulary is :func:`merge_vocabulary` /
    :func:`align_label_columns`.
    """

    labels: np.ndarray
    names: list[str]
    multi_label: bool


def vocabulary_order(names: set[str] | list[str]) -> list[str]:
    """The order a new vocabulary takes: sorted, names that are whole numbers (``"0"``, ``"7"``,
    ``"-1"``) first by value, then the others by code point -- so it depends neither on the order
    of the CSV's rows nor on which photos were embedded."""

    def key(name: str) -> tuple[int, int, str]:
        return (0, int(name), name) if _INTEGER.match(name) else (1, 0, name)

    return sorted(set(names), key=key)


def merge_vocabulary(known: list[str], names: list[str]) -> tuple[list[str], np.ndarray]:
    """``known`` grown by the ``names`` it lacks (appended in :func:`vocabulary_order`), and the
    id of each of ``names`` in the grown list: a known name keeps its id, a new one gets the next
    free id, and no name is ever mapped onto another."""
    vocab = [str(n) for n in known]
    if len(set(vocab)) != len(vocab):
        raise HashingError(f"the index's class names repeat a name: {vocab}")
    ids = {n: i for i, n in enumerate(vocab)}
    for name in vocabulary_order([n for n in names if n not in ids]):
        ids[name] = len(vocab)
        vocab.append(name)
    return vocab, np.asarray([ids[n] for n in names], np.int64)


def align_label_columns(index_names: list[str], csv_names: list[str], labels: np.ndarray) -> np.ndarray:
    """Multi-label rows whose columns are ``csv_names``, reordered to ``index_names`` by name.
    The two must hold the same names (an index's label columns are fixed when it is built): a
    missing or an unknown column is one error line naming them."""
    want, got = [str(n) for n in index_names], [str(n) for n in csv_names]
    missing = [n for n in want if n not in got]
    unknown = [n for n in got if n not in want]
    if missing or unknown:
        what = "; ".join(
            part
            for part in (
                f"missing {', '.join(missing)}" if missing else "",
                f"not in the index: {', '.join(unknown)}" if unknown else "",
            )
            if part
        )
        raise HashingError(
            f"the labels CSV's columns ({', '.join(got)}) do not match the index's multi-label columns "
            f"({', '.join(want)}): {what}; give every one of the index's columns, in any order"
        )
    return np.ascontiguousarray(np.asarray(labels)[:, [got.index(n) for n in want]])


def read_labels_csv(csv_path: str | Path, images: list[str]) -> CsvLabels:
    """Labels for ``images`` from a CSV with a ``file`` column and either one ``label`` column
    (a class *name* per row: any text, whole numbers included, e.g. ``face``, ``Alice`` or ``3``;
    names are taken as written, trimmed, so ``3`` and ``03`` are two classes) or several 0/1
    columns (multi-label, e.g. AU1, AU2, ...). Returns :class:`CsvLabels` in the CSV's own names.

    Rows are matched by path as written, by path relative to the CSV's folder, or by file name.
    An image without a row, an empty label or file cell, a file listed twice with different
    labels, or a multi-label cell other than 0/1 is a one-line :class:`HashingError` naming the
    line.
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
    key_cols = [i for i, h in enumerate(header) if h.lower() in _KEY_COLUMNS]
    if not key_cols:
        sep = next((c for c in (";", "\t", "|") if len(header) == 1 and c in header[0]), None)
        hint = f"; it looks separated by {sep!r}: save it comma-separated" if sep else ""
        raise HashingError(f"labels CSV {p} needs a 'file' column (got {header}){hint}")
    kc = key_cols[0]
    value_cols = [i for i in range(len(header)) if i != kc]
    if not value_cols:
        raise HashingError(f"labels CSV {p} has no label column")
    columns = [header[i] for i in value_cols]
    if any(not c for c in columns) or len(set(columns)) != len(columns):
        raise HashingError(f"labels CSV {p}: every label column needs its own name (got {columns})")
    single = len(value_cols) == 1 and columns[0].lower() in _CLASS_COLUMNS
    lookup: dict[str, list[str]] = {}
    exact: dict[str, tuple[int, list[str]]] = {}
    for line_no, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise HashingError(f"labels CSV {p} line {line_no}: {len(row)} fields, header has {len(header)}")
        vals = [row[i].strip() for i in value_cols]
        name = row[kc].strip()
        if not name:
            raise HashingError(f"labels CSV {p} line {line_no}: empty {header[kc]!r} cell")
        for col, v in zip(columns, vals, strict=True):
            if not v:
                raise HashingError(f"labels CSV {p} line {line_no}: empty {col!r} for {name}")
            if not single and v not in ("0", "1", "0.0", "1.0"):
                named = [c for c in columns if c.lower() in _CLASS_COLUMNS]
                if len(columns) == 1:
                    hint = f"; a column of class names must be called {' or '.join(_CLASS_COLUMNS)}"
                elif named:  # e.g. file,label,notes: the extra column makes it look multi-label
                    extra = ", ".join(repr(c) for c in columns if c not in named)
                    hint = f"; for class labels keep only 'file' and {named[0]!r}: drop {extra}"
                else:
                    hint = ""

                raise HashingError(
                    f"labels CSV {p} line {line_no}: {col!r} is {v!r} for {name}, but multi-label "
                    f"columns hold 0 or 1{hint}"
                )
        if name in exact and exact[name][1] != vals:
            raise HashingError(
                f"labels CSV {p} line {line_no}: {name} is listed again with other labels "
                f"(first on line {exact[name][0]})"
            )
        exact.setdefault(name, (line_no, vals))
        for key in {name, str((p.parent / name).resolve()), Path(name).name}:
            lookup.setdefault(key, vals)
    out = []
    for img in images:
        vals = lookup.get(img) or lookup.get(str(Path(img).resolve())) or lookup.get(Path(img).name)
        if vals is None:
            raise HashingError(f"labels CSV {p} has no row for image {img}")
        out.append(vals)
    if single:
        names = [v for (v,) in out]
        vocab = vocabulary_order(names)
        ids = {n: i for i, n in enumerate(vocab)}
        return CsvLabels(np.asarray([ids[n] for n in names], np.int64), vocab, False)
    mat = np.asarray([[int(float(v)) for v in vals] for vals in out], np.uint8)
    return CsvLabels(mat.reshape(len(out), len(columns)), columns, True)
