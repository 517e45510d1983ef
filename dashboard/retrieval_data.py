"""What the Retrieval page needs from a saved index, kept out of the page for testing.

An index directory is ``hashing.index.HashIndex``'s format (``manifest.json`` + ``.npy`` parts,
loaded without pickles). Queries come from an item of the index (its stored embedding) or from an
uploaded image embedded with the index's TorchScript model (``hashing.stream``), whose path the
index records in its ``extra`` metadata. Relevance follows the retrieval metrics: same class, or
at least one shared label for multi-label (AU) data.
"""

from __future__ import annotations

import functools
import math
import re
import threading
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


@dataclass(frozen=True)
class Ties:
    """How the top K ends: ``in_top`` of the ``shown`` results sit at the last one's ``distance``
    and ``beyond`` more items of the index sit there too (which of them made the cut, and their
    order, is arbitrary: FAISS breaks ties by position)."""

    distance: int
    in_top: int
    beyond: int
    shown: int


@dataclass(frozen=True)
class FaceChoice:
    """What to do with an uploaded image: search at all, with the largest face's crop or the
    whole image, and what to tell the user (a caption, or the warning when nothing is searched)."""

    search: bool
    crop: bool
    note: str


@dataclass
class UploadQuery:
    """An uploaded image made a query: its embedding (None: not searched, see ``choice``), the
    faces found (0 with detection off) and the pixels searched (the face crop, or None: the whole
    upload)."""

    embedding: np.ndarray | None
    choice: FaceChoice
    faces: int
    crop: np.ndarray | None = None


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
DATA_SOURCE = re.compile(r"^(?P<spec>.+)#(?P<split>train|test|all):(?P<row>\d+)$")
THUMBNAIL_SIDE = 320
RENDER_LIMIT_BYTES = 256 * 1024 * 1024  # a synthetic split larger than this is not re-rendered
REBUILD_NOTE = "synthetic source: rebuild the index to see its faces"
GENERATOR_NOTE = "synthetic source: the face generator changed since the index was built; rebuild it"
PIXELS_NOTE = "synthetic source: its split renders other faces now than the index embedded; rebuild it"
RENDER_NOTE = "synthetic source: the face could not be rendered"


def source_image(
    source: str, root: Path, source_data: dict[str, Any] | None = None
) -> Path | np.ndarray | None:
    """What to show for an item: its image file (:func:`resolve_source`), for a face of a video
    (``automl index add --video`` records ``clip.mp4#frame=N&face=K``) that frame, decoded and
    shrunk to :data:`THUMBNAIL_SIDE` pixels (RGB), or for a synthetic face (``synth:fer#test:17``)
    the same face rendered again from the load options the index recorded (``source_data``:
    ``extra["source_data"]``, :func:`synthetic_face`); None when none of these can be had
    (:func:`missing_note` says why)."""
    source = source or ""
    if DATA_SOURCE.match(source) and is_synthetic(source):
        return synthetic_face(source, source_data)
    m = VIDEO_SOURCE.match(source)
    if m is None:
        return resolve_source(source, root)
    video = resolve_source(m["path"], root)
    return None if video is None else video_frame(video, int(m["frame"]))


def is_synthetic(source: str) -> bool:
    """``synth:...#SPLIT:i``: a face rendered by the generator, never a file."""
    m = DATA_SOURCE.match(source or "")
    return m is not None and m["spec"].strip().lower().startswith("synth:")


def missing_note(source: str, source_data: dict[str, Any] | None = None) -> str:
    """Why :func:`source_image` has nothing to show for ``source`` (a caption for the page)."""
    if is_synthetic(source):
        if (problem := synthetic_problem(source, source_data)) is not None:
            return problem
        return _render_problem(source, source_data or {})
    if DATA_SOURCE.match(source or ""):
        return "no image file: a row of a data set read from a single file"
    return "image file not found" if source else "no source recorded"


