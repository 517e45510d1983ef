"""Face retrieval with a trained model, end to end: embed faces, build or grow an online-hashed
index, query it, record each saved generation in the run store.

Everything ``automl index build|add|query|stats|record`` does, callable from Python::

    from automl import retrieval
    from hashing.stream import load_model

    model = load_model("runs/7/model.pt")
    faces = retrieval.embed_folder(model, "photos/", "labels.csv", detect=True)
    built = retrieval.build_index(faces, "faces.idx", model=model, bits=64, eval_queries=100)
    retrieval.record_index("sqlite:///automl.db", built.path, built.index, {"command": "build"})

    more = retrieval.embed_folder(model, "new_photos/")
    grown = retrieval.add_to_index("faces.idx", more)
    index, answer = retrieval.query_image("faces.idx", "someone.jpg", k=5)
    print(index.stats(), answer.rows)

The index itself (:mod:`hashing.index`, the online hashers, the stream-mAP curve of
:mod:`hashing.evaluation`) needs neither torch nor the store; this module adds what does: the
exported embedding model, the data sets of :func:`automl.data.load_data`, the learning checks of
:mod:`automl.learning_checks` and the ``automl_indexes`` rows the dashboard's Retrieval page reads.

``progress``, where accepted, receives :class:`automl.progress.ProgressEvent` events, one job per
stage (``embedding``, ``hashing + indexing``), ``done`` / ``total`` counting faces.
Writers hold the index directory's lock from load to save (:func:`hashing.index.lock_index`), so
concurrent ``add`` calls queue up instead of losing each other's items.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from automl.errors import UserError
from automl.progress import ProgressCallback, ProgressEvent
from hashing.base import OnlineHasher
from hashing.errors import CollapseWarning, HashingError, IndexConflictError
from hashing.evaluation import STREAM_MAP_KEY, STREAM_MAP_QUERIES_KEY, StreamMapRecorder, hold_out_queries
from hashing.index import (
    MANIFEST,
    HashIndex,
    Neighbours,
    check_batch_size,
    check_k,
    check_radius,
    directory_state,
    lock_index,
    read_manifest,
)
from hashing.locking import DEFAULT_LOCK_TIMEOUT, check_lock_timeout
from hashing.registry import create_hasher, hasher_spec

__all__ = [
    "SPLITS",
    "Embedded",
    "IndexConflictError",
    "IndexNotRecordedError",
    "IndexUpdate",
    "add_to_index",
    "bsodh_params",
    "build_index",
    "check_batch_size",
    "check_build",
    "check_lock_timeout",
    "directory_state",
    "embed_dataset",
    "embed_folder",
    "embed_input",
    "embed_video",
    "generation_sha256",
    "index_record_extra",
    "judge_index",
    "make_hasher",
    "model_for_index",
    "model_metadata",
    "query_image",
    "record_index",
    "record_saved_index",
]

Progress = ProgressCallback  # the library's one progress type (automl.progress)
SIGNAL_KEY = "signal"  # automl.learning_checks.SIGNAL_KEY: the same key as in run summaries
SPLITS = ("train", "test", "all")


@dataclass
class Embedded:
    """Embeddings of a stream of faces with their sources (paths or ``spec#split:i``), labels
    (None, ``(n,)`` classes or ``(n, A)`` 0/1), what could not be embedded and why, and the names
    the label values refer to."""

    embeddings: np.ndarray
    sources: list[str]
    labels: np.ndarray | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    class_names: list[str] | None = None  # what labels index (a data set's or labels CSV's own names)
    label_names: list[str] | None = None  # multi-label column names (AU1, AU2, ...)
    model: dict[str, Any] = field(default_factory=dict)  # the model that embedded them (model_metadata)

    def select(self, rows: slice | Sequence[int]) -> Embedded:
        """These rows only (e.g. to stream a set into an index in parts)."""
        picked = list(range(len(self.sources)))[rows] if isinstance(rows, slice) else [int(i) for i in rows]
        return Embedded(
            self.embeddings[picked],
            [self.sources[i] for i in picked],
            None if self.labels is None else self.labels[picked],
            [],
            self.class_names,
            self.label_names,
            dict(self.model),
        )


@dataclass
class IndexUpdate:
    """A saved generation: the index, where, its learning-check verdict, what was added, and
    (for a build with held-out queries) the mAP over the stream."""

    index: HashIndex
    path: Path
    signal: dict[str, Any]
    added: int
    labelled: bool
    history: list[dict[str, Any]] = field(default_factory=list)
    eval_queries: int = 0
    refused: int = 0  # hash updates refused because they would have collapsed the codes
    new_classes: list[str] = field(default_factory=list)  # names this add appended to the vocabulary
    readded: int = 0  # added items whose source the index already held

    @property
    def final_map(self) -> float | None:
        return next((h["mAP"] for h in reversed(self.history) if h["mAP"] is not None), None)

    def notes(self) -> list[str]:
        """Warnings about this update, one line each: refused hash updates, labels not learned."""
        out = []
        if self.refused:
            out.append(
                f"{self.refused} hash update(s) refused: they would have mapped their items onto too "
                "few codes; the index kept its previous hash function (add more varied labelled faces, "
                "or check the labels)"
            )
        if self.readded:
            out.append(
                f"{self.readded} added item(s) have a source the index already held: they are now in "
                "it twice (remove the duplicates, or add only new files)"
            )
        h = self.index.hasher
        if self.labelled and getattr(h, "mode", None) == "paper" and h.n_batches_ == 1:
            out.append(
                "BSODH in paper mode learns nothing from the first batch (it only initialises the "
                "codes), and this stream was one batch: the labels were not used; lower --batch or "
                "use the default robust mode"
            )
        return out

    def summary(self, command: str = "build") -> str:
        """One line on what was saved (what ``automl index build|add`` prints)."""
        st = self.index.stats()
        if command == "add":
            return (
                f"added {self.added} item(s) ({'labelled' if self.labelled else 'unlabelled'}); index now "
                f"{st['items']} item(s), {st['hash_updates']} hash update(s), "
                f"stale updates {st['stale_updates']}"
                + (f"; new class(es): {', '.join(self.new_classes)}" if self.new_classes else "")
            )
        final = self.final_map
        stream = (
            f"; stream mAP {final:.4f} ({self.eval_queries} held-out queries)" if final is not None else ""
        )
        return (
            f"indexed {st['items']} item(s) ({st['labelled_items']} labelled, {st['hash_updates']} hash "
            f"update(s)) with {st['bits']}-bit codes -> {self.path}{stream}"
        )


def _stage(progress: Progress | None, name: str, total: int) -> Callable[[int], None] | None:
    if progress is None:
        return None
    done = 0
    progress(ProgressEvent(name, 0, total))

    def advance(n: int) -> None:
        nonlocal done
        done += n
        progress(ProgressEvent(name, done, total))

    return advance


# -- embedding ------------------------------------------------------------------------------------
def _model(model: Any) -> Any:
    """An :class:`~hashing.stream.EmbeddingModel`, loading it when given a path."""
    from hashing.stream import load_model

    return load_model(model) if isinstance(model, (str, Path)) else model


def model_for_index(directory: str | Path, model: str | Path | None = None) -> Any:
    """The embedding model for a saved index: ``model`` if given, else the one the index was
    built with (its ``extra["model"]``); one whose embedding width differs is refused."""
    from hashing.stream import load_model

    manifest = read_manifest(directory)
    m = load_model(model or (manifest.get("extra") or {}).get("model") or "")
    if m.embedding_dim != manifest["dim"]:
        raise HashingError(
            f"the model embeds {m.embedding_dim}-d features but the index holds {manifest['dim']}-d ones"
        )
    return m


def embed_input(
    model: Any,
    *,
    data: str | None = None,
    images: str | Path | Sequence[str | Path] | None = None,
    labels_csv: str | Path | None = None,
    split: str = "train",
    n: int | None = None,
    seed: int = 0,
    detect: bool = True,
    progress: Progress | None = None,
) -> Embedded:
    """Either a data spec (:func:`embed_dataset`) or images (:func:`embed_folder`), not both."""
    if (data is None) == (images is None):
        raise HashingError(
            "give exactly one of data SPEC or images PATH (an image file or folder)", param="data,images"
        )
    if labels_csv is not None and images is None:
        raise HashingError(
            "labels_csv goes with images (a data spec carries its own labels)", param="labels_csv,images"
        )
    if data is not None:
        return embed_dataset(model, data, split=split, n=n, seed=seed, progress=progress)
    return embed_folder(model, images, labels_csv, detect=detect, progress=progress)  # type: ignore[arg-type]


def embed_folder(
    model: Any,
    images: str | Path | Sequence[str | Path],
    labels_csv: str | Path | None = None,
    *,
    detect: bool = True,
    progress: Progress | None = None,
) -> Embedded:
    """Embed an image file, a folder of images (recursive) or a list of image paths with an
    exported model (:func:`hashing.stream.load_model`); faces are detected unless
    ``detect=False``. ``labels_csv`` (``file,label`` or ``file,AU1,AU2,...``) labels them in its
    own names (``class_names``: the CSV's classes, sorted; or its columns), whatever the model's
    classes are; :func:`add_to_index` maps them onto the index's vocabulary.
    ``model``: an :class:`~hashing.stream.EmbeddingModel` or the path of an exported one.
    Sources are recorded as absolute, resolved paths (skipped files as given)."""
    from hashing.stream import embed_images, list_images, read_labels_csv

    model = _model(model)

    if isinstance(images, (str, Path)):
        paths = list_images(images)
    else:
        paths = [Path(p) for p in images]
    got = embed_images(model, paths, detect=detect, progress=_stage(progress, "embedding", len(paths)))
    labels = class_names = label_names = None
    if labels_csv is not None and got.paths:  # the CSV's own names, never the model's classes
        from_csv = read_labels_csv(labels_csv, got.paths)
        labels, class_names = from_csv.labels, from_csv.names  # ids into the names (AU: columns)
        label_names = from_csv.names if from_csv.multi_label else None
    # sources a user can open from anywhere: absolute, resolved (labels matched the paths as given)
    sources = [str(Path(p).resolve()) for p in got.paths]
    return Embedded(
        got.embeddings, sources, labels, list(got.skipped), class_names, label_names, model_metadata(model)
    )


def video_source(path: str, frame: int, face_id: int) -> str:
    """The source of one face of a video frame: ``/abs/clip.mp4#frame=12&face=0``."""
    return f"{path}#frame={frame}&face={face_id}"


def embed_video(
    model: Any,
    videos: str | Path | Sequence[str | Path],
    *,
    label: str | None = None,
    detect: bool = True,
    detect_every: int = 1,
    frame_step: int = 1,
    batch_size: int = 64,
    progress: Progress | None = None,
) -> Embedded:
    """Embed every face of every ``frame_step``-th frame of videos (or of a folder of them) by the
    streaming path of ``automl predict`` (:func:`automl.face_stream.face_batches`: the same decode,
    detection, tracking and crop), batch by batch. Sources are
    :func:`video_source` strings (absolute path, frame, tracked face id). ``label`` gives every
    face one class (e.g. the person the videos show), which updates the hash when added; without
    it the faces are only encoded. A photo among the inputs is refused: use ``embed_folder``."""
    from automl.face_calibration import check_face_crop
    from automl.face_stream import StreamSettings, face_batches
    from automl.media import check_media, discover_media

    settings = StreamSettings(batch_size=batch_size, detect=detect, detect_every=detect_every,
                              frame_step=frame_step).check()  # fmt: skip
    model = _model(model)
    settings = dataclasses.replace(settings, face_crop=check_face_crop(model.meta.get("face_crop")))
    items = check_media(discover_media([videos] if isinstance(videos, str | Path) else list(videos)))
    photos = [str(m.path) for m in items if m.kind != "video"]
    if photos:
        raise HashingError(f"{photos[0]} is a photo, not a video; add photos with images", param="images")
    total = sum(-(-(m.frames or 1) // frame_step) for m in items)
    advance = _stage(progress, "embedding video frames", total)
    parts: list[np.ndarray] = []
    sources: list[str] = []
    resolved = {str(m.path): str(m.path.resolve()) for m in items}
    for crops, emb in face_batches(items, lambda x: model.embed(x, batch_size=batch_size),
                                   image_size=model.image_size, channels=model.in_channels,
                                   settings=settings, progress=advance):  # fmt: skip
        faces = [c for c in crops if c.face is not None]
        if faces:
            parts.append(emb)
            sources.extend(video_source(resolved[c.source], c.frame, c.face.face_id) for c in faces)  # type: ignore[union-attr]
    embeddings = np.concatenate(parts) if parts else np.zeros((0, model.embedding_dim), np.float32)
    labels = class_names = None
    if label is not None:
        if not str(label).strip():
            raise HashingError("label must be a non-empty class name", param="label")
        labels, class_names = np.zeros(len(embeddings), np.int64), [str(label).strip()]
    return Embedded(embeddings, sources, labels, [], class_names, None, model_metadata(model))


def _labels_from_data(y: Any) -> np.ndarray:
    arr = y.numpy() if hasattr(y, "numpy") else np.asarray(y)
    if arr.ndim == 2 and not np.isin(arr, (0, 1)).all():  # soft (probability) targets: majority class
        return arr.argmax(axis=1).astype(np.int64)
    return arr.astype(np.uint8) if arr.ndim == 2 else arr.astype(np.int64)


def embed_dataset(
    model: Any,
    spec: str | Any,
    *,
    split: str = "train",
    n: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> Embedded:
    """Embed a split (``train``, ``test`` or ``all``) of a data spec (``synth:fer``,
    ``folder:/faces`` ...: :func:`automl.data.load_data`) or of an in-memory
    :class:`~automl.data.FaceData` (:func:`automl.face_data`), labels and class names included.

    Sources: the absolute path of each item's file when the data set was read from files
    (``folder:``, ``rafdb:`` ...: :meth:`FaceData.sources`), else ``SPEC#SPLIT:i``. Such items
    have no file to show, so for a spec the load options are kept with the model metadata (an
    index built from it saves them as ``extra["source_data"]``): ``synth:`` faces are rendered
    deterministically, and the dashboard renders the same split again to show them (checked
    against the split's fingerprint, :func:`automl.data.synth_source.pixels_digest`)."""
    from automl.data import load_data
    from automl.data.spec import parse_spec
    from hashing.stream import embed_uint8

    if split not in SPLITS:
        raise HashingError(f"split must be train, test or all, not {split!r}", param="split")
    model = _model(model)
    loaded = isinstance(spec, str)
    if loaded:
        ds = load_data(spec, image_size=model.image_size, channels=model.in_channels, n=n, seed=seed)
    else:  # a FaceData: embed_uint8 resizes and converts channels to what the model expects
        ds, spec = spec, spec.name
    parts = {"train": [(ds.train_x, ds.train_y)], "test": [(ds.test_x, ds.test_y)]}
    parts["all"] = parts["train"] + parts["test"]
    xs = [x.numpy() for x, _ in parts[split]]
    advance = _stage(progress, "embedding", sum(len(x) for x in xs))
    emb = np.concatenate([embed_uint8(model, x, progress=advance) for x in xs])
    labels = np.concatenate([_labels_from_data(y) for _, y in parts[split]])
    names = [str(c) for c in ds.class_names]
    files = ds.sources(split) if hasattr(ds, "sources") else None
    about = model_metadata(model)
    if files is None and loaded:  # the load_data call that gives back the same rows
        about["source_data"] = {"spec": spec, "split": split, "image_size": int(model.image_size),
                                "channels": int(model.in_channels), "n": n, "seed": int(seed)}  # fmt: skip
        if parse_spec(spec)[0] == "synth":  # a changed generator renders other faces: never shown
            from automl.data.readers.synth import generator_hash
            from automl.data.synth_source import pixels_digest

            # The count rendered (not None: a later default would render other faces) and the
            # split's fingerprint, which the dashboard checks before showing any of its faces.
            about["source_data"].update(n=len(ds.train_x) + len(ds.test_x), generator=generator_hash(),
                                        pixels=pixels_digest(xs))  # fmt: skip
    return Embedded(
        emb,
        files if files is not None else [f"{spec}#{split}:{i}" for i in range(len(emb))],
        labels,
        class_names=names,
        label_names=names if labels.ndim == 2 else None,
        model=about,
    )


# -- building and growing -------------------------------------------------------------------------
@contextmanager
def _counting_refusals(index: HashIndex) -> Iterator[list[int]]:
    """Count the hash updates the hasher refuses in this block (robust BSODH's collapse guard)
    into ``box[0]``; the result reports them, so the Python warning itself is silenced."""
    box = [0]
    before = int(getattr(index.hasher, "refused_stages_", 0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CollapseWarning)
        yield box
    box[0] = int(getattr(index.hasher, "refused_stages_", 0)) - before


def model_metadata(model: Any) -> dict[str, Any]:
    """What an index keeps about the model that embedded its items (in ``extra``): the model's
    path, class names and task."""
    return {
        "model": str(Path(model.path).resolve()),
        "class_names": list(model.class_names),
        "task": model.task,
    }


def judge_index(index: HashIndex, embeddings: np.ndarray) -> dict[str, Any]:
    """Code collapse of the whole index and embedding collapse of what was just fed in
    (:func:`automl.learning_checks.check_index`), kept in ``index.extra`` (saved with the index
    and copied into its store row) and returned."""
    from automl.learning_checks import check_index

    signal = check_index(index.codes, n_bits=index.n_bits, labels=index.labels, embeddings=embeddings)
    index.extra[SIGNAL_KEY] = signal
    return signal


def make_hasher(
    hasher: str | OnlineHasher = "BSODH",
    *,
    bits: int = 64,
    preset: str | None = "cifar10",
    seed: int = 0,
    params: dict[str, Any] | None = None,
) -> OnlineHasher:
    """The hasher an index will learn: a registered name built with ``bits``, ``seed``, BSODH's
    ``preset`` and ``params``, or an instance used as it is. Bad choices -> HashingError."""
    if isinstance(hasher, OnlineHasher):
        made = create_hasher(hasher, **(params or {}))
    else:
        spec = hasher_spec(hasher)
        defaults: dict[str, Any] = {"n_bits": bits, "seed": seed}
        if preset is not None and spec.name == "BSODH":
            defaults["preset"] = preset
        made = create_hasher(spec.name, **{**defaults, **(params or {})})
    if made.n_bits % 8:
        raise HashingError(
            f"bits must be a multiple of 8 for a FAISS binary index, not {made.n_bits}", param="bits"
        )
    return made


def bsodh_params(
    hasher: str | OnlineHasher,
    *,
    mode: str = "robust",
    eta_s: float | None = None,
    eta_d: float | None = None,
    replay: int | None = None,
) -> dict[str, Any]:
    """BSODH's options from the command line as hasher parameters: ``mode`` (robust or paper),
    ``eta_s``, ``eta_d`` (given: used as is, ``balance="fixed"``; else robust mode derives it from
    the stream) and ``replay``. Options other than the default mode for another hasher are an
    error rather than silently ignored."""
    given = {k: v for k, v in (("eta_s", eta_s), ("eta_d", eta_d), ("replay", replay)) if v is not None}
    flags = {"eta_s": "--eta-s", "eta_d": "--eta-d", "replay": "--replay", "mode": "--mode"}
    name = hasher if isinstance(hasher, str) else type(hasher).__name__
    if str(name).lower() != "bsodh":
        named = [flags[k] for k in sorted(given)] + (["--mode"] if mode != "robust" else [])
        if named:
            raise HashingError(
                f"{', '.join(named)} {'is a BSODH option' if len(named) == 1 else 'are BSODH options'}; "
                f"drop {'it' if len(named) == 1 else 'them'} or use --hasher BSODH (not {name})",
                param="hasher",
            )
        return {}
    if mode == "paper" and "replay" in given:
        raise HashingError(
            "--replay applies to robust mode only (paper mode has no replay); drop --replay or --mode paper",
            param="replay",
        )
    params: dict[str, Any] = {"mode": mode, **given}
    if eta_d is not None:
        params["balance"] = "fixed"
    return params


def check_build(
    *,
    batch_size: int = 2000,
    refresh_every: int = 1,
    eval_queries: int = 0,
    hasher: str | OnlineHasher = "BSODH",
    bits: int = 64,
    preset: str | None = "cifar10",
    seed: int = 0,
    hasher_params: dict[str, Any] | None = None,
    lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
) -> OnlineHasher:
    """Check :func:`build_index`'s options before any embedding work; returns the hasher."""
    check_batch_size(batch_size)
    check_lock_timeout(lock_timeout)
    if isinstance(refresh_every, bool) or not isinstance(refresh_every, int) or refresh_every < 1:
        raise HashingError(f"refresh_every must be at least 1, not {refresh_every!r}", param="refresh_every")
    if isinstance(eval_queries, bool) or not isinstance(eval_queries, int) or eval_queries < 0:
        raise HashingError(
            f"eval_queries must be 0 (off) or more, not {eval_queries!r}", param="eval_queries"
        )
    return make_hasher(hasher, bits=bits, preset=preset, seed=seed, params=hasher_params)


def build_index(
    embedded: Embedded,
    out: str | Path,
    *,
    model: Any = None,
    hasher: str | OnlineHasher = "BSODH",
    bits: int = 64,
    preset: str | None = "cifar10",
    hasher_params: dict[str, Any] | None = None,
    batch_size: int = 2000,
    refresh_every: int = 1,
    eval_queries: int = 0,
    seed: int = 0,
    shuffle: bool = True,
    lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
    progress: Progress | None = None,
) -> IndexUpdate:
    """Learn a hasher on the (labelled part of the) stream in batches of ``batch_size``, index
    it and save it to the new directory ``out``.

    ``shuffle`` (default) streams the items in a random order (``seed``): readers list files
    class by class, and a class-sorted stream teaches an online hash far less (MNIST-5k, 64 bits,
    robust BSODH: mAP 0.80 shuffled vs 0.64 sorted). Item ids stay the items' positions in
    ``embedded``, whatever the order they were learned in.

    ``model`` (default: the one that embedded ``embedded``) is recorded in ``extra``.
    ``hasher``: a registered name (``bits``, ``seed``, BSODH's ``preset`` and ``hasher_params``
    build it) or a hasher instance (used as it is). ``eval_queries > 0`` holds that many random
    labelled samples out and records the mAP over the stream after every hash update
    (``extra["stream_map"]``). Saving refuses a directory that already holds an index.
    """
    made = check_build(
        batch_size=batch_size,
        refresh_every=refresh_every,
        eval_queries=eval_queries,
        hasher=hasher,
        bits=bits,
        preset=preset,
        seed=seed,
        hasher_params=hasher_params,
        lock_timeout=lock_timeout,
    )
    emb, labels, sources = embedded.embeddings, embedded.labels, embedded.sources
    if len(emb) == 0:
        raise HashingError("no face could be embedded (see the skipped images); nothing to index")
    recorder = None
    if eval_queries:
        (emb, labels, sources), queries = hold_out_queries(emb, labels, sources, eval_queries, seed)
        recorder = StreamMapRecorder(*queries)
    index = HashIndex(made, emb.shape[1], refresh_every=refresh_every)
    index.extra = model_metadata(model) if model is not None else dict(embedded.model)
    if embedded.class_names is not None:  # the vocabulary: the data set's or the labels CSV's names
        index.extra["class_names"] = list(embedded.class_names)
    elif labels is None:  # no labels: the model's class names would pass for a vocabulary
        index.extra.pop("class_names", None)
    if labels is not None and labels.ndim == 2 and embedded.label_names:
        index.extra["label_names"] = list(embedded.label_names)
    ids = np.arange(len(emb))
    if shuffle:  # learning order only: ids stay the input positions
        ids = np.random.default_rng(seed).permutation(len(emb))
        emb, labels, sources = emb[ids], None if labels is None else labels[ids], [sources[i] for i in ids]
    advance = _stage(progress, "hashing + indexing", len(emb))
    with _counting_refusals(index) as refused:
        index.add_batches(
            emb,
            labels=labels,
            sources=sources,
            ids=ids,
            batch_size=batch_size,
            after_batch=recorder,
            progress=advance,
        )
    index.sort_by_id()  # rows in input order again
    if recorder is not None:
        recorder.save_to(index)
    signal = judge_index(index, emb)
    index.save(out, lock_timeout=lock_timeout)
    history = recorder.history if recorder is not None else []
    return IndexUpdate(
        index, Path(out), signal, len(emb), labels is not None, history, eval_queries, refused[0]
    )


def add_to_index(
    directory: str | Path,
    embedded: Embedded,
    *,
    batch_size: int = 2000,
    lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
    purpose: str | None = "automl.retrieval.add_to_index",
    progress: Progress | None = None,
) -> IndexUpdate:
    """Add faces to a saved index as one writer: the directory's lock is held from load to save
    (a concurrent writer waits up to ``lock_timeout`` seconds), labelled batches update the hash
    and re-encode the collection, and the new generation replaces the old atomically -- on any
    failure the saved index stays exactly as it was.

    The stream-mAP curve of the build (``extra["stream_map"]``) is carried over unchanged: the
    held-out queries are not kept with the index.
    """
    batch_size = check_batch_size(batch_size)
    check_lock_timeout(lock_timeout)
    emb, labels = embedded.embeddings, embedded.labels
    if len(emb) == 0:
        raise HashingError("no face could be embedded (see the skipped images); the index is unchanged")
    root = Path(directory)
    import scipy.stats  # noqa: F401 (the learning checks' slow first import: not while holding the lock)

    with lock_index(root, timeout=lock_timeout, purpose=purpose):
        index = HashIndex.load(root)
        if emb.shape[1] != index.dim:
            raise HashingError(
                f"the model embeds {emb.shape[1]}-d features but the index holds {index.dim}-d ones"
            )
        known = list(index.extra.get("class_names") or [])
        again = len(set(index.sources) & set(embedded.sources)) if index.sources else 0
        labels = _labels_for_index(index, embedded)  # under the lock: the vocabulary grows here
        grown_names = [n for n in index.extra.get("class_names") or [] if n not in set(known)]
        advance = _stage(progress, "hashing + indexing", len(emb))
        with _counting_refusals(index) as refused:
            index.add_batches(
                emb, labels=labels, sources=embedded.sources, batch_size=batch_size, progress=advance
            )
        if (
            labels is not None
            and labels.ndim == 2
            and embedded.label_names
            and "label_names" not in index.extra
        ):
            index.extra["label_names"] = list(embedded.label_names)
        signal = judge_index(index, emb)
        index.save(root, lock_timeout=lock_timeout)
    return IndexUpdate(
        index,
        root,
        signal,
        len(emb),
        labels is not None,
        refused=refused[0],
        new_classes=grown_names,
        readded=again,
    )


def _labels_for_index(index: HashIndex, embedded: Embedded) -> np.ndarray | None:
    """``embedded``'s labels in the index's own vocabulary, which grows here.

    Class labels with names (a labels CSV, a data set): a name the index knows
    (``extra["class_names"]``) keeps its id, a new name is appended with the next id
    (:func:`hashing.stream.merge_vocabulary`); ids of an index's classes that have no name are
    named by their number. An index without class labels yet starts a vocabulary. Multi-label
    rows are matched to the index's columns (``extra["label_names"]``) by name, and a missing or
    unknown column is refused (:func:`hashing.stream.align_label_columns`). Labels without names
    (an :class:`Embedded` made by hand) are taken as the index's ids.
    """
    from hashing.stream import align_label_columns, merge_vocabulary

    if embedded.labels is None:
        return None
    labels, width = np.asarray(embedded.labels), index.label_width
    if labels.ndim == 2:
        if width == 0:
            raise HashingError("the index holds single-label classes, but these labels are 0/1 columns")
        names = index.extra.get("label_names") if width else None
        if names and embedded.label_names:
            return align_label_columns(names, embedded.label_names, labels)
        return labels
    if embedded.class_names is None:
        return labels
    if width:
        columns = ", ".join(map(str, index.extra.get("label_names") or []))
        raise HashingError(
            f"the index holds multi-label rows ({columns}); these labels are single classes: give a "
            "CSV with the index's label columns"
        )
    known: list[str] = []
    if width == 0:
        known = [str(n) for n in index.extra.get("class_names") or []]
        known += [str(i) for i in range(len(known), int(index.labels.max(initial=-1)) + 1)]
    vocab, ids = merge_vocabulary(known, [str(n) for n in embedded.class_names])
    if labels.size and int(labels.max()) >= len(ids):
        raise HashingError(f"class label {int(labels.max())} has no name among {len(ids)} class names")
    index.extra["class_names"] = vocab
    return np.where(labels >= 0, ids[np.clip(labels, 0, None)], -1)


# -- querying -------------------------------------------------------------------------------------
def query_image(
    directory: str | Path,
    image: str | Path,
    *,
    k: int | None = None,
    radius: int | None = None,
    model: str | Path | None = None,
    detect: bool = True,
) -> tuple[HashIndex, Neighbours]:
    """The indexed faces nearest a photo: the ``k`` nearest (default 10; more than the index
    holds returns all of them, ``answer.clamped``) or all within Hamming ``radius``, not both.
    ``model`` defaults to the one the index was built with."""
    from hashing.stream import embed_query, load_model

    if k is not None and radius is not None:
        raise HashingError(
            "give k or radius, not both: radius returns every item within it", param="k,radius"
        )
    if k is not None:
        check_k(k)
    if radius is not None:
        check_radius(radius)
    if not Path(image).is_file():
        raise HashingError(f"query image {image} not found", param="image")
    index = HashIndex.load(directory)
    m = load_model(model or index.extra.get("model") or "")
    if m.embedding_dim != index.dim:
        raise HashingError(
            f"the model embeds {m.embedding_dim}-d features but the index holds {index.dim}-d ones"
        )
    emb = embed_query(m, Path(image), detect=detect)
    return index, index.neighbours(emb, k=k, radius=radius)


# -- the store ------------------------------------------------------------------------------------
class IndexNotRecordedError(UserError):
    """The index was saved (complete and usable) but the store could not record it."""

    def __init__(self, message: str, *, root: Path) -> None:
        super().__init__(message)
        self.root = root


def index_record_extra(index: HashIndex, details: dict[str, Any]) -> dict[str, Any]:
    """The ``extra`` JSON of an ``automl_indexes`` row, as the dashboard reads it."""
    st = index.stats()
    extra = {
        "model": index.extra.get("model"),
        "task": index.extra.get("task"),
        "generation": st["generation"],
        "hash_updates": st["hash_updates"],
        "labelled_items": st["labelled_items"],
        "stale_updates": st["stale_updates"],
        "refresh_every": st["refresh_every"],
        "dim": st["dim"],
        **details,
    }
    if SIGNAL_KEY in index.extra:
        extra[SIGNAL_KEY] = index.extra[SIGNAL_KEY]
    if STREAM_MAP_KEY in index.extra:
        extra[STREAM_MAP_KEY] = index.extra[STREAM_MAP_KEY]
        extra[STREAM_MAP_QUERIES_KEY] = index.extra.get(STREAM_MAP_QUERIES_KEY)
    return extra


def generation_sha256(root: str | Path, index: HashIndex | None = None) -> str:
    """What identifies one saved generation: the sha256 of its ``manifest.json``.

    The manifest is the commit point of :meth:`HashIndex.save` (written last, atomically
    replaced) and lists the generation number, counts, ``extra`` and the size + sha256 of every
    part file, so its hash covers the whole directory the way a Merkle root does. An index that
    was just loaded or saved knows the hash of *its* manifest (``index.manifest_sha256``), which
    stays right even if another writer has saved a newer generation since.
    """
    if index is not None and index.manifest_sha256:
        return index.manifest_sha256
    from automl.store.repository import file_sha256

    return file_sha256(Path(root) / MANIFEST)


def _safe_url(url: str) -> str:
    """The store URL without its password, for error messages."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from automl.redact import safe_url
    from automl.store.engine import normalize_url

    try:
        make_url(normalize_url(url))
    except ArgumentError:
        return "(invalid URL)"
    return safe_url(normalize_url(url))


def record_index(db_url: str, root: str | Path, index: HashIndex, details: dict[str, Any]) -> int:
    """Add one ``automl_indexes`` row for the generation of ``index`` saved in ``root``; its id.

    Call it after the save succeeded. A store failure cannot undo the save (and must not: the
    index is good), so it is :class:`IndexNotRecordedError`: one line saying the index was saved
    but not recorded, and why (passwords hidden).
    """
    from sqlalchemy.exc import SQLAlchemyError

    from automl.redact import redact
    from automl.store import open_store

    root = Path(root)
    store = None
    try:
        sha = generation_sha256(root, index)
        store = open_store(db_url)
        return store.add_index(
            root, sha256=sha, bits=index.n_bits, size=len(index), extra=index_record_extra(index, details)
        )
    except (UserError, SQLAlchemyError, OSError) as exc:
        why = redact(" ".join(str(getattr(exc, "orig", None) or exc).split()) or type(exc).__name__)
        shown = _safe_url(db_url)
        where = "" if shown in why else f" {shown}"
        raise IndexNotRecordedError(
            f"index saved to {root} (complete and usable) but not recorded in the store{where}: {why}",
            root=root,
        ) from None
    finally:
        if store is not None:
            store.close()


def record_saved_index(db_url: str, directory: str | Path) -> tuple[int, bool]:
    """Record an already-saved generation (e.g. after the store was unreachable): the index is
    loaded and verified first, so only a complete, intact generation gets a row, and one the
    store already holds (same path and manifest sha256) is not recorded twice. Returns
    ``(row id, already recorded)``."""
    from automl.store import open_store

    root = Path(directory)
    index = HashIndex.load(root, verify=True)
    sha = generation_sha256(root, index)
    store = open_store(db_url)
    try:
        path = str(root.resolve())
        known = [r for r in store.list_indexes() if r["path"] == path and r["sha256"] == sha]
    finally:
        store.close()
    if known:
        return int(known[0]["id"]), True
    return record_index(db_url, root, index, {"command": "record"}), False
