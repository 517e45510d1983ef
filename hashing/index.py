"""A FAISS binary index that follows an online hasher: raw embeddings, codes, metadata, refresh.

The index keeps every item's raw embedding (float16, memory-mapped segments), its packed code,
its id, source path and labels. Labelled additions update the hasher (BSODH by default, or any
registered hasher whose hash function is linear, see :mod:`hashing.registry`); the codes of the
*whole* collection are then re-encoded, either after every update or every ``refresh_every``
updates. Between refreshes, items and queries are encoded with the same frozen snapshot of the
hash function (:class:`~hashing.base.LinearEncoder`), so results stay consistent; ``stats()``
reports how many updates the codes lag behind.

Search uses ``faiss.IndexBinaryFlat`` (exact Hamming k-NN and radius search), rebuilt from the
codes array, which is the source of truth; with a GPU build of faiss and a visible GPU, k-NN
queries go to ``GpuIndexBinaryFlat`` (radius search stays on the CPU index, which the GPU index
lacks). A k-NN query asking for more neighbours than the index holds gets every item:
``k`` is clamped to the index size and the result says so (``SearchResult.clamped``), because
an index grows and "more than there is" is not a mistake worth an error.

On disk an index is a directory: immutable ``emb-*.npy`` embedding segments, generation-tagged
arrays (codes, ids, labels, hasher state), ``sources.gN.json`` and ``manifest.json`` with bits,
dims, counts, the hasher's registered name and the size + sha256 of every file. Loading reads
only JSON and ``.npy``/``.npz`` with ``allow_pickle=False`` and never imports anything a manifest
names: the hasher is looked up in the registry.

Writers (:meth:`HashIndex.save`, and whoever wraps load -> change -> save in
:meth:`HashIndex.locked`) hold the directory's exclusive lock (:mod:`hashing.locking`), so two
writers never interleave; a second one waits (10 minutes by default) or fails with
:class:`~hashing.errors.IndexLockedError` saying who holds it. Under the lock a writer first
removes what a killed writer left behind (index files no manifest refers to, temporary files),
then checks that the generation on disk is still the one it loaded -- otherwise it would drop
the other writer's items -- and refuses with :class:`~hashing.errors.IndexConflictError`,
writing nothing. Saving writes the new generation's files, then replaces the manifest atomically
(:func:`automl.atomic.atomic_write_bytes`: unique temp name, fsync, umask-respecting mode), then
deletes files no manifest refers to; if anything fails before the manifest is replaced the new
files are removed and the directory is unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from automl.atomic import atomic_write_bytes, is_temp_name, remove_orphan_temps
from hashing.base import LinearEncoder, OnlineHasher, check_features, check_labels
from hashing.errors import HashingError, IndexConflictError, IndexFormatError, UnknownHasherError
from hashing.locking import DEFAULT_LOCK_TIMEOUT, DirectoryLock, lock_files
from hashing.registry import create_hasher, hasher_spec, registered_name

FORMAT = "face-automl/hash-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
LEGACY_HASHER = "BSODH"  # manifests written before the registry only ever held BSODH
_OWNED = re.compile(r"^(emb-[0-9a-f]+\.npy|(codes|ids|labels|hasher|encoder|sources)\.g\d+\.(npy|npz|json))$")
_LOAD_ATTEMPTS = 5  # a reader racing a writer's commit re-reads the new manifest


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def gpu_available() -> bool:
    """True when this faiss build has GPU binary indexes and a GPU is visible."""
    return hasattr(faiss, "GpuIndexBinaryFlat") and getattr(faiss, "get_num_gpus", lambda: 0)() > 0


# -- argument bounds (shared with the command line, which maps ``param`` to its flag) -----------
def _whole_number(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise HashingError(f"{name} must be a whole number, not {value!r}", param=name)
    return int(value)


def check_batch_size(batch_size: object) -> int:
    """Items per stream batch (one hash update each): at least 1."""
    n = _whole_number(batch_size, "batch_size")
    if n < 1:
        raise HashingError(
            f"batch_size must be at least 1 (got {n}): it is how many items each hash update learns from",
            param="batch_size",
        )
    return n


def check_k(k: object) -> int:
    """Neighbours per query: at least 1 (more than the index holds is clamped by the search)."""
    n = _whole_number(k, "k")
    if n < 1:
        raise HashingError(f"k must be at least 1 (got {n}): ask for 1 or more neighbours", param="k")
    return n


def check_radius(radius: object) -> int:
    """A Hamming radius: 0 (identical codes only) or more."""
    n = _whole_number(radius, "radius")
    if n < 0:
        raise HashingError(f"radius must be 0 or more (got {n}): it is a Hamming distance", param="radius")
    return n


def _tie_counter(
    db_codes: np.ndarray, query_codes: np.ndarray, distances: np.ndarray, maybe: np.ndarray
) -> np.ndarray | Callable[[], np.ndarray]:
    """``SearchResult.ties_beyond``: zeros where no query ``maybe`` ties, else a function that
    counts, for those queries, the items of ``db_codes`` (the array the search saw) within the
    k-th distance, minus k -- a popcount in blocks of queries, run when first asked for."""
    nq, k = distances.shape
    if not maybe.any():
        return np.zeros(nq, np.int64)
    rows = np.flatnonzero(maybe)
    q, kth = query_codes[rows].copy(), distances[rows, k - 1].astype(np.int64)

    def count() -> np.ndarray:
        from hashing.metrics import hamming_distances

        out = np.zeros(nq, np.int64)
        step = max(1, (1 << 22) // max(1, len(db_codes)))
        for s in range(0, len(rows), step):
            d = hamming_distances(q[s : s + step], db_codes)
            out[rows[s : s + step]] = (d <= kth[s : s + step, None]).sum(axis=1) - k
        return out

    return count


@dataclass
class SearchResult:
    """k-NN answer for a batch of queries: ids (-1 = no item) and Hamming distances, (nq, k').

    ``k'`` is ``min(k_requested, len(index))``; ``clamped`` says the index held fewer items than
    asked for (every item is then in the answer).

    Ties: items at the same distance are returned in position order (the order they were added,
    as FAISS's exact CPU search breaks ties; the GPU index's selection may pick other tied items,
    the counts stay the same), so when the k'-th distance is shared by items that did not fit,
    *which* of them made the cut is arbitrary. ``ties_beyond[i]`` (int64, (nq,)) counts,
    for query ``i``, the index items left out of the answer at exactly its k'-th distance (0: the
    cut is clean; always 0 when clamped). A radius answer has none (``None``): a Hamming ball
    holds every item at each distance it covers.

    Cost: the search fetches one neighbour more than asked, which settles every query whose next
    item is farther (0); the others are counted by a popcount over the codes the search saw, done
    on first access of ``ties_beyond`` only, so a search that never asks pays nothing for it.
    """

    ids: np.ndarray
    distances: np.ndarray
    k_requested: int = 0
    _ties: Any = field(default=None, repr=False, compare=False)  # an array, or how to count it

    @property
    def ties_beyond(self) -> np.ndarray | None:
        """(nq,) int64: items beyond the answer at its last distance (None: a radius answer)."""
        if callable(self._ties):
            self._ties = self._ties()
        return self._ties

    @property
    def clamped(self) -> bool:
        return self.ids.ndim == 2 and self.k_requested > self.ids.shape[1]


@dataclass
class Neighbours:
    """One query's answer, ready to print: ``rows`` of rank, id, distance, source, label and
    ``tied`` (the row sits at the last row's distance and ``ties_beyond`` > 0: other items at
    that distance could have taken its place).

    ``ties_beyond``: for a k-NN answer, how many index items beyond the rows returned sit at the
    same distance as the last one (:class:`SearchResult`; ties go by position, i.e. the items
    added first are returned); 0 for a radius answer, which cuts no distance.
    """

    rows: list[dict[str, Any]]
    k: int | None  # the k asked for (None for a radius query)
    radius: int | None
    index_size: int
    ties_beyond: int = 0

    @property
    def tie_distance(self) -> int | None:
        """The distance at which the answer cuts a tie (the last row's), or None."""
        return self.rows[-1]["distance"] if self.ties_beyond and self.rows else None

    @property
    def clamped(self) -> bool:
        """k was more than the index holds: every item was returned."""
        return self.k is not None and self.k > self.index_size


class HashIndex:
    """Online-hashed retrieval index over embeddings (see the module docstring).

    ``hasher``: an :class:`~hashing.base.OnlineHasher` instance or a registered name
    (``"BSODH"``, ``"OSH"``, ...; ``hasher_params`` are then its parameters, e.g.
    ``{"n_bits": 64, "preset": "cifar10"}``). BSODH centres and scales its inputs itself; the
    baselines take embeddings as given, as in the benchmark protocol (unit-length rows suit them).
    """

    def __init__(
        self,
        hasher: OnlineHasher | str,
        dim: int,
        *,
        hasher_params: dict[str, Any] | None = None,
        refresh_every: int = 1,
        device: str = "auto",
    ) -> None:
        hasher = create_hasher(hasher, **(hasher_params or {}))
        if not hasher.linear:
            hasher.export_encoder()  # raises the one-line "cannot back an index" error
        if hasher.n_bits % 8:
            raise HashingError(f"FAISS binary indexes need a multiple of 8 bits, got {hasher.n_bits}")
        if (
            isinstance(refresh_every, bool)
            or not isinstance(refresh_every, (int, np.integer))
            or refresh_every < 1
        ):
            raise HashingError(f"refresh_every must be >= 1, got {refresh_every}", param="refresh_every")
        if device not in ("auto", "cpu", "gpu"):
            raise HashingError(f"device must be auto, cpu or gpu, got {device!r}")
        if device == "gpu" and not gpu_available():
            raise HashingError("device='gpu' but this faiss build has no GPU support or no GPU is visible")
        self.hasher = hasher
        self.dim = int(dim)
        self.n_bits = hasher.n_bits
        self.refresh_every = int(refresh_every)
        self.device = device
        self.encoder: LinearEncoder | None = None
        self.ids = np.zeros(0, np.int64)
        self.sources: list[str] = []
        self.labels: np.ndarray | None = None  # (N,) int64 or (N, A) int8; -1 = unlabelled
        self.codes = np.zeros((0, self.n_bits // 8), np.uint8)
        self._segments: list[np.ndarray] = []  # float16 (rows, dim) arrays / memmaps
        self._segment_files: list[str | None] = []  # file name once saved (segments are immutable)
        self.next_id = 0
        self.n_updates = 0
        self.updates_since_refresh = 0
        self.generation = 0
        self.extra: dict[str, Any] = {}  # free-form JSON metadata (e.g. the embedding model)
        self.manifest_sha256: str | None = None  # of the manifest last loaded or saved
        self._bases: dict[str, int] = {}  # directory -> generation this copy was loaded/saved as
        self._faiss: Any = None
        self._gpu: Any = None

    # -- sizes ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @property
    def label_width(self) -> int | None:
        """None: no labels yet; 0: single-label classes; A: multi-label width."""
        if self.labels is None:
            return None
        return 0 if self.labels.ndim == 1 else int(self.labels.shape[1])

    @property
    def hasher_name(self) -> str:
        """The hasher's registered name (what the manifest stores), or its class name."""
        try:
            return registered_name(self.hasher)
        except UnknownHasherError:
            return type(self.hasher).__name__

    def embeddings(self) -> list[np.ndarray]:
        """The float16 embedding segments, in item order."""
        return list(self._segments)

    # -- building -------------------------------------------------------------------------------
    def add(
        self,
        embeddings: object,
        *,
        sources: list[str] | None = None,
        labels: object = None,
        ids: object = None,
        learn: bool = True,
    ) -> np.ndarray:
        """Add items; labelled batches update the hasher (``learn``; an unsupervised hasher
        learns from every batch), then codes are refreshed if due. Returns the new ids. Nothing
        changes if validation fails."""
        X = check_features(embeddings, self.dim, what="embeddings")
        n = X.shape[0]
        X16 = X.astype(np.float16)
        if not np.isfinite(X16).all():
            raise HashingError("embeddings overflow float16 (|value| > 65504); rescale the features")
        src = list(sources) if sources is not None else [""] * n
        if len(src) != n:
            raise HashingError(f"got {len(src)} source paths for {n} embeddings")
        y = None
        if labels is not None:
            width = self.label_width
            y = check_labels(labels, n, width if width is not None else self.hasher.n_labels_)
        new_ids = self._new_ids(ids, n)

        if self.encoder is None:  # first data: fix the width (and e.g. a centring mean)
            self.hasher.initialize(X)
        if learn and (y is not None or not self.hasher.supervised):
            self.hasher.partial_fit(X, y)
            self.n_updates += 1
            self.updates_since_refresh += 1
        if self.encoder is None:
            self.encoder = self.hasher.export_encoder()

        self._segments.append(X16)
        self._segment_files.append(None)
        self.ids = np.concatenate([self.ids, new_ids])
        self.sources.extend(src)
        self._append_labels(y, n)
        self.next_id = max(self.next_id, int(new_ids.max()) + 1)
        if self.updates_since_refresh >= self.refresh_every:
            self.refresh()
        else:
            new_codes = self.encoder.encode(self._segments[-1], validate=False)
            self.codes = np.concatenate([self.codes, new_codes])
            self._rebuild_faiss()
        return new_ids

    def add_batches(
        self,
        embeddings: object,
        *,
        labels: object = None,
        sources: list[str] | None = None,
        ids: object = None,
        batch_size: int = 2000,
        after_batch: Callable[[HashIndex], None] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Feed a stream in batches of ``batch_size`` (one hash update per labelled batch;
        ``ids``: the items' ids, default the next free ones);
        ``after_batch(index)`` runs after each (e.g. :class:`hashing.evaluation.StreamMapRecorder`)
        and ``progress(n)`` reports the items added. Shapes are checked before the first batch."""
        batch_size = check_batch_size(batch_size)
        X = np.asarray(embeddings)
        if X.ndim != 2 or X.shape[0] == 0:
            raise HashingError(
                f"embeddings must be a non-empty (n_items, {self.dim}) array, got shape {X.shape}"
            )
        n = X.shape[0]
        if X.shape[1] != self.dim:
            check_features(X[:1], self.dim, what="embeddings")  # the usual width message
        if sources is not None and len(sources) != n:
            raise HashingError(f"got {len(sources)} source paths for {n} embeddings")
        y = None if labels is None else np.asarray(labels)
        if y is not None and y.shape[:1] != (n,):
            raise HashingError(f"got {y.shape[0] if y.ndim else 0} labels for {n} embeddings")
        new: list[np.ndarray] = []
        for s in range(0, n, batch_size):
            part = slice(s, s + batch_size)
            new.append(
                self.add(
                    X[part],
                    labels=None if y is None else y[part],
                    sources=None if sources is None else list(sources[part]),
                    ids=None if ids is None else np.asarray(ids)[part],
                )
            )
            if after_batch is not None:
                after_batch(self)
            if progress is not None:
                progress(min(batch_size, n - s))
        return np.concatenate(new)

    def _new_ids(self, ids: object, n: int) -> np.ndarray:
        if ids is None:
            return np.arange(self.next_id, self.next_id + n, dtype=np.int64)
        arr = np.asarray(ids)
        if arr.shape != (n,) or arr.dtype.kind not in "iu":
            raise HashingError(f"ids must be {n} integers")
        arr = arr.astype(np.int64)
        if (arr < 0).any() or len(np.unique(arr)) != n or np.isin(arr, self.ids).any():
            raise HashingError("ids must be non-negative, unique and not already in the index")
        return arr

    def _append_labels(self, y: np.ndarray | None, n: int) -> None:
        if y is None:
            if self.labels is not None:
                fill = np.full((n,) + self.labels.shape[1:], -1, self.labels.dtype)
                self.labels = np.concatenate([self.labels, fill])
            return
        y = y.astype(np.int64) if y.ndim == 1 else y.astype(np.int8)
        if self.labels is None:  # earlier items were unlabelled
            self.labels = np.full((len(self) - n,) + y.shape[1:], -1, y.dtype)
        self.labels = np.concatenate([self.labels, y])

    def refresh(self) -> None:
        """Re-encode every item with the hasher's current function and rebuild the FAISS index."""
        if self.encoder is None:
            return
        self.encoder = self.hasher.export_encoder()
        parts = [self.encoder.encode(seg, validate=False) for seg in self._segments]
        self.codes = np.concatenate(parts) if parts else np.zeros((0, self.n_bits // 8), np.uint8)
        self.updates_since_refresh = 0
        self._rebuild_faiss()

    def sort_by_id(self) -> None:
        """Put the rows in id order (e.g. after a shuffled build, so that rows, sources and
        position-ordered ties follow the input order again); codes and ids are unchanged."""
        order = np.argsort(self.ids, kind="stable")
        if np.array_equal(order, np.arange(len(order))):
            return
        emb = np.concatenate(self._segments)[order]
        self._segments, self._segment_files = [emb], [None]
        self.ids, self.codes = self.ids[order], self.codes[order]
        self.sources = [self.sources[i] for i in order]
        if self.labels is not None:
            self.labels = self.labels[order]
        self._rebuild_faiss()

    def remove(self, ids: object) -> int:
        """Remove items by id; returns how many were present."""
        drop = np.isin(self.ids, np.asarray(ids, dtype=np.int64).ravel())
        n_drop = int(drop.sum())
        if n_drop == 0:
            return 0
        keep = ~drop
        emb = np.concatenate(self._segments)[keep] if self._segments else np.zeros((0, self.dim), np.float16)
        self._segments = [emb] if len(emb) else []
        self._segment_files = [None] if len(emb) else []
        self.ids = self.ids[keep]
        self.codes = self.codes[keep]
        self.sources = [s for s, k in zip(self.sources, keep, strict=True) if k]
        if self.labels is not None:
            self.labels = self.labels[keep]
        self._rebuild_faiss()
        return n_drop

    def _rebuild_faiss(self) -> None:
        index = faiss.IndexBinaryFlat(self.n_bits)
        if len(self):
            index.add(np.ascontiguousarray(self.codes))
        self._faiss = index
        self._gpu = None
        if self.device != "cpu" and gpu_available() and len(self):
            res = faiss.StandardGpuResources()
            gpu = faiss.GpuIndexBinaryFlat(res, self.n_bits)
            gpu.add(np.ascontiguousarray(self.codes))
            self._gpu = (res, gpu)

    # -- querying -------------------------------------------------------------------------------
    def encode_queries(self, embeddings: object) -> np.ndarray:
        """Codes for query embeddings, with the same snapshot the items were encoded with."""
        if self.encoder is None:
            raise HashingError("the index is empty: add items before querying")
        X = check_features(embeddings, self.dim, what="query embeddings")
        return self.encoder.encode(X.astype(np.float16), validate=False)

    def search(self, embeddings: object, k: int = 10) -> SearchResult:
        """k nearest items by Hamming distance (ties: lower position first, as FAISS returns them;
        ``ties_beyond`` counts the tied items the cut left out); ``k`` above the index size is
        clamped to it (see :class:`SearchResult`)."""
        k = check_k(k)
        return self.search_codes(self.encode_queries(embeddings), k)

    def search_codes(self, codes: np.ndarray, k: int = 10) -> SearchResult:
        """:meth:`search` for packed query codes (as :meth:`encode_queries` makes them)."""
        k = check_k(k)
        codes = np.ascontiguousarray(codes, dtype=np.uint8)
        if codes.ndim != 2 or codes.shape[1] != self.n_bits // 8:
            raise HashingError(f"query codes must be (n, {self.n_bits // 8}) uint8")
        k_eff = min(k, len(self))
        nq = len(codes)
        if k_eff == 0:
            return SearchResult(
                np.zeros((nq, 0), np.int64), np.zeros((nq, 0), np.int32), k, np.zeros(nq, np.int64)
            )
        gpu = self._gpu is not None and k_eff <= 2048
        # One neighbour more than asked (where there is one, and the GPU's k limit allows): where
        # it is farther than the k-th, the cut is clean.
        k_ask = k_eff + 1 if k_eff < len(self) and (not gpu or k_eff < 2048) else k_eff
        D, pos = (self._gpu[1] if gpu else self._faiss).search(codes, k_ask)
        if k_eff == len(self):
            maybe = np.zeros(nq, bool)  # every item returned: nothing lies beyond
        elif k_ask > k_eff:
            maybe = D[:, k_eff] == D[:, k_eff - 1]
        else:
            maybe = np.ones(nq, bool)
        D, pos = D[:, :k_eff], pos[:, :k_eff]
        found = pos >= 0
        out = np.full(pos.shape, -1, np.int64)
        out[found] = self.ids[pos[found]]
        return SearchResult(
            out, np.where(found, D, -1).astype(np.int32), k, _tie_counter(self.codes, codes, D, maybe)
        )

    def range_search(self, embeddings: object, radius: int) -> list[SearchResult]:
        """All items within Hamming distance ``<= radius`` of each query, nearest first (equal
        distances in position order); a ball cuts no tie, so ``ties_beyond`` is None."""
        radius = check_radius(radius)
        codes = self.encode_queries(embeddings)
        if len(self) == 0:
            return [SearchResult(np.zeros(0, np.int64), np.zeros(0, np.int32)) for _ in range(len(codes))]
        # FAISS keeps distances strictly below its radius argument.
        lims, D, pos = self._faiss.range_search(codes, int(radius) + 1)
        out = []
        for i in range(len(codes)):
            d, p = D[lims[i] : lims[i + 1]], pos[lims[i] : lims[i + 1]]
            order = np.lexsort((p, d))
            out.append(SearchResult(self.ids[p[order]], d[order].astype(np.int32)))
        return out

    def neighbours(self, embedding: object, *, k: int | None = None, radius: int | None = None) -> Neighbours:
        """The items nearest one query embedding (``(D,)`` or ``(1, D)``): the ``k`` nearest
        (default 10, clamped to the index size) or all within Hamming ``radius`` -- not both.
        Equal distances go in position order; ``ties_beyond`` and each row's ``tied`` say where
        the k-th distance is shared by items left out (:class:`Neighbours`)."""
        if k is not None and radius is not None:
            raise HashingError(
                "give k or radius, not both: radius returns every item within it", param="k,radius"
            )
        query = np.asarray(embedding, dtype=np.float64).reshape(1, -1)
        ties = 0
        if radius is not None:
            res = self.range_search(query, radius)[0]
            ids, dists = res.ids, res.distances
        else:
            k = check_k(10 if k is None else k)
            res = self.search(query, k)
            keep = res.ids[0] >= 0
            ids, dists = res.ids[0][keep], res.distances[0][keep]
            ties = int(res.ties_beyond[0]) if res.ties_beyond is not None else 0
        pos = self.position_of(ids) if len(ids) else np.zeros(0, np.int64)
        cut = int(dists[-1]) if ties and len(dists) else None
        rows = [
            {
                "rank": r,
                "id": int(i),
                "distance": int(d),
                "source": self.sources[p],
                "label": self.label_of(p),
                "tied": cut is not None and int(d) == cut,
            }
            for r, (i, d, p) in enumerate(zip(ids, dists, pos, strict=True), start=1)
        ]
        return Neighbours(rows, k, None if radius is None else int(radius), len(self), ties)

    def label_of(self, position: int) -> Any:
        """The label of the item at row ``position`` for display: its class name (or number), the
        names of its active labels (multi-label), or None when unlabelled."""
        if self.labels is None:
            return None
        names = list(self.extra.get("class_names") or [])
        lab = self.labels[position]
        if lab.ndim == 0:
            v = int(lab)
            return None if v < 0 else (names[v] if 0 <= v < len(names) else v)
        if (lab < 0).any():
            return None
        names = list(self.extra.get("label_names") or names)
        return [names[j] if j < len(names) else int(j) for j in np.flatnonzero(lab > 0)]

    def position_of(self, item_ids: np.ndarray) -> np.ndarray:
        """Row positions of ids (for metadata look-ups)."""
        sorter = np.argsort(self.ids)
        return sorter[np.searchsorted(self.ids, item_ids, sorter=sorter)]

    def stats(self) -> dict[str, Any]:
        labelled = (
            0 if self.labels is None else int((self.labels.reshape(len(self), -1) >= 0).all(axis=1).sum())
        )
        return {
            "items": len(self),
            "bits": self.n_bits,
            "dim": self.dim,
            "hasher": self.hasher_name,
            "labelled_items": labelled,
            "label_kind": {None: "none", 0: "classes"}.get(self.label_width, "multi-label"),
            "hash_updates": self.n_updates,
            "refresh_every": self.refresh_every,
            "stale_updates": self.updates_since_refresh,
            "codes_current": self.updates_since_refresh == 0,
            "hasher_items_learned": int(self.hasher.n_seen_),
            **self._hasher_settings(),
            "refused_updates": int(getattr(self.hasher, "refused_stages_", 0)),
            "hasher_stages": int(self.hasher.n_batches_),
            "generation": self.generation,
            "search_backend": "faiss GpuIndexBinaryFlat"
            if self._gpu is not None
            else "faiss IndexBinaryFlat",
            "embedding_bytes": int(sum(s.nbytes for s in self._segments)),
            **({"extra": self.extra} if self.extra else {}),
        }

    def _hasher_settings(self) -> dict[str, Any]:
        """What a user sets on BSODH and wants to see took effect (mode, etas, balance, replay,
        the eta_d the last update used); empty for other hashers."""
        h = self.hasher
        if not hasattr(h, "mode"):
            return {}
        out = {"hasher_mode": h.mode, "eta_s": h.eta_s, "eta_d": h.eta_d}
        if h.mode == "robust":
            out.update(balance=h.balance, replay=h.replay, replay_items=int(len(h.replay_pattern_)))
            if h.last_eta_d_ is not None:
                out["eta_d_last_update"] = round(float(h.last_eta_d_), 6)
        return out

    # -- persistence ----------------------------------------------------------------------------
    @staticmethod
    def locked(
        path: str | os.PathLike[str],
        *,
        timeout: float | None = DEFAULT_LOCK_TIMEOUT,
        create: bool = False,
        purpose: str | None = None,
    ) -> Any:
        """``with HashIndex.locked(path): load -> change -> save`` as one writer (see
        :func:`lock_index`)."""
        return lock_index(path, timeout=timeout, create=create, purpose=purpose)

    def save(
        self,
        path: str | os.PathLike[str],
        *,
        lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
        overwrite: bool = False,
    ) -> Path:
        """Save to directory ``path`` as its next generation, under the directory's writer lock
        (taken here unless this thread holds it already; ``lock_timeout`` seconds of waiting,
        None = forever). Refuses (:class:`IndexConflictError`, nothing written) when the index on
        disk is not the generation this copy was loaded from -- another writer saved in between --
        or, for a copy never loaded from ``path``, when ``path`` already holds an index (replace
        it with ``overwrite=True``)."""
        root = Path(path)
        if root.exists() and not root.is_dir():
            raise HashingError(f"{root} exists and is not a directory")
        name = registered_name(self.hasher)  # an unregistered hasher could never be loaded back
        _refuse_foreign_directory(root)
        with DirectoryLock(root, timeout=lock_timeout, create=True, purpose="HashIndex.save"):
            remove_orphans(root, new_index=True)
            _refuse_foreign_directory(root)
            old_manifest = _read_manifest_or_none(root)
            on_disk = int(old_manifest["generation"]) if old_manifest else 0
            self._check_generation(root, on_disk, overwrite)
            gen = max(self.generation, on_disk) + 1
            params, arrays = self.hasher.get_state()
            files, segments, written = self._write_parts(root, gen, old_manifest, arrays)
            manifest = self._manifest(gen, name, params, segments, files)
            self._commit(root, manifest, written, on_disk)
            # Committed: forget files no manifest refers to.
            for p in root.iterdir():
                if _OWNED.match(p.name) and p.name not in files:
                    p.unlink(missing_ok=True)
        self._segment_files = [seg["file"] for seg in segments]
        self.generation = gen
        self._bases[_key(root)] = gen
        return root

    def _check_generation(self, root: Path, on_disk: int, overwrite: bool) -> None:
        expected = self._bases.get(_key(root), 0)
        if on_disk == expected or overwrite:
            return
        if expected == 0:
            raise IndexConflictError(
                f"{root} already holds a saved index (generation {on_disk}); load it with "
                "HashIndex.load to add to it, or save with overwrite=True to replace it"
            )
        raise IndexConflictError(
            f"{root} changed since this copy was loaded (generation {expected} then, {on_disk} now: "
            "another writer saved in between); nothing was written -- load it again and redo the change"
        )

    def _write_parts(
        self, root: Path, gen: int, old_manifest: dict[str, Any] | None, hasher_arrays: dict[str, np.ndarray]
    ) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]], list[Path]]:
        """The new generation's part files: (manifest ``files``, ``segments``, paths written).
        A failure removes what it wrote, then re-raises."""
        written: list[Path] = []
        files: dict[str, dict[str, Any]] = {}
        old_files = (old_manifest or {}).get("files", {})

        def write(name: str, dump: Callable[[Any], None]) -> None:
            written.append(root / name)
            with open(root / name, "wb") as fh:
                dump(fh)
                fh.flush()
                os.fsync(fh.fileno())
            files[name] = {"bytes": (root / name).stat().st_size, "sha256": _sha256(root / name)}

        def npy(arr: np.ndarray) -> Callable[[Any], None]:
            return lambda fh: np.save(fh, np.ascontiguousarray(arr), allow_pickle=False)

        try:
            segments = []
            for seg, fname in zip(self._segments, self._segment_files, strict=True):
                if fname is None or fname not in old_files or not (root / fname).is_file():
                    fname = f"emb-{uuid.uuid4().hex}.npy"
                    write(fname, npy(seg))
                else:  # immutable and already saved here
                    files[fname] = old_files[fname]
                segments.append({"file": fname, "rows": int(seg.shape[0])})
            write(f"codes.g{gen}.npy", npy(self.codes))
            write(f"ids.g{gen}.npy", npy(self.ids))
            if self.labels is not None:
                write(f"labels.g{gen}.npy", npy(self.labels))
            write(f"hasher.g{gen}.npz", lambda fh: np.savez(fh, **hasher_arrays))
            write(f"encoder.g{gen}.npz", lambda fh: np.savez(fh, **self._encoder_arrays()))
            write(f"sources.g{gen}.json", lambda fh: fh.write(json.dumps(self.sources).encode("utf-8")))
        except BaseException:
            for p in written:
                p.unlink(missing_ok=True)
            raise
        return files, segments, written

    def _manifest(
        self,
        gen: int,
        hasher_name: str,
        hasher_params: dict[str, Any],
        segments: list[dict[str, Any]],
        files: dict[str, Any],
    ) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "generation": gen,
            "bits": self.n_bits,
            "dim": self.dim,
            "count": len(self),
            "labelled": self.labels is not None,
            "label_width": self.label_width,
            "next_id": self.next_id,
            "n_updates": self.n_updates,
            "updates_since_refresh": self.updates_since_refresh,
            "refresh_every": self.refresh_every,
            "device": self.device,
            "encoder_normalize": bool(self.encoder.normalize) if self.encoder else True,
            "hasher_name": hasher_name,
            "hasher": hasher_params,
            "segments": segments,
            "extra": self.extra,
            "files": files,
        }

    def _commit(self, root: Path, manifest: dict[str, Any], written: list[Path], on_disk: int) -> None:
        """Replace the manifest -- unless the generation on disk moved (a writer that ignored
        the lock): then remove the files this save wrote and refuse."""
        try:
            now = _read_manifest_or_none(root)
            if (int(now["generation"]) if now else 0) != on_disk:
                raise IndexConflictError(
                    f"{root} was saved by another writer while this one was writing (generation "
                    f"{on_disk} -> {now['generation'] if now else 0}); nothing was written -- load "
                    "it again and redo the change"
                )
            data = json.dumps(manifest, indent=1).encode("utf-8")
            atomic_write_bytes(root / MANIFEST, data)
        except BaseException:
            for p in written:
                p.unlink(missing_ok=True)
            raise
        self.manifest_sha256 = hashlib.sha256(data).hexdigest()

    def _encoder_arrays(self) -> dict[str, np.ndarray]:
        if self.encoder is None:
            return {}
        out = {"W": self.encoder.W}
        if self.encoder.mean is not None:
            out["mean"] = self.encoder.mean
        return out

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, verify: bool = True, device: str = "auto") -> HashIndex:
        """Load a saved index directory; any missing, truncated or corrupt part -> IndexFormatError.

        Takes no lock: when a writer commits a new generation while this reads the old one, the
        read is retried on the new manifest.
        """
        root = Path(path)
        for attempt in range(_LOAD_ATTEMPTS):
            raw, manifest = _read_manifest(root)
            try:
                index = cls._from_manifest(root, manifest, verify, device)
            except (IndexFormatError, KeyError, TypeError, ValueError, OSError) as exc:
                if attempt + 1 < _LOAD_ATTEMPTS and _manifest_bytes(root) != raw:
                    continue  # a writer committed meanwhile: read its generation instead
                if isinstance(exc, IndexFormatError):
                    raise
                raise IndexFormatError(f"index {root} is corrupt: {type(exc).__name__}: {exc}") from None
            index.manifest_sha256 = hashlib.sha256(raw).hexdigest()
            index._bases[_key(root)] = index.generation
            return index
        raise AssertionError("unreachable")

    @classmethod
    def _from_manifest(cls, root: Path, m: dict[str, Any], verify: bool, device: str) -> HashIndex:
        files = m["files"]
        for name, info in files.items():
            if not _OWNED.match(str(name)):
                raise IndexFormatError(f"index {root} manifest lists a file it never writes: {name!r}")
            p = root / name
            if not p.is_file():
                raise IndexFormatError(f"index {root} is missing {name}")
            if p.stat().st_size != info["bytes"]:
                raise IndexFormatError(
                    f"index file {name} is truncated or changed (size differs from manifest)"
                )
            if verify and _sha256(p) != info["sha256"]:
                raise IndexFormatError(f"index file {name} is corrupt (sha256 differs from manifest)")
        gen = m["generation"]

        def npy(name: str, mmap: bool = False) -> np.ndarray:
            if name not in files:
                raise IndexFormatError(f"manifest does not list {name}")
            return np.load(root / name, mmap_mode="r" if mmap else None, allow_pickle=False)

        def npz(name: str) -> dict[str, np.ndarray]:
            if name not in files:
                raise IndexFormatError(f"manifest does not list {name}")
            with np.load(root / name, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}

        index = cls(
            _hasher_from_manifest(root, m, npz(f"hasher.g{gen}.npz")),
            int(m["dim"]),
            refresh_every=int(m["refresh_every"]),
            device=device,
        )
        if index.n_bits != int(m["bits"]):
            raise IndexFormatError("manifest bits and hasher bits disagree")
        enc = npz(f"encoder.g{gen}.npz")
        if "W" in enc:
            index.encoder = LinearEncoder(enc["W"], enc.get("mean"), bool(m.get("encoder_normalize", True)))
        index.codes = npy(f"codes.g{gen}.npy")
        index.ids = npy(f"ids.g{gen}.npy")
        if m["labelled"]:
            index.labels = npy(f"labels.g{gen}.npy")
        sname = f"sources.g{gen}.json"
        if sname not in files:
            raise IndexFormatError(f"manifest does not list {sname}")
        index.sources = json.loads((root / sname).read_text())
        for seg in m["segments"]:
            arr = npy(seg["file"], mmap=True)
            if arr.dtype != np.float16 or arr.shape != (seg["rows"], index.dim):
                raise IndexFormatError(f"embedding segment {seg['file']} has the wrong shape or type")
            index._segments.append(arr)
            index._segment_files.append(seg["file"])
        index._check_counts(int(m["count"]))
        index.next_id = int(m["next_id"])
        index.n_updates = int(m["n_updates"])
        index.updates_since_refresh = int(m["updates_since_refresh"])
        index.generation = int(gen)
        index.extra = dict(m.get("extra") or {})
        index._rebuild_faiss()
        return index

    def _check_counts(self, n: int) -> None:
        sizes = {
            "codes": self.codes.shape[0],
            "ids": self.ids.shape[0],
            "sources": len(self.sources),
            "embeddings": sum(s.shape[0] for s in self._segments),
        }
        if self.labels is not None:
            sizes["labels"] = self.labels.shape[0]
        if any(v != n for v in sizes.values()):
            raise IndexFormatError(f"index parts disagree on the item count ({n}): {sizes}")
        if self.codes.dtype != np.uint8 or self.codes.shape[1:] != (self.n_bits // 8,):
            raise IndexFormatError("codes array has the wrong shape or type")


# -- the directory ---------------------------------------------------------------------------------
def _key(root: Path) -> str:
    return os.path.realpath(root)


def _manifest_bytes(root: Path) -> bytes | None:
    try:
        return (root / MANIFEST).read_bytes()
    except OSError:
        return None


def _read_manifest(root: Path) -> tuple[bytes, dict[str, Any]]:
    """The manifest's bytes and content, checked for this format; else IndexFormatError."""
    if not root.is_dir():
        raise IndexFormatError(f"{root} is not an index directory (run 'automl index build' first)")
    try:
        raw = (root / MANIFEST).read_bytes()
        manifest = json.loads(raw)
    except FileNotFoundError:
        raise IndexFormatError(f"{root} has no {MANIFEST}: not a saved index") from None
    except (OSError, ValueError) as exc:
        raise IndexFormatError(f"{root / MANIFEST} is unreadable or corrupt ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexFormatError(f"{root} is not a {FORMAT} directory")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexFormatError(f"unsupported index format version {manifest.get('format_version')}")
    return raw, manifest


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A saved index's manifest (bits, dim, count, generation, hasher name, ``extra`` ...) without
    loading the index; not an index -> IndexFormatError."""
    return _read_manifest(Path(path))[1]


def _read_manifest_or_none(root: Path) -> dict[str, Any] | None:
    """The manifest of a directory about to be written: None when there is none yet."""
    if not (root / MANIFEST).exists():
        return None
    try:
        return _read_manifest(root)[1]
    except IndexFormatError as exc:
        raise HashingError(f"{exc}; not overwriting it: pick a new path or repair the index") from None


def _hasher_from_manifest(root: Path, m: dict[str, Any], arrays: dict[str, np.ndarray]) -> OnlineHasher:
    """The saved hasher, its class looked up by the registered name the manifest stores."""
    params = m["hasher"]
    name = m.get("hasher_name")
    if name is None:
        if params.get("kind", "bsodh") != "bsodh":
            raise IndexFormatError(f"index {root} has a hasher of unknown kind {params.get('kind')!r}")
        name = LEGACY_HASHER
    try:
        cls = hasher_spec(name).cls
    except UnknownHasherError as exc:
        raise IndexFormatError(
            f"index {root} was saved with hasher {name!r}, which is not registered here ({exc}); "
            "register it with hashing.register_hasher before loading"
        ) from None
    try:
        return cls.from_state(params, arrays)
    except HashingError as exc:
        raise IndexFormatError(f"index {root}: {exc}") from None


def _is_ours(name: str) -> bool:
    return name == MANIFEST or name in lock_files() or bool(_OWNED.match(name)) or is_temp_name(name)


def _refuse_foreign_directory(root: Path) -> None:
    """A directory with files the index never writes and no manifest is somebody else's."""
    if not root.is_dir() or (root / MANIFEST).exists():
        return
    if any(not _is_ours(p.name) for p in root.iterdir()):
        raise HashingError(f"{root} is a non-empty directory that is not a saved index; pick a new path")


def directory_state(path: str | os.PathLike[str]) -> str:
    """What a would-be index directory holds: ``"free"`` (missing, empty, or only the lock and
    what a killed first save left behind), ``"index"`` (a manifest) or ``"other"`` (files the
    index never writes, or not a directory)."""
    root = Path(path)
    if not root.exists():
        return "free"
    if not root.is_dir():
        return "other"
    if (root / MANIFEST).exists():
        return "index"
    return "free" if all(_is_ours(p.name) for p in root.iterdir()) else "other"


def remove_orphans(path: str | os.PathLike[str], *, new_index: bool = False) -> list[Path]:
    """Delete what killed writers left in an index directory: temporary files, and index part
    files (``emb-*.npy``, ``codes.gN.npy``, ...) that the manifest does not list. Without a
    manifest, part files are removed only for a ``new_index`` (a first save: what is there is a
    killed first save's); otherwise they are kept for whoever repairs the index. Files the index
    never writes are left alone, and so is everything when the manifest is unreadable. Call it
    while holding the writer lock (:func:`lock_index` does); returns the paths removed."""
    root = Path(path)
    if not root.is_dir():
        return []
    removed = remove_orphan_temps(root)
    try:
        manifest = json.loads((root / MANIFEST).read_text())
        referenced = set(manifest["files"])
    except FileNotFoundError:
        if not new_index:
            return removed
        referenced = set()
    except (OSError, ValueError, KeyError, TypeError):
        return removed
    for p in root.iterdir():
        if _OWNED.match(p.name) and p.name not in referenced and p.is_file():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


@contextmanager
def lock_index(
    path: str | os.PathLike[str],
    *,
    timeout: float | None = DEFAULT_LOCK_TIMEOUT,
    create: bool = False,
    purpose: str | None = None,
) -> Iterator[Path]:
    """Hold ``path``'s exclusive writer lock (waiting up to ``timeout`` seconds, None = forever,
    0 = not at all; then :class:`~hashing.errors.IndexLockedError` naming the holder) and clean
    up after killed writers first. Wrap load -> change -> save in it::

        with lock_index(path):
            index = HashIndex.load(path)
            index.add(...)
            index.save(path)

    ``create`` makes a missing directory (a first build); otherwise a missing one is
    :class:`~hashing.errors.IndexFormatError`, and nothing is created.
    """
    root = Path(path)
    if not create and not root.is_dir():
        raise IndexFormatError(f"{root} is not an index directory (run 'automl index build' first)")
    if create:
        _refuse_foreign_directory(root)
    with DirectoryLock(root, timeout=timeout, create=create, purpose=purpose):
        remove_orphans(root, new_index=create)
        yield root