def _render_problem(source: str, sd: dict[str, Any]) -> str:
    """Why a ``synth:`` source whose options pass :func:`synthetic_problem` still shows nothing
    (from the cached render: :func:`source_image` asked for it just before)."""
    rendered = _render(source, sd)
    if rendered is None:
        return RENDER_NOTE
    faces, digest = rendered
    if sd.get("pixels") not in (None, digest):
        return PIXELS_NOTE
    return f"synthetic source: its split holds {len(faces):,} faces, not this row"


def synthetic_problem(source: str, source_data: dict[str, Any] | None) -> str | None:
    """Why the face behind a ``synth:`` source cannot be rendered again faithfully (a caption;
    None: it can): an index built before the load options were recorded, options that do not
    name this item's spec and split, a changed generator (it would render other faces) or a
    split too large to render for display."""
    from automl.data.readers.synth import DEFAULT_N, generator_hash

    m = DATA_SOURCE.match(source)
    sd = source_data if isinstance(source_data, dict) else {}
    if m is None or sd.get("spec") != m["spec"] or sd.get("split") != m["split"]:
        return REBUILD_NOTE
    if sd.get("generator") != generator_hash():
        return GENERATOR_NOTE
    try:
        n, size, channels = int(sd.get("n") or DEFAULT_N), int(sd["image_size"]), int(sd["channels"])
    except (KeyError, TypeError, ValueError):
        return REBUILD_NOTE
    if n * size * size * channels > RENDER_LIMIT_BYTES:
        return f"synthetic source: {n:,} faces of {size}x{size} px are too many to render here"
    return None


def synthetic_face(source: str, source_data: dict[str, Any] | None) -> np.ndarray | None:
    """uint8 (H, W) grey or (H, W, 3) RGB of the face behind ``synth:...#SPLIT:i``, exactly as it
    was embedded: the split is rendered again (once: :func:`_rendered_split`) with the recorded
    options. None when :func:`synthetic_problem` objects, the rendered split is not the one
    embedded (its fingerprint differs) or the row is past the split's end."""
    faces = _recorded_split(source, source_data)
    row = int(DATA_SOURCE.match(source)["row"]) if faces is not None else 0
    if faces is None or row >= len(faces):
        return None
    face = faces[row]  # (C, H, W)
    return np.ascontiguousarray(face[0] if face.shape[0] == 1 else face.transpose(1, 2, 0))


def _recorded_split(source: str, source_data: dict[str, Any] | None) -> np.ndarray | None:
    """The rendered split behind ``source`` when it can be trusted to be the one embedded:
    :func:`synthetic_problem` has no objection and, for indexes that recorded it, the split's
    fingerprint (``pixels``) matches; else None."""
    if synthetic_problem(source, source_data):
        return None
    rendered = _render(source, source_data or {})
    if rendered is None:
        return None
    faces, digest = rendered
    recorded = (source_data or {}).get("pixels")
    return faces if recorded is None or recorded == digest else None


def _render(source: str, sd: dict[str, Any]) -> tuple[np.ndarray, str] | None:
    """:func:`_rendered_split` for ``source``'s spec and split and the recorded options; None
    when this version refuses them (an unknown spec or option: nothing to show)."""
    from automl.errors import UserError

    m = DATA_SOURCE.match(source)
    n = None if sd.get("n") is None else int(sd["n"])
    try:
        return _rendered_split(
            m["spec"], m["split"], int(sd["image_size"]), int(sd["channels"]), n, int(sd.get("seed") or 0)
        )
    except (UserError, ValueError):
        return None


_RENDER_LOCK = threading.Lock()


