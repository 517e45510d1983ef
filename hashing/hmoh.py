"""HMOH: Hadamard Matrix Guided Online Hashing (Lin, Ji, Liu, Sun, Chen, Tian; IJCV 2020).

HMOH gives each class a fixed *target code* taken from a Hadamard matrix and then fits every
bit of the hash function as its own online binary classifier towards those targets. There is
no pairwise similarity and no code optimisation: the Hadamard rows are already mutually
orthogonal (any two of them differ in exactly half of their positions), balanced and known in
advance, which is what a good codebook should be, so the learner only has to fit them.

Read from the authors' MATLAB training script (``2020IJCV_HMOH/s2019IJCV_HMOH.m`` in
``lmbxmu/mycode``) and re-implemented here; :class:`HMOH` lists, step by step, what it does and
where it departs from that script.
"""

from __future__ import annotations

import numpy as np

from hashing.base import LinearEncoder, OnlineHasher, random_unit_columns
from hashing.errors import HashingError

#: The official script's per-dataset settings: ``lr`` and the number of classes from which its
#: Hadamard order follows (see :func:`hadamard_order`). The script also kernelises MNIST (300
#: anchors) and Places205 (800 anchors) with an RBF map, which a linear hasher cannot do (see
#: :class:`HMOH`). ``lr`` never changes a code (W starts at zero), it is kept for parity.
PRESETS: dict[str, dict[str, float]] = {
    "mnist": {"lr": 0.1, "n_classes": 10},
    "cifar10": {"lr": 0.01, "n_classes": 10},
    "places205": {"lr": 0.5, "n_classes": 205},
    "nuswide": {"lr": 0.1, "n_classes": 21},
}


def _next_pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def hadamard_order(n_bits: int, n_classes: int = 0) -> int:
    """The Hadamard order the official runs use: the smallest power of two that is at least the
    code length and the number of classes (its table: 8 and 16 bits -> 16, 32 -> 32, 48 and 64
    -> 64, 128 -> 128 for the 10-class sets; 256 at every length for Places205)."""
    return _next_pow2(max(int(n_bits), int(n_classes), 1))


def bench_params(n_bits: int, d: int, preset: str) -> dict[str, object]:
    """What :func:`hashing.bench.make_methods` passes for a dataset preset (unknown -> mnist)."""
    p = PRESETS.get(preset, PRESETS["mnist"])
    return {"lr": p["lr"], "hadamard_size": hadamard_order(n_bits, int(p["n_classes"]))}


