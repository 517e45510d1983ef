"""The common interface of every hasher: ``partial_fit`` on a stream batch, ``encode`` to codes.

Codes are packed with :func:`numpy.packbits` (bit ``k`` of the code is ``1`` when the k-th
projection is ``>= 0``), which is the byte layout FAISS binary indexes and the metrics expect.
Input checking lives here so that every method rejects NaN rows, wrong widths, badly shaped labels
and empty batches with the same clear message.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from hashing.errors import HashingError


def check_features(X: object, n_features: int | None = None, *, what: str = "X") -> np.ndarray:
    """Return ``X`` as a finite float64 2-D array, or raise :class:`HashingError`."""
    try:
        arr = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise HashingError(f"{what} must be a numeric 2-D array ({exc})") from None
    if arr.ndim != 2:
        raise HashingError(f"{what} must be 2-D (n_items, n_features), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise HashingError(f"{what} is an empty batch (0 rows); pass at least one item")
    if n_features is not None and arr.shape[1] != n_features:
        raise HashingError(
            f"{what} has {arr.shape[1]} features but the hasher was fitted on {n_features}; "
            "use embeddings from the same model"
        )
    if not np.isfinite(arr).all():
        bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
        raise HashingError(
            f"{what} has NaN/inf values in {bad.size} row(s) (first: row {int(bad[0])}); "
            "drop or repair those rows"
        )
    return arr


def check_labels(y: object, n_items: int, n_labels: int | None = None) -> np.ndarray:
    """Validate labels: 1-D integer classes, or a 2-D 0/1 multi-label matrix.

    Returns int64 (n,) for single-label data or uint8 (n, A) for multi-label data.
    """
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1 and (n_labels is None or n_labels == 0):
        arr = arr[:, 0]
    if arr.ndim not in (1, 2):
        raise HashingError(f"labels must be 1-D classes or a 2-D 0/1 matrix, got shape {arr.shape}")
    if arr.shape[0] != n_items:
        raise HashingError(f"got {arr.shape[0]} labels for {n_items} items; pass one label (row) per item")
    if arr.dtype.kind not in "biuf":
        raise HashingError(f"labels must be numeric, got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise HashingError("labels contain NaN/inf")
    if arr.ndim == 1:
        if n_labels:
            raise HashingError(f"expected a 0/1 label matrix with {n_labels} columns, got 1-D class labels")
        if arr.dtype.kind == "f" and not np.all(arr == np.round(arr)):
            raise HashingError("class labels must be integers")
        return arr.astype(np.int64)
    if n_labels is not None and n_labels > 0 and arr.shape[1] != n_labels:
        raise HashingError(f"label matrix has {arr.shape[1]} columns, expected {n_labels}")
    if n_labels == 0:
        raise HashingError("expected 1-D class labels (the hasher was fitted on single-label data)")
    if not np.isin(arr, (0, 1)).all():
        raise HashingError("a multi-label matrix must contain only 0 and 1")
    return arr.astype(np.uint8)


def sign_pm1(values: np.ndarray) -> np.ndarray:
    """``sgn`` with ``sgn(0) = +1`` (as the reference code's ``tmp >= 0 -> 1``), as int8 +-1."""
    return np.where(values >= 0, 1, -1).astype(np.int8)


def pack_codes(pm1: np.ndarray) -> np.ndarray:
    """+-1 (or 0/1) codes (n, bits) -> packed uint8 (n, ceil(bits/8)), ``1`` where positive."""
    return np.packbits(np.asarray(pm1) > 0, axis=1)


def unpack_codes(packed: np.ndarray, n_bits: int) -> np.ndarray:
    """Packed uint8 codes -> +-1 int8 (n, n_bits)."""
    bits = np.unpackbits(np.asarray(packed, dtype=np.uint8), axis=1, count=n_bits)
    return (bits.astype(np.int8) * 2 - 1).astype(np.int8)


def l2_rows(X: np.ndarray, *, in_place: bool = False) -> np.ndarray:
    """Scale each row to unit length (all-zero rows stay zero); ``in_place`` scales ``X`` itself
    (for a float array the caller owns, e.g. one it has just centred)."""
    norms = np.sqrt(np.einsum("ij,ij->i", X, X))
    norms[norms == 0] = 1.0
    if in_place:
        X /= norms[:, None]
        return X
    return X / norms[:, None]


@dataclass
class LinearEncoder:
    """A frozen linear hash ``sgn(W^T f(x))``: what an index keeps to encode its items and queries.

    ``f`` is ``x - mean`` (when ``mean`` is set) followed by unit-length scaling (when
    ``normalize``). Keeping the encoder separate from the learner lets an index refresh its codes
    only every k updates: items and queries are encoded with the same snapshot in between.
    """

    W: np.ndarray
    mean: np.ndarray | None = None
    normalize: bool = True

    @property
    def n_bits(self) -> int:
        return int(self.W.shape[1])

    @property
    def n_features(self) -> int:
        return int(self.W.shape[0])

    def project(self, X: np.ndarray) -> np.ndarray:
        """float32 projections ``(x - mean)^T W`` of a chunk of rows, as ``x^T W - mean^T W``.

        Scaling a row to unit length never changes the signs, so the encoder skips it (the
        learner needs it, the codes do not); float32 keeps a 1M-item re-encode fast.
        """
        proj = np.asarray(X, dtype=np.float32) @ self._W32
        if self._offset is not None:
            proj -= self._offset
        return proj

    def __post_init__(self) -> None:
        self._W32 = np.ascontiguousarray(self.W, dtype=np.float32)
        self._offset = None if self.mean is None else (self.mean @ self.W).astype(np.float32)

    def encode(
        self, X: np.ndarray, packed: bool = True, *, validate: bool = True, chunk: int = 65536
    ) -> np.ndarray:
        """Codes for ``X`` in chunks (``X`` may be a float16 memmap; ``validate=False`` skips the
        finiteness scan for data that was validated when it entered the index)."""
        if validate:
            X = check_features(X, self.n_features)
        elif X.ndim != 2 or X.shape[1] != self.n_features:
            raise HashingError(f"expected (n, {self.n_features}) features, got shape {X.shape}")
        n = X.shape[0]
        width = (self.n_bits + 7) // 8 if packed else self.n_bits
        out = np.empty((n, width), np.uint8 if packed else np.int8)
        for start in range(0, n, chunk):
            proj = self.project(X[start : start + chunk])
            out[start : start + chunk] = np.packbits(proj >= 0, axis=1) if packed else sign_pm1(proj)
        return out


class OnlineHasher(ABC):
    """A hash function learned from a stream of labelled batches.

    Subclasses implement :meth:`_partial_fit` (one stream batch, already validated) and
    :meth:`_project` (real-valued projections whose signs are the bits).

    Saving without pickles: :meth:`get_state` returns JSON-able parameters and plain arrays, and
    :meth:`from_state` rebuilds the hasher from them. The generic version saves the constructor
    arguments named in ``_hyper``, the fitted attributes named in ``_fitted`` (arrays, or numbers
    stored as 0-d arrays), the stream counters and the random generator's state; a subclass with
    other state (dicts, pending items) extends :meth:`_extra_arrays` / :meth:`_restore_extra`.

    A hasher can back a :class:`~hashing.index.HashIndex` when its hash function is linear in
    the features, i.e. when :meth:`export_encoder` returns a frozen
    :class:`LinearEncoder` (``linear = True``).
    """

    n_bits: int
    supervised: bool = True
    linear: bool = False  # export_encoder() works: the hasher can back a HashIndex
    _hyper: tuple[str, ...] = ()  # constructor keyword arguments, saved by name
    _fitted: tuple[str, ...] = ()  # fitted attributes saved as arrays

    def __init__(self, n_bits: int, seed: int = 0) -> None:
        if int(n_bits) < 1:
            raise HashingError(f"n_bits must be >= 1, got {n_bits}")
        self.n_bits = int(n_bits)
        self.seed = seed
        self.rng_ = np.random.default_rng(seed)
        self.n_features_: int | None = None
        self.n_labels_: int | None = None  # 0 = single-label classes, A = multi-label width
        self.n_batches_ = 0
        self.n_seen_ = 0

    # -- public API ---------------------------------------------------------------------------
    def partial_fit(self, X: object, y: object = None) -> OnlineHasher:
        """Learn from one stream batch ``X`` (n, d) with labels ``y`` (n,) or (n, A) 0/1."""
        X = check_features(X, self.n_features_)
        labels = None
        if self.supervised:
            if y is None:
                raise HashingError(f"{type(self).__name__} is supervised: pass labels with the batch")
            labels = check_labels(y, X.shape[0], self.n_labels_)
            if self.n_labels_ is None:
                self.n_labels_ = 0 if labels.ndim == 1 else labels.shape[1]
        if self.n_features_ is None:
            self.n_features_ = X.shape[1]
            self._init_params(X)
        self._partial_fit(X, labels)
        self.n_batches_ += 1
        self.n_seen_ += X.shape[0]
        return self

    def encode(self, X: object, packed: bool = True) -> np.ndarray:
        """Codes for ``X``: packed uint8 (n, ceil(bits/8)), or +-1 int8 (n, bits) with ``packed=False``."""
        if self.n_features_ is None:
            raise HashingError(f"{type(self).__name__} has not seen any data yet; call partial_fit first")
        X = check_features(X, self.n_features_)
        proj = self._project(X)
        return np.packbits(proj >= 0, axis=1) if packed else sign_pm1(proj)

    def fit(self, X: object, y: object = None, batch_size: int | None = None) -> OnlineHasher:
        """Convenience: stream ``X`` through :meth:`partial_fit` in order, in batches."""
        X = check_features(X, self.n_features_)
        n = X.shape[0]
        bs = n if batch_size is None else int(batch_size)
        y_arr = None if y is None else np.asarray(y)
        for start in range(0, n, bs):
            self.partial_fit(X[start : start + bs], None if y_arr is None else y_arr[start : start + bs])
        return self

    def initialize(self, X: object) -> OnlineHasher:
        """Fix the feature width (and whatever the first data sets up) without learning, so that
        items can be encoded before the first labelled batch arrives."""
        X = check_features(X, self.n_features_)
        if self.n_features_ is None:
            self.n_features_ = X.shape[1]
            self._init_params(X)
        return self

    def export_encoder(self) -> LinearEncoder:
        """A frozen copy of the current hash function, for an index's snapshot."""
        raise HashingError(
            f"{type(self).__name__} cannot back an index: its hash function is not linear in the "
            "features (pick BSODH, OSH, AdaptHash, SketchHash, LSH or ITQ)"
        )

    def _linear_encoder(self, W: np.ndarray | None, mean: np.ndarray | None = None) -> LinearEncoder:
        if W is None or self.n_features_ is None:
            raise HashingError(
                f"{type(self).__name__} has no hash function yet: initialize or partial_fit first"
            )
        return LinearEncoder(np.array(W, np.float64), None if mean is None else np.array(mean), False)

    # -- state without pickles ----------------------------------------------------------------
    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-able parameters + plain numeric arrays (for ``np.savez``; no pickles)."""
        params: dict[str, Any] = {
            "n_bits": self.n_bits,
            "seed": self.seed,
            **{name: getattr(self, name) for name in self._hyper},
            "n_features": self.n_features_,
            "n_labels": self.n_labels_,
            "n_batches": self.n_batches_,
            "n_seen": self.n_seen_,
            "rng": self.rng_.bit_generator.state,
        }
        arrays = {
            name: np.asarray(value)
            for name in self._fitted
            if (value := getattr(self, name, None)) is not None
        }
        arrays.update(self._extra_arrays())
        return params, arrays

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> OnlineHasher:
        """Rebuild a hasher saved with :meth:`get_state`; bad state -> :class:`HashingError`."""
        try:
            obj = cls(int(params["n_bits"]), seed=params["seed"], **{k: params[k] for k in cls._hyper})
            obj.n_features_ = None if params["n_features"] is None else int(params["n_features"])
            obj.n_labels_ = None if params["n_labels"] is None else int(params["n_labels"])
            obj.n_batches_ = int(params["n_batches"])
            obj.n_seen_ = int(params["n_seen"])
            obj.rng_.bit_generator.state = params["rng"]
            for name in cls._fitted:
                if name in arrays:
                    value = np.asarray(arrays[name])
                    setattr(obj, name, value.item() if value.ndim == 0 else value)
            obj._restore_extra(arrays)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, HashingError):
                raise
            raise HashingError(f"{cls.__name__} state is incomplete or corrupt ({exc})") from None
        return obj

    def _extra_arrays(self) -> dict[str, np.ndarray]:
        """State beyond ``_fitted`` (for subclasses)."""
        return {}

    def _restore_extra(self, arrays: dict[str, np.ndarray]) -> None:
        """Inverse of :meth:`_extra_arrays`."""
        return None

    # -- for subclasses -----------------------------------------------------------------------
    @abstractmethod
    def _init_params(self, X: np.ndarray) -> None:
        """Initialise parameters once the feature width is known (X is the first batch)."""

    @abstractmethod
    def _partial_fit(self, X: np.ndarray, y: np.ndarray | None) -> None:
        """One stream batch, validated."""

    @abstractmethod
    def _project(self, X: np.ndarray) -> np.ndarray:
        """Real-valued projections (n, n_bits); bit = projection >= 0."""


def random_unit_columns(rng: np.random.Generator, d: int, r: int) -> np.ndarray:
    """``randn(d, r)`` with unit-norm columns: the initial W of every method in the framework."""
    W = rng.standard_normal((d, r))
    return W / np.linalg.norm(W, axis=0, keepdims=True)