@functools.lru_cache(maxsize=2)
def _rendered_split(
    spec: str, split: str, image_size: int, channels: int, n: int | None, seed: int
) -> tuple[np.ndarray, str]:
    """uint8 (N, C, H, W) of one split of a synthetic set, rendered by ``automl.data.load_data``
    as ``embed_dataset`` did (so row ``i`` is the ``i``-th item of ``SPEC#SPLIT:i``), and its
    fingerprint (:func:`automl.data.synth_source.pixels_digest`, compared with the one the index
    recorded). The loader's disk cache is turned off meanwhile: the dashboard never writes a
    file. Two splits are kept (a few MB each at the usual 48 px), so paging through results
    renders once."""
    from unittest import mock

    from automl.data import load_data
    from automl.data.readers import synth
    from automl.data.synth_source import pixels_digest

    with _RENDER_LOCK, mock.patch.object(synth, "CACHE_MIN_PIXELS", math.inf):
        ds = load_data(spec, image_size=image_size, channels=channels, n=n, seed=seed)
    parts = {"train": [ds.train_x], "test": [ds.test_x]}
    parts["all"] = parts["train"] + parts["test"]
    faces = np.concatenate([x.numpy() for x in parts[split]])
    return faces, pixels_digest([faces])


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


def latest_trained_run(engine: Any, scan: int = 50) -> int | None:
    """The newest completed train run that saved weights (only those export to TorchScript;
    HPO trials' train runs keep none), among the last ``scan``; None when there is none."""
    from dashboard import queries

    flt = queries.RunFilter(kinds=("train",), states=("completed",))
    for run in queries.list_runs(engine, flt, limit=scan):
        if any(c.get("kind") == "weights" for c in queries.run_checkpoints(engine, int(run["id"]))):
            return int(run["id"])
    return None


def setup_commands(train_run: int | None, db_url: str | None = None) -> str:
    """Shell commands that give a fresh machine an index this page can open, in order: a
    search, a train run of its architecture (only a train run has weights to export), the
    TorchScript export, the index build on the synthetic faces. With ``train_run`` (one this
    store already holds) the first two are skipped. A store other than the default
    ``./automl.db`` is named with ``--db`` on every command (its password masked): without it the
    export would look for the run in another store and the index would be recorded there."""
    start = (
        f"# run {train_run} is this store's newest trained run with weights\n"
        if train_run is not None
        else "automl search      # run 1: an architecture search on synth:fer\n"
        "automl train 1     # train its architecture: a new train run (2 on a fresh store)\n"
    )
    run = train_run if train_run is not None else 2
    text = (
        f"{start}automl export {run} --format torchscript --out model.pt\n"
        "automl index build --model model.pt --data synth:fer --out faces.idx --eval-queries 200\n"
        "automl dashboard --index faces.idx"
    )
    return _with_db(text, db_url)


def _with_db(commands: str, db_url: str | None) -> str:
    """``commands`` with ``--db URL`` after each ``automl`` command when ``db_url`` is not the
    CLI's default store (comments stay at the end of their line)."""
    import shlex

    from dashboard.settings import DEFAULT_DB_URL, safe_url

    if not db_url or db_url == DEFAULT_DB_URL:
        return commands
    flag = f" --db {shlex.quote(safe_url(db_url))}"
    lines = []
    for line in commands.splitlines():
        if line.startswith("automl "):
            command, hash_, comment = line.partition("#")
            line = f"{command.rstrip()}{flag}" + (f"  {hash_}{comment}" if hash_ else "")
        lines.append(line)
    return "\n".join(lines)


def ties_at_cut(
    index: HashIndex, embedding: np.ndarray, hits: Hits, *, exclude_id: int | None = None
) -> Ties | None:
    """How many of ``hits`` share the last one's Hamming distance, and how many more items of
    the index (``exclude_id``, the query item itself, left out) sit at exactly that distance:
    counted with a radius search, so the count is exact whatever K was. None without results."""
    if not len(hits.distances):
        return None
    cut = int(hits.distances[-1])
    in_top = int((hits.distances == cut).sum())
    ball = index.range_search(embedding, cut)[0]
    at_cut = ball.ids[ball.distances == cut]
    if exclude_id is not None:
        at_cut = at_cut[at_cut != exclude_id]
    return Ties(distance=cut, in_top=in_top, beyond=max(0, len(at_cut) - in_top), shown=len(hits.ids))