def sylvester_times(A: np.ndarray) -> np.ndarray:
    """``H_n @ A`` for the Sylvester Hadamard matrix ``H_n`` (``H_2n = [[H, H], [H, -H]]``, so
    ``H_n[i, j] = (-1)^popcount(i & j)``), by the fast Walsh-Hadamard transform: O(n log n)
    per column, and ``H_n`` itself (n^2 entries) is never built."""
    out = np.array(A, dtype=np.float64)
    n = out.shape[0]
    if n & (n - 1):
        raise HashingError(f"a Sylvester Hadamard matrix needs a power-of-two order, got {n}")
    tail = out.shape[1:]
    h = 1
    while h < n:
        blocks = out.reshape(n // (2 * h), 2, h, *tail)
        top, bottom = blocks[:, 0], blocks[:, 1]
        out = np.stack([top + bottom, top - bottom], axis=1).reshape(n, *tail)
        h *= 2
    return out


def hadamard_rows(rows: np.ndarray, n: int) -> np.ndarray:
    """Rows ``rows`` of ``H_n`` as int8 +-1, (len(rows), n), without building the matrix."""
    r = np.asarray(rows, np.int64)[:, None]
    parity = np.bitwise_count(np.bitwise_and(r, np.arange(n, dtype=np.int64)[None, :])) & 1
    return (1 - 2 * parity).astype(np.int8)


def balanced_sign(s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A +-1 vector from an integer sum of codewords: the sign where it is non-zero; the zero
    entries, in random order, first go to the minority sign until +1s and -1s are as balanced
    as they can be, and any left over are split half +1, half -1."""
    t = np.sign(s).astype(np.int8)
    zeros = np.flatnonzero(t == 0)
    if zeros.size == 0:
        return t
    zeros = rng.permutation(zeros)
    gap = int(t.sum(dtype=np.int64))  # (#+1) - (#-1)
    k = min(abs(gap), zeros.size)
    t[zeros[:k]] = -1 if gap > 0 else 1
    rest = zeros[k:]
    half = (rest.size + 1) // 2
    t[rest[:half]] = 1
    t[rest[half:]] = -1
    return t


class HMOH(OnlineHasher):
    """Hadamard-matrix-guided online hashing: a per-bit perceptron towards Hadamard target codes.

    What one :meth:`partial_fit` does (the official script's loop, one item per step):

    1. **Codebook.** On the first labelled batch the hasher picks a Hadamard order ``n``
       (``hadamard_size``, default the smallest power of two >= ``n_bits``; multi-label data
       raise it to hold every label column) and fixes the r-bit target of every row of ``H_n``:
       the row itself when ``n == r``, else ``sgn(h P)`` for a random Gaussian ``n x r``
       projection ``P`` with unit columns (the paper's LSH step that aligns the lengths).
    2. **Classes on a stream.** A class takes the next unused row the first time it appears
       (single-label: classes in order of first appearance; multi-label: label columns in order
       of first appearance, ties by column). Its r-bit target is frozen from then on.
    3. **More classes than rows.** The matrix grows by the Sylvester step
       ``H_2n = [[H_n, H_n], [H_n, -H_n]]``. An old class keeps its row, which becomes
       ``[h, h]``; new classes take the rows ``[h, -h]``. The projection is extended to
       ``P' = [(P + M) / 2; (P - M) / 2]`` with a fresh Gaussian ``M``: it maps every old row
       to ``h P`` (its target does not change at all) and every new row to ``h M``, i.e. new
       classes get the codes a fresh random projection of orthogonal rows gives: independent,
       uniformly random codes, which is what the official LSH step produces whenever the
       Hadamard order exceeds r. Only the targets are stored: ``sgn(H_n M)`` is computed once
       per growth by a fast Walsh-Hadamard transform (``n x r`` int8, no ``n x n`` matrix).
    4. **Multi-label target.** The sum of the item's label rows (in ``n`` dimensions), its
       sign, and zero entries filled as :func:`balanced_sign` does; then projected with ``P``
       when ``n != r``. An item with no label at all (e.g. a neutral face in AU data) has no
       target and is not learned from, like an unlabelled item.
    5. **Learning rule.** ``W`` (d x r) starts at zero. For each item ``x`` with target ``b``,
       bit k is predicted ``+1`` iff ``x w_k > 0`` (a zero projection counts as -1, as in the
       script); on every wrongly predicted bit the perceptron step ``w_k += lr * b_k * x`` is
       taken, and the bit's mistake counter is increased.
    6. **Ensemble.** The hash function is the average of ``W`` over all steps so far (the
       script sums ``W`` after every step and divides each column by its mistake count; the
       column scale never changes a sign). ``average=False`` uses the last ``W`` instead.

    Codes are ``sgn(x^T W_avg)``, linear in the features: :meth:`export_encoder` gives a
    :class:`~hashing.base.LinearEncoder` and HMOH can back a :class:`~hashing.index.HashIndex`.

    Deviations from the official script, and why:

    * **No kernel features.** The script maps MNIST and Places205 through an RBF kernel on 300 /
      800 random anchors (not CIFAR-10 or NUS-WIDE). That map is not linear, so it could not be
      exported as a LinearEncoder; HMOH takes features as given, like the other baselines (the
      benchmark centres them and scales rows to unit length). There is no bias term, as in the
      script.
    * **Unknown classes.** The script indexes ``H`` by the label value, with all classes known
      before streaming; here rows follow first appearance and the matrix grows (step 3). The
      script has no answer for more classes than rows. Default order: the next power of two
      >= ``n_bits``; :func:`bench_params` passes the official per-dataset order.
    * **Multi-label fill.** The script's zero-filling means "balance, then split the rest
      evenly", but takes ``max`` where ``min`` is meant (it fails or overshoots) and writes the
      even split to the first positions of the code instead of the zero positions (it
      overwrites the summed code). :func:`balanced_sign` does what the comments intend.
    * **Averaging at every point of the stream.** The script averages once at the end; an
      online hasher must answer queries between batches, so the running average is kept (as a
      sum plus a count of steps since the last change, the same sum up to rounding). A bit that
      has never been wrong keeps a zero column (the script would divide 0 by 0).
    * **Bits from projections.** The package's bit is ``projection >= 0``; the script encodes
      with ``> 0``. They differ only on exact zeros, e.g. before any learning, when ``W = 0``
      puts every item on the all-ones code (the script would give all zeros).
    * ``lr`` only scales ``W`` (it starts at zero and the perceptron's decisions are scale-free),
      so it changes no code; it is kept with the script's per-dataset values for parity.

    One item per step, exactly as the script's ``num = 1``: the result does not depend on how
    the stream is cut into batches.
    """

    supervised = True
    linear = True
    _hyper = ("lr", "hadamard_size", "average")
    _fitted = ("W_", "W_sum_", "idle_", "mistakes_", "codebook_", "proj_")

    def __init__(
        self,
        n_bits: int = 32,
        lr: float = 0.1,
        hadamard_size: int | None = None,
        average: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__(n_bits, seed)
        if not float(lr) > 0:
            raise HashingError(f"HMOH lr must be > 0, got {lr}")
        if hadamard_size is not None:
            size = int(hadamard_size)
            if size < self.n_bits or size & (size - 1):
                raise HashingError(
                    f"HMOH hadamard_size must be a power of two >= n_bits ({self.n_bits}), "
                    f"got {hadamard_size}"
                )
            hadamard_size = size
        self.lr, self.hadamard_size, self.average = float(lr), hadamard_size, bool(average)
        self.W_: np.ndarray | None = None
        self.W_sum_: np.ndarray | None = None
        self.idle_ = 0  # steps whose W equals the current W and are not yet in W_sum_
        self.mistakes_: np.ndarray | None = None
        self.codebook_: np.ndarray | None = None  # (order, r) int8: the target of every row
        self.proj_: np.ndarray | None = None  # multi-label with order != r: the n x r projection
        self.class_labels_: list[int] = []  # class value / label column of row 0, 1, ...
        self._row_of: dict[int, int] = {}

    @property
    def order_(self) -> int | None:
        """The current Hadamard order (None before the first labelled batch)."""
        return None if self.codebook_ is None else int(self.codebook_.shape[0])

    # -- set-up -------------------------------------------------------------------------------
    def _init_params(self, X: np.ndarray) -> None:
        d, r = X.shape[1], self.n_bits
        self.W_ = np.zeros((d, r))
        self.W_sum_ = np.zeros((d, r))
        self.idle_ = 0
        self.mistakes_ = np.zeros(r, np.int64)

    def _init_codebook(self) -> None:
        r = self.n_bits
        n = self.hadamard_size or hadamard_order(r)
        if self.n_labels_:
            n = max(n, hadamard_order(r, self.n_labels_))
        if n == r:
            self.codebook_ = hadamard_rows(np.arange(n), n)
            return
        P = random_unit_columns(self.rng_, n, r)
        self.codebook_ = np.where(sylvester_times(P) > 0, 1, -1).astype(np.int8)
        if self.n_labels_:
            self.proj_ = P

    def _grow(self) -> None:
        """Sylvester step: old rows keep their targets; the new rows ``[h, -h]`` get ``sgn(h M)``."""
        assert self.codebook_ is not None
        n = self.codebook_.shape[0]
        M = random_unit_columns(self.rng_, n, self.n_bits)
        fresh = np.where(sylvester_times(M) > 0, 1, -1).astype(np.int8)
        self.codebook_ = np.concatenate([self.codebook_, fresh])

    def _assign(self, keys_in_order: list[int]) -> None:
        for key in keys_in_order:
            if key in self._row_of:
                continue
            assert self.codebook_ is not None
            if len(self.class_labels_) == self.codebook_.shape[0]:
                if self.n_labels_:  # cannot happen: the order holds every column
                    raise HashingError("HMOH: more label columns than Hadamard rows")
                self._grow()
            self._row_of[key] = len(self.class_labels_)
            self.class_labels_.append(key)

    # -- targets ------------------------------------------------------------------------------
    def _targets(self, y: np.ndarray) -> np.ndarray:
        """(n, r) int8 target codes for a validated batch, registering new classes first."""
        if y.ndim == 1:
            values, first = np.unique(y, return_index=True)
            self._assign([int(v) for v in values[np.argsort(first, kind="stable")]])
            rows = np.array([self._row_of[int(v)] for v in y], np.int64)
            assert self.codebook_ is not None
            return self.codebook_[rows]
        active = y.astype(bool)  # every row has a label: _partial_fit drops the others
        cols = np.flatnonzero(active.any(axis=0))
        first_row = active[:, cols].argmax(axis=0)
        self._assign([int(c) for c in cols[np.lexsort((cols, first_row))]])
        assert self.codebook_ is not None
        n = self.codebook_.shape[0]
        rows = np.array([self._row_of[int(c)] for c in cols], np.int64)
        sums = y[:, cols].astype(np.int64) @ hadamard_rows(rows, n).astype(np.int64)
        full = np.stack([balanced_sign(s, self.rng_) for s in sums])
        if self.proj_ is None:
            return full
        return np.where(full @ self.proj_ > 0, 1, -1).astype(np.int8)

    # -- learning -----------------------------------------------------------------------------
    def _partial_fit(self, X: np.ndarray, y: np.ndarray | None) -> None:
        assert y is not None and self.W_ is not None and self.W_sum_ is not None
        assert self.mistakes_ is not None
        if self.codebook_ is None:
            self._init_codebook()
        if y.ndim == 2:  # rows with no active label have no target: nothing to learn from them
            keep = y.astype(bool).any(axis=1)
            if not keep.all():
                X, y = X[keep], y[keep]
            if not len(y):
                return
        B = self._targets(y)
        positive = B > 0
        step = self.lr * B.astype(np.float64)
        W, W_sum = self.W_, self.W_sum_
        for x, want, s in zip(X, positive, step, strict=True):
            wrong = (x @ W > 0) != want
            if wrong.any():
                if self.idle_:
                    W_sum += self.idle_ * W
                self.idle_ = 0
                W += np.outer(x, np.where(wrong, s, 0.0))
                self.mistakes_ += wrong
            self.idle_ += 1

    def _weights(self) -> np.ndarray | None:
        if self.W_ is None or self.W_sum_ is None or self.mistakes_ is None:
            return None
        if not self.average:
            return self.W_
        return (self.W_sum_ + self.idle_ * self.W_) / np.maximum(self.mistakes_, 1)

    def _project(self, X: np.ndarray) -> np.ndarray:
        W = self._weights()
        assert W is not None
        return X @ W

    def export_encoder(self) -> LinearEncoder:
        return self._linear_encoder(self._weights())

    # -- state --------------------------------------------------------------------------------
    def _extra_arrays(self) -> dict[str, np.ndarray]:
        return {"class_labels": np.asarray(self.class_labels_, np.int64)}

    def _restore_extra(self, arrays: dict[str, np.ndarray]) -> None:
        d, r = self.n_features_, self.n_bits
        for name in ("W_", "W_sum_"):
            value = getattr(self, name)
            if value is not None:
                value = np.array(value, np.float64)  # own the memory: it is updated in place
                if value.shape != (d, r):
                    raise HashingError(f"HMOH state: {name} has shape {value.shape}, expected {(d, r)}")
                setattr(self, name, value)
        if self.mistakes_ is not None:
            self.mistakes_ = np.array(self.mistakes_, np.int64).reshape(r)
        self.idle_ = int(self.idle_)
        labels = [int(v) for v in np.asarray(arrays.get("class_labels", np.zeros(0)), np.int64)]
        if self.codebook_ is not None:
            self.codebook_ = np.array(self.codebook_, np.int8)
            n = self.codebook_.shape[0]
            if self.codebook_.shape[1] != r or n & (n - 1) or len(labels) > n:
                raise HashingError("HMOH state: the codebook and the class table disagree")
        elif labels:
            raise HashingError("HMOH state: classes without a codebook")
        if self.proj_ is not None:
            self.proj_ = np.array(self.proj_, np.float64)
        self.class_labels_ = labels
        self._row_of = {k: i for i, k in enumerate(labels)}
        if len(self._row_of) != len(labels):
            raise HashingError("HMOH state: a class appears twice in the class table")
