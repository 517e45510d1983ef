"""A FAISS binary index that follows an online hasher: raw embeddings, codes, metadata, refresh.

The index keeps every item's raw embedding (float16, memory-mapped segments), its packed code,
its id, source path and labels. Labelled additions update the hasher (BSODH); the codes of the
*whole* collection are then re-encoded, either after every update or every ``refresh_every``
updates. Between refreshes, items and queries are encoded with the same frozen snapshot of the
hash function (:class:`~hashing.base.LinearEncoder`), so results stay consistent; ``stats()``
reports how many updates the codes lag behind.

Search uses ``faiss.IndexBinaryFlat`` (exact Hamming k-NN and radius search), rebuilt from the
codes array, which is the source of truth; with a GPU build of faiss and a visible GPU, k-NN
queries go to ``GpuIndexBinaryFlat`` (radius search stays on the CPU index, which the GPU index
lacks).

On disk an index is a directory: immutable ``emb-*.npy`` embedding segments, generation-tagged
arrays (codes, ids, labels, hasher state), ``sources.gN.json`` and ``manifest.json`` with bits,
dims, counts and the size + sha256 of every file. Saving writes the new generation's files, then
atomically replaces the manifest, then deletes files no manifest refers to; if anything fails
before the manifest is replaced the new files are removed and the directory is unchanged.
Loading reads only JSON and ``.npy``/``.npz`` with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from hashing.base import LinearEncoder, check_features, check_labels
from hashing.bsodh import BSODH
from hashing.errors import HashingError, IndexFormatError

FORMAT = "face-automl/hash-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_OWNED = re.compile(r"^(emb-[0-9a-f]+\.npy|(codes|ids|labels|hasher|encoder|sources)\.g\d+\.(npy|npz|json))$")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def gpu_available() -> bool:
    """True when this faiss build has GPU binary indexes and a GPU is visible."""
    return hasattr(faiss, "GpuIndexBinaryFlat") and getattr(faiss, "get_num_gpus", lambda: 0)() > 0


@dataclass
class SearchResult:
    """k-NN answer for a batch of queries: ids (-1 = no item) and Hamming distances, (nq, k)."""

    ids: np.ndarray
    distances: np.ndarray


class HashIndex:
    """Online-hashed retrieval index over embeddings (see the module docstring)."""

    def __init__(self, hasher: BSODH, dim: int, *, refresh_every: int = 1, device: str = "auto") -> None:
        if hasher.n_bits % 8:
            raise HashingError(f"FAISS binary indexes need a multiple of 8 bits, got {hasher.n_bits}")
        if refresh_every < 1:
            raise HashingError(f"refresh_every must be >= 1, got {refresh_every}")
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
        """Add items; labelled batches update the hasher (``learn``), then codes are refreshed if
        due. Returns the new ids. Nothing changes if validation fails."""
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

        if self.encoder is None:  # first data: fix the width and centring mean, no learning
            self.hasher.initialize(X)
            self.encoder = self.hasher.export_encoder()
        if y is not None and learn:
            self.hasher.partial_fit(X, y)
            self.n_updates += 1
            self.updates_since_refresh += 1

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
        """k nearest items by Hamming distance (ties: lower position first, as FAISS returns them)."""
        return self.search_codes(self.encode_queries(embeddings), k)

    def search_codes(self, codes: np.ndarray, k: int = 10) -> SearchResult:
        if k < 1:
            raise HashingError(f"k must be >= 1, got {k}")
        codes = np.ascontiguousarray(codes, dtype=np.uint8)
        if codes.ndim != 2 or codes.shape[1] != self.n_bits // 8:
            raise HashingError(f"query codes must be (n, {self.n_bits // 8}) uint8")
        if len(self) == 0:
            return SearchResult(
                np.full((len(codes), k), -1, np.int64), np.full((len(codes), k), -1, np.int32)
            )
        index = self._gpu[1] if (self._gpu is not None and k <= 2048) else self._faiss
        D, pos = index.search(codes, k)
        found = pos >= 0
        out = np.full(pos.shape, -1, np.int64)
        out[found] = self.ids[pos[found]]
        return SearchResult(out, np.where(found, D, -1).astype(np.int32))

    def range_search(self, embeddings: object, radius: int) -> list[SearchResult]:
        """All items within Hamming distance ``<= radius`` of each query, nearest first."""
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
            "labelled_items": labelled,
            "label_kind": {None: "none", 0: "classes"}.get(self.label_width, "multi-label"),
            "hash_updates": self.n_updates,
            "refresh_every": self.refresh_every,
            "stale_updates": self.updates_since_refresh,
            "codes_current": self.updates_since_refresh == 0,
            "hasher_items_learned": int(self.hasher.n_seen_),
            "hasher_stages": int(self.hasher.n_batches_),
            "generation": self.generation,
            "search_backend": "faiss GpuIndexBinaryFlat"
            if self._gpu is not None
            else "faiss IndexBinaryFlat",
            "embedding_bytes": int(sum(s.nbytes for s in self._segments)),
            **({"extra": self.extra} if self.extra else {}),
        }

    # -- persistence ----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Atomically save to directory ``path`` (see the module docstring)."""
        root = Path(path)
        if root.exists() and not root.is_dir():
            raise HashingError(f"{root} exists and is not a directory")
        old_manifest = None
        if root.is_dir() and any(root.iterdir()):
            try:
                old_manifest = json.loads((root / MANIFEST).read_text())
            except (OSError, ValueError):
                raise HashingError(
                    f"{root} is a non-empty directory that is not a saved index; pick a new path"
                ) from None
        root.mkdir(parents=True, exist_ok=True)
        gen = max(self.generation, int(old_manifest.get("generation", 0)) if old_manifest else 0) + 1
        written: list[Path] = []
        try:
            files: dict[str, dict[str, Any]] = {}

            def record(name: str) -> None:
                p = root / name
                files[name] = {"bytes": p.stat().st_size, "sha256": _sha256(p)}

            def write_npy(name: str, arr: np.ndarray) -> None:
                written.append(root / name)
                with open(root / name, "wb") as fh:
                    np.save(fh, np.ascontiguousarray(arr), allow_pickle=False)
                    fh.flush()
                    os.fsync(fh.fileno())
                record(name)

            segments = []
            new_files: list[str | None] = []
            for seg, fname in zip(self._segments, self._segment_files, strict=True):
                if (
                    fname is None
                    or not (root / fname).is_file()
                    or old_manifest is None
                    or fname not in old_manifest.get("files", {})
                ):
                    fname = f"emb-{uuid.uuid4().hex}.npy"
                    write_npy(fname, seg)
                else:
                    files[fname] = old_manifest["files"][fname]
                segments.append({"file": fname, "rows": int(seg.shape[0])})
                new_files.append(fname)
            write_npy(f"codes.g{gen}.npy", self.codes)
            write_npy(f"ids.g{gen}.npy", self.ids)
            if self.labels is not None:
                write_npy(f"labels.g{gen}.npy", self.labels)
            params, arrays = self.hasher.get_state()
            for fname, payload in (
                (f"hasher.g{gen}.npz", arrays),
                (f"encoder.g{gen}.npz", self._encoder_arrays()),
            ):
                written.append(root / fname)
                with open(root / fname, "wb") as fh:
                    np.savez(fh, **payload)
                    fh.flush()
                    os.fsync(fh.fileno())
                record(fname)
            name = f"sources.g{gen}.json"
            written.append(root / name)
            (root / name).write_text(json.dumps(self.sources))
            record(name)
            manifest = {
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
                "hasher": params,
                "segments": segments,
                "extra": self.extra,
                "files": files,
            }
            tmp = root / f".{MANIFEST}.{uuid.uuid4().hex}.tmp"
            written.append(tmp)
            with open(tmp, "w") as fh:
                json.dump(manifest, fh, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, root / MANIFEST)
        except BaseException:
            for p in written:
                p.unlink(missing_ok=True)
            raise
        # Committed: forget files no manifest refers to.
        for p in root.iterdir():
            if _OWNED.match(p.name) and p.name not in files:
                p.unlink(missing_ok=True)
        self._segment_files = new_files
        self.generation = gen
        return root

    def _encoder_arrays(self) -> dict[str, np.ndarray]:
        if self.encoder is None:
            return {}
        out = {"W": self.encoder.W}
        if self.encoder.mean is not None:
            out["mean"] = self.encoder.mean
        return out

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, verify: bool = True, device: str = "auto") -> HashIndex:
        """Load a saved index directory; any missing, truncated or corrupt part -> IndexFormatError."""
        root = Path(path)
        if not root.is_dir():
            raise IndexFormatError(f"{root} is not an index directory (run 'automl index build' first)")
        try:
            manifest = json.loads((root / MANIFEST).read_text())
        except FileNotFoundError:
            raise IndexFormatError(f"{root} has no {MANIFEST}: not a saved index") from None
        except (OSError, ValueError) as exc:
            raise IndexFormatError(f"{root / MANIFEST} is unreadable or corrupt ({exc})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise IndexFormatError(f"{root} is not a {FORMAT} directory")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise IndexFormatError(f"unsupported index format version {manifest.get('format_version')}")
        try:
            return cls._from_manifest(root, manifest, verify, device)
        except IndexFormatError:
            raise
        except (KeyError, TypeError, ValueError, OSError) as exc:
            raise IndexFormatError(f"index {root} is corrupt: {type(exc).__name__}: {exc}") from None

    @classmethod
    def _from_manifest(cls, root: Path, m: dict[str, Any], verify: bool, device: str) -> HashIndex:
        files = m["files"]
        for name, info in files.items():
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

        hasher = BSODH.from_state(m["hasher"], npz(f"hasher.g{gen}.npz"))
        index = cls(hasher, int(m["dim"]), refresh_every=int(m["refresh_every"]), device=device)
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
        n = int(m["count"])
        sizes = {
            "codes": index.codes.shape[0],
            "ids": index.ids.shape[0],
            "sources": len(index.sources),
            "embeddings": sum(s.shape[0] for s in index._segments),
        }
        if index.labels is not None:
            sizes["labels"] = index.labels.shape[0]
        if any(v != n for v in sizes.values()):
            raise IndexFormatError(f"index parts disagree on the item count ({n}): {sizes}")
        if index.codes.dtype != np.uint8 or index.codes.shape[1:] != (index.n_bits // 8,):
            raise IndexFormatError("codes array has the wrong shape or type")
        index.next_id = int(m["next_id"])
        index.n_updates = int(m["n_updates"])
        index.updates_since_refresh = int(m["updates_since_refresh"])
        index.generation = int(gen)
        index.extra = dict(m.get("extra") or {})
        index._rebuild_faiss()
        return index