def tie_note(ties: Ties | None) -> str | None:
    """The page's warning that the order of the top K is partly arbitrary; None when the K-th
    distance is held by the K-th result alone."""
    if ties is None or (ties.in_top < 2 and ties.beyond == 0):
        return None
    are = "is" if ties.in_top == 1 else "are"
    head = f"{ties.in_top} of the top {ties.shown} {are} at distance {ties.distance}"
    if ties.beyond == 0:
        return f"{head}: their order is arbitrary."
    more = f"{ties.beyond} more item ties" if ties.beyond == 1 else f"{ties.beyond} more items tie"
    return (
        f"{head} and {more} at {ties.distance}: their order, and which of them make the top "
        f"{ties.shown}, is arbitrary."
    )


WHOLE_IMAGE_LABEL = "Search the whole image anyway"


def face_choice(faces: int, *, detect: bool, whole_anyway: bool) -> FaceChoice:
    """What an upload is searched with: the largest of the ``faces`` detected, the whole image
    when detection is off, and with no face found nothing -- an image that shows no face would
    otherwise be answered as if it were one -- unless the user asked for the whole image."""
    if not detect:
        return FaceChoice(True, False, "whole image used (face detection off)")
    if faces == 0 and not whole_anyway:
        return FaceChoice(
            False,
            False,
            f"No face was detected in the uploaded image, so it was not searched. Upload a photo "
            f"with a frontal face, or tick \"{WHOLE_IMAGE_LABEL}\" (e.g. for an already-cropped face).",
        )
    if faces == 0:
        return FaceChoice(True, False, "no face detected: the whole image was searched, as asked")
    if faces == 1:
        return FaceChoice(True, True, "the detected face was used (shown)")
    return FaceChoice(True, True, f"{faces} faces detected: the largest one was used (shown)")


def embed_upload(model_file: Path, data: bytes, *, detect: bool, whole_anyway: bool = False) -> UploadQuery:
    """Embed an uploaded image as :func:`face_choice` decides: the largest detected face,
    cropped, resized and converted by the same rule as ``automl index build|query``
    (``hashing.stream.image_input``), or the whole image; no embedding when it says not to
    search. An undecodable file or one with too many pixels -> HashingError."""
    from hashing.errors import HashingError
    from hashing.image_io import decode, fit
    from hashing.image_limits import check_image
    from hashing.stream import FaceDetector, image_input, with_margin

    # The header first: too many pixels -> ImageTooLargeError (a HashingError), nothing decoded.
    name = "the uploaded image"
    not_an_image = HashingError("the uploaded file is not an image that can be decoded (png, jpg, webp...)")
    if not data or check_image(bytes(data), name) is None:
        raise not_an_image
    model = _model(str(model_file), model_file.stat().st_mtime_ns)
    size, channels = model.image_size, model.in_channels
    faces, box, rgb = 0, None, None
    if detect:
        rgb = decode(bytes(data), name)
        if rgb is None:
            raise not_an_image
        boxes = FaceDetector().boxes(rgb[:, :, ::-1])  # one per call: a cascade is not shared
        faces = len(boxes)
        if faces:  # FaceDetector.face_box's rule: the largest, with its margin
            largest = boxes[np.argmax(boxes[:, 2] * boxes[:, 3])]
            box = with_margin(tuple(int(v) for v in largest), rgb.shape[:2])
    choice = face_choice(faces, detect=detect, whole_anyway=whole_anyway)
    if not choice.search:
        return UploadQuery(None, choice, faces)
    if box is not None and rgb is not None:
        x0, y0, w, h = box
        x = fit(rgb, size, channels, box).astype(np.float32) / 255.0
        crop = np.ascontiguousarray(rgb[y0 : y0 + h, x0 : x0 + w])
        return UploadQuery(model.embed(x[None]), choice, faces, crop)
    x, _ = image_input(bytes(data), size, channels, name=name)  # the data readers' decode
    if x is None:
        raise not_an_image
    return UploadQuery(model.embed(x[None]), choice, faces)


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
