"""BSODH: Balanced Similarity for Online Discrete Hashing (Lin et al., AAAI 2019).

Two modes, one class (``mode``):

``"paper"`` -- one call of :meth:`BSODH.partial_fit` is one stage of the authors' ``BSODH.m`` loop:

1. the first batch only initialises the existing codes ``B_e = sgn(W^T X)``;
2. later batches: ``S = eta_s`` where a new and an existing item share a label, ``-eta_d``
   elsewhere, scaled by ``r``; a new item that has a similar existing item starts from the code
   of the *first* such item, the others from ``sgn(W^T x)``;
3. ``B_s`` by discrete cyclic coordinate descent, bit by bit, with
   ``P = r B_e S^T + W^T X_s`` and ``B_s[k] = sgn(P[k] - B_e[k] B_e_hat^T B_s_hat)``;
4. ``B_e = sgn(B_s S)`` overwrites every existing code;
5. ``W = sigma (sigma X_s X_s^T + lambda I)^-1 X_s B_s^T`` from the current batch only;
6. the batch joins the existing set.

``"robust"`` (the default) -- the same stage, made independent of what one batch happens to hold.
The paper's stage learns W from the current batch alone and rewrites every existing code from it,
so a batch of one person (or a class-sorted stream) maps the whole collection onto one or two
codes, and with many classes the fixed ``eta_d`` lets the dissimilar pairs (all but a 1/C
fraction) outvote the similar ones until every code is the same. Robust mode changes seven things
and nothing else:

* **a PCA start**: the first W is the first batch's top principal directions under a random
  rotation (as ITQ starts) instead of random hyperplanes;
* **the first batch is learned from**: after initialising the existing set, the first call runs
  one stage over the same batch (the paper's first batch only initialises, so a one-batch stream
  -- any index build smaller than its batch size -- never used its labels);
* **balance from the stream** (``balance="stream"``): ``eta_d`` is re-derived at every stage from
  the label statistics of everything seen so far. With ``p`` the fraction of similar pairs among
  all labelled pairs (``sum_c n_c^2 / N^2`` for classes; label overlap for multi-label rows),
  ``eta_d_used = min(eta_s, eta_d * 9 p / (1 - p))``: the given ``eta_d`` is the value for a
  balanced 10-class stream (the paper's setting, where ``9 p / (1 - p) = 1``), scaled by the
  stream's similar-to-dissimilar pair ratio, and never above ``eta_s``. ``balance="fixed"`` uses
  ``eta_d`` as given (what an explicit ``--eta-d`` does).
* **replay**: a class-balanced reservoir of up to ``replay`` labelled items (their preprocessed
  features) is kept; every stage is topped up from it so that each class the reservoir knows has
  at least ``q = max(1, replay // classes)`` items in the stage (fewer if the reservoir has
  fewer). Replayed items start from their own existing codes and take part in the ``B_s`` step
  and the W step like new ones; they are not added to the existing set twice.
* **local existing-code update**: ``B_e = sgn(B_s S)`` is applied only to existing items that
  have at least one similar item in the stage; the others keep their codes (the paper's rule
  would give them all ``-sgn(sum of the stage's codes)``).
* **new classes start together**: the items of a class with no similar existing item all start
  from one code, the sign of the sum of their ``sgn(W^T x)`` (the paper starts each from its own
  projection, so a new class began as scattered codes; MNIST-5k sorted by class: 0.64 -> 0.76);
* **new classes are not pushed**: in the ``B_s`` step, a stage item with no similar existing
  item gets no dissimilar term. The paper's term pushes it to ``-sgn(sum of all existing codes)``,
  the same target for every new class, so a class-sorted stream put its new classes on one code
  (MNIST-5k sorted by class, 64 bits: mAP 0.39 with the term, 0.65 without; i.i.d. unchanged).

A robust stage whose new W would collapse the stage's items and the reservoir's (fewer than half
as many distinct codes as before, and fewer than their classes) is refused (the reservoir keeps at
least ``GUARD_PROBE`` items for this check even with ``replay=0``): W and the existing
codes stay, the batch joins the existing set with its current codes, and ``refused_stages_``
counts it (:class:`hashing.errors.CollapseWarning` says so).

The arithmetic never builds the ``n_t x m`` similarity matrix. Every item's similarity row only
depends on its *label pattern* (its class, or its 0/1 label row for multi-label data), so
``B_e S^T`` and ``B_s S`` reduce to per-pattern sums of codes times a small pattern-similarity
matrix; ``B_e[k] B_e_hat^T`` is row k of the Gram matrix ``G = B_e B_e^T`` without column k;
the W step uses the dual form ``sigma X (sigma X^T X + lambda I_n)^-1 B^T`` when ``d > n_t``.
All code-valued sums are integers, so the signs equal those of the dense computation.

The ``B_e`` step has no continuous term, so it meets exact ties (with the paper's etas,
``1.2 c = 0.2 * 6 c``). The rule: ``sgn(eta_s * same - eta_d * other)`` is decided in exact
rational arithmetic with the etas *as written in decimal* (``Fraction(repr(eta))``: 1.2 is 6/5),
and ``sgn(0) = +1``. Exact arithmetic on the official code's single-precision etas agrees
(``single(1.2) > 6 * single(0.2)``); exact arithmetic on the float64 values would not
(``1.2 < 6 * 0.2`` in binary64).
"""

from __future__ import annotations

import warnings
from fractions import Fraction
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse

from hashing.base import LinearEncoder, OnlineHasher, l2_rows, random_unit_columns
from hashing.errors import CollapseWarning, HashingError

#: Parameters of the paper / the official script, per dataset.
PRESETS: dict[str, dict[str, float]] = {
    "cifar10": {"lam": 0.6, "sigma": 0.5, "eta_s": 1.2, "eta_d": 0.2},
    "mnist": {"lam": 0.3, "sigma": 0.5, "eta_s": 1.2, "eta_d": 0.2},
    "places205": {"lam": 0.9, "sigma": 0.8, "eta_s": 1.0, "eta_d": 0.0},
}


def pattern_sums(codes: np.ndarray, pattern_ids: np.ndarray, n_patterns: int) -> np.ndarray:
    """Sum of the +-1 code columns per pattern: (r, m) codes -> (r, n_patterns) integers (float64)."""
    m = codes.shape[1]
    onehot = scipy.sparse.csr_matrix(
        (np.ones(m), (np.arange(m), pattern_ids)), shape=(m, n_patterns), dtype=np.float64
    )
    return np.asarray((onehot.T @ codes.T.astype(np.float64)).T)


def decimal_fraction(value: float) -> Fraction:
    """The rational a float is written as: ``Fraction(repr(x))`` (1.2 -> 6/5, not the binary64
    value 5404319552844595/4503599627370496)."""
    return Fraction(repr(float(value)))


def exact_sign_balance(eta_s: float, eta_d: float, same: np.ndarray, other: np.ndarray) -> np.ndarray:
    """``sgn(eta_s * same - eta_d * other)`` for integer arrays, exact, with sgn(0) = +1.

    Values too close to zero for float64 to decide are settled with :class:`fractions.Fraction`,
    the etas taken as the decimals they are written as (``Fraction(repr(1.2)) == 6/5``), so a
    tie such as ``1.2 * 1 - 0.2 * 6`` is a tie and gives +1.
    """
    v = eta_s * same - eta_d * other
    tol = 16 * np.finfo(np.float64).eps * (np.abs(eta_s * same) + np.abs(eta_d * other))
    out = np.where(v >= 0, 1, -1).astype(np.int8)
    ambiguous = np.argwhere(np.abs(v) <= tol)
    if ambiguous.size:
        fs, fd = decimal_fraction(eta_s), decimal_fraction(eta_d)
        for idx in map(tuple, ambiguous):
            out[idx] = 1 if fs * int(same[idx]) - fd * int(other[idx]) >= 0 else -1
    return out


def _random_rank_within(groups: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(order, rank)``: the rows in a random order grouped by value, and each one's place
    within its group (0 = first), so ``rank < k`` picks k random members of every group."""
    perm = rng.permutation(len(groups))
    order = perm[np.argsort(groups[perm], kind="stable")]
    sorted_groups = groups[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    return order, rank


class PatternSimilarity:
    """The similarity of label patterns: the identity for classes (kept implicit, so 10,000
    classes never make a 10,000 x 10,000 matrix), label overlap for multi-label rows."""

    def __init__(self, n: int, matrix: np.ndarray | None) -> None:
        self.n, self.matrix = n, matrix

    def spread(self, values: np.ndarray) -> np.ndarray:
        """``values @ sim`` over the last axis (sim is symmetric): per pattern, the sum of the
        values of all patterns similar to it."""
        if self.matrix is None:
            return np.asarray(values, np.float64)
        return np.asarray(values, np.float64) @ self.matrix.astype(np.float64)


MODES = ("robust", "paper")
BALANCES = ("stream", "fixed")
DEFAULT_REPLAY = 2000
#: Robust mode keeps at least this many reservoir items (even with ``replay=0``) to check each
#: update against: the collapse guard needs more than the stage's own classes to see a collapse.
GUARD_PROBE = 256
#: ``9 p / (1 - p)`` is 1 for a balanced 10-class stream: the setting the paper's etas are for.
_REFERENCE_ODDS = 9.0


class BSODH(OnlineHasher):
    """Online discrete hashing with balanced similarity (see the module docstring for both modes).

    Parameters follow the paper: ``lam`` (lambda), ``sigma``, ``eta_s``, ``eta_d``. Features are
    centred (``center``: with the mean of the first batch, or ``mean`` if given; the reference
    protocol centres with the whole dataset's mean, which a stream does not have) and scaled to
    unit length (``normalize``). ``dual=None`` picks the cheaper W-step form.

    ``mode="robust"`` (default) adds the stream-derived balance (``balance``), the replay
    reservoir of ``replay`` items and the local existing-code update; ``mode="paper"`` is the
    official stage exactly (``balance`` and ``replay`` are then ignored).
    """

    linear = True

    def __init__(
        self,
        n_bits: int = 32,
        lam: float = 0.6,
        sigma: float = 0.5,
        eta_s: float = 1.2,
        eta_d: float = 0.2,
        *,
        mode: str = "robust",
        balance: str = "stream",
        replay: int = DEFAULT_REPLAY,
        center: bool = True,
        normalize: bool = True,
        mean: np.ndarray | None = None,
        dual: bool | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(n_bits, seed)
        for name, value in (("lam", lam), ("sigma", sigma), ("eta_s", eta_s), ("eta_d", eta_d)):
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float, np.number))
                or not np.isfinite(value)
            ):
                raise HashingError(f"{name} must be a finite number, not {value!r}", param=name)
        if lam <= 0 or sigma <= 0:
            raise HashingError(f"lam and sigma must be > 0 (got lam={lam}, sigma={sigma})")
        if eta_s < 0 or eta_d < 0:
            raise HashingError(f"eta_s and eta_d must be >= 0 (got {eta_s}, {eta_d})", param="eta_d")
        if mode not in MODES:
            raise HashingError(f"BSODH mode must be one of {', '.join(MODES)}, not {mode!r}", param="mode")
        if balance not in BALANCES:
            raise HashingError(
                f"BSODH balance must be one of {', '.join(BALANCES)}, not {balance!r}", param="balance"
            )
        if isinstance(replay, bool) or not isinstance(replay, (int, np.integer)) or replay < 0:
            raise HashingError(
                f"replay must be a whole number >= 0 (0 = off), not {replay!r}", param="replay"
            )
        self.lam, self.sigma, self.eta_s, self.eta_d = float(lam), float(sigma), float(eta_s), float(eta_d)
        self.mode, self.balance, self.replay = mode, balance, int(replay)
        self.center, self.normalize, self.dual = bool(center), bool(normalize), dual
        self.mean_: np.ndarray | None = None if mean is None else np.asarray(mean, np.float64)
        self.W_: np.ndarray | None = None
        self.codes_e_ = np.zeros((self.n_bits, 0), np.int8)  # B_e, one column per existing item
        self.pattern_e_ = np.zeros(0, np.int64)  # label pattern id of each existing item
        self._patterns: list[Any] = []  # class value (single-label) or label-row bytes
        self._pattern_index: dict[Any, int] = {}
        self._pattern_rows: list[np.ndarray] = []  # multi-label: the 0/1 rows
        # robust mode: the replay reservoir (preprocessed features, pattern ids, existing-set rows)
        self.replay_X_: np.ndarray | None = None
        self.replay_pattern_ = np.zeros(0, np.int64)
        self.replay_pos_ = np.zeros(0, np.int64)
        self.refused_stages_ = 0
        self.last_eta_d_: float | None = None  # the eta_d the last stage used

    @property
    def robust(self) -> bool:
        return self.mode == "robust"

    # -- set-up -------------------------------------------------------------------------------
    def _init_params(self, X: np.ndarray) -> None:
        self.W_ = random_unit_columns(self.rng_, X.shape[1], self.n_bits)
        if self.center and self.mean_ is None:
            self.mean_ = X.mean(axis=0)
        if self.robust:
            self.W_ = self._pca_start(self._prep(X), self.W_)

    def _pca_start(self, Xn: np.ndarray, W_random: np.ndarray) -> np.ndarray:
        """Robust mode's first W: the first batch's top principal directions under a random
        rotation (ITQ's start), unit columns; columns beyond the batch's rank stay random. The
        first codes then follow the data's main axes of variation instead of random hyperplanes
        (1,000 identities, 64 bits: mAP 0.88 -> 0.94; MNIST-5k unchanged)."""
        k = min(self.n_bits, Xn.shape[1], len(Xn) - 1)
        if k < 1:
            return W_random
        _, _, vt = np.linalg.svd(Xn - Xn.mean(axis=0), full_matrices=False)
        rotation = np.linalg.qr(self.rng_.standard_normal((k, k)))[0]
        W = W_random.copy()
        W[:, :k] = vt[:k].T @ rotation
        return W / np.linalg.norm(W, axis=0, keepdims=True)

    def _prep(self, X: np.ndarray) -> np.ndarray:
        fresh = self.center and self.mean_ is not None
        if fresh:
            X = X - self.mean_
        return l2_rows(X, in_place=fresh) if self.normalize else X  # a fresh array: scaled in place

    def _project(self, X: np.ndarray) -> np.ndarray:
        return self._prep(X) @ self.W_

    def export_encoder(self) -> LinearEncoder:
        """A frozen copy of the current hash function (for an index's snapshot)."""
        if self.W_ is None:
            raise HashingError("BSODH has no hash function yet: initialize or partial_fit first")
        mean = self.mean_.copy() if (self.center and self.mean_ is not None) else None
        return LinearEncoder(self.W_.copy(), mean, self.normalize)

    # -- label patterns -----------------------------------------------------------------------
    def _pattern_ids(self, y: np.ndarray) -> np.ndarray:
        if y.ndim == 1:
            keys: list[Any] = [int(v) for v in y]
        else:
            keys = [row.tobytes() for row in y]
        ids = np.empty(len(keys), np.int64)
        for i, key in enumerate(keys):
            pid = self._pattern_index.get(key)
            if pid is None:
                pid = len(self._patterns)
                self._pattern_index[key] = pid
                self._patterns.append(key)
                if y.ndim == 2:
                    self._pattern_rows.append(y[i].copy())
            ids[i] = pid
        return ids

    def _pattern_similarity(self) -> PatternSimilarity:
        """Which label patterns are similar: the same class, or at least one shared label."""
        if self.n_labels_ == 0:
            return PatternSimilarity(len(self._patterns), None)
        rows = np.stack(self._pattern_rows).astype(np.int64)
        return PatternSimilarity(len(rows), (rows @ rows.T) > 0)

    def stream_eta_d(self, counts: np.ndarray, sim: PatternSimilarity) -> float:
        """``eta_d`` from the stream's label statistics (``balance="stream"``): ``counts`` items per
        label pattern seen so far, ``sim`` the pattern similarity. See the module docstring."""
        c = np.asarray(counts, np.float64)
        total = c.sum() ** 2
        if total == 0:
            return self.eta_d
        p = float(sim.spread(c) @ c) / total
        if p >= 1.0:
            return self.eta_s
        return min(self.eta_s, self.eta_d * _REFERENCE_ODDS * p / (1.0 - p))

    # -- one stage ----------------------------------------------------------------------------
    def _partial_fit(self, X: np.ndarray, y: np.ndarray | None) -> None:
        assert y is not None and self.W_ is not None
        Xn = self._prep(X)  # n x d (the reference's X_s is its transpose)
        pids_new = self._pattern_ids(y)
        n_new = len(pids_new)
        m = self.codes_e_.shape[1]
        if m == 0:  # first stage: initialise the existing set
            self.codes_e_ = np.where(Xn @ self.W_ >= 0, 1, -1).T.astype(np.int8)
            self.pattern_e_ = pids_new
            self._remember(Xn, pids_new, np.arange(n_new))
            if self.robust:  # ... and learn from it: a one-batch stream must not waste its labels
                self._stage(Xn[:0], pids_new[:0], Xn, pids_new, np.arange(n_new))
            return
        replayed = self._replay_rows(pids_new, len(self._patterns)) if self.robust else None
        if replayed is not None and replayed.size:
            self._stage(
                Xn,
                pids_new,
                self.replay_X_[replayed].astype(np.float64),
                self.replay_pattern_[replayed],
                self.replay_pos_[replayed],
            )
        else:
            self._stage(Xn, pids_new, Xn[:0], pids_new[:0], np.zeros(0, np.int64))
        self._remember(Xn, pids_new, m + np.arange(n_new))

    def _stage(
        self,
        Xn: np.ndarray,
        pids_new: np.ndarray,
        Xr: np.ndarray,
        pids_r: np.ndarray,
        pos_r: np.ndarray,
    ) -> None:
        """One learning stage over new items ``Xn`` and existing items ``Xr`` (rows ``pos_r`` of
        the existing set: replayed ones, or the whole first batch), which start from their own
        codes. New items join the existing set; existing ones are not added again."""
        n_new, m = len(pids_new), self.codes_e_.shape[1]
        Xs, pids = np.concatenate([Xn, Xr]), np.concatenate([pids_new, pids_r])
        sim = self._pattern_similarity()
        n_pat = sim.n
        eta_d = self.eta_d
        if self.robust and self.balance == "stream":
            seen = np.bincount(self.pattern_e_, minlength=n_pat) + np.bincount(pids_new, minlength=n_pat)
            eta_d = self.stream_eta_d(seen, sim)
        self.last_eta_d_ = eta_d

        Bs = self._start_codes(Xs, pids, sim, m)
        Bs[:, n_new:] = self.codes_e_[:, pos_r]  # existing items start from their own codes
        self._discrete_bs_step(Bs, Xs, pids, sim, eta_d)
        codes_e = self._existing_update(Bs, pids, sim, eta_d)
        W_new = self._w_step(Xs, Bs)
        if self.robust and self._would_collapse(Xs, pids, W_new):
            self.refused_stages_ += 1
            warnings.warn(
                f"BSODH refused stage {self.n_batches_ + 1}: its hash function would map the stage's "
                f"and the reservoir's items onto too few distinct codes; the hash is unchanged",
                CollapseWarning,
                stacklevel=5,
            )
            new_codes = np.where(Xn @ self.W_ >= 0, 1, -1).T.astype(np.int8)
            self.codes_e_ = np.concatenate([self.codes_e_, new_codes], axis=1)
        else:
            self.W_ = W_new
            self.codes_e_ = np.concatenate([codes_e, Bs[:, :n_new].astype(np.int8)], axis=1)
        self.pattern_e_ = np.concatenate([self.pattern_e_, pids_new])

    def _start_codes(self, Xs: np.ndarray, pids: np.ndarray, sim: PatternSimilarity, m: int) -> np.ndarray:
        """Copy the first similar existing item's code, else ``sgn(W^T x)``: (r, n) float +-1."""
        Bs = np.where((Xs @ self.W_).T >= 0, 1.0, -1.0)
        first = np.full(sim.n, m, np.int64)
        uniq, first_idx = np.unique(self.pattern_e_, return_index=True)
        first[uniq] = first_idx
        first_similar = first if sim.matrix is None else np.where(sim.matrix, first[None, :], m).min(axis=1)
        src = first_similar[pids]
        has = src < m
        Bs[:, has] = self.codes_e_[:, src[has]]
        if self.robust and not has.all():  # a new class starts from one code: its items' vote
            new = ~has
            votes = pattern_sums(Bs[:, new].astype(np.int8), pids[new], sim.n)
            Bs[:, new] = np.where(votes[:, pids[new]] >= 0, 1.0, -1.0)
        return Bs

    def _discrete_bs_step(
        self, Bs: np.ndarray, Xs: np.ndarray, pids: np.ndarray, sim: PatternSimilarity, eta_d: float
    ) -> None:
        """``B_s`` by discrete cyclic coordinate descent, in place, bit by bit, using the rows
        updated so far; ``P = r B_e S^T + W^T X_s`` with ``B_e S^T`` from per-pattern sums."""
        r = self.n_bits
        Be = self.codes_e_.astype(np.float64)
        n_pat = sim.n
        sums_e = pattern_sums(self.codes_e_, self.pattern_e_, n_pat)  # r x P, integers
        total_e = Be.sum(axis=1, keepdims=True)
        same = sim.spread(sums_e)[:, pids]  # sum of B_e over similar items, r x n
        other = total_e - same
        if self.robust:  # a class new to the existing set: no push towards -sum(B_e)
            known = sim.spread(np.bincount(self.pattern_e_, minlength=n_pat).astype(np.float64))
            other = other * (known[pids] > 0)[None, :]
        P = float(r) * (float(r) * (self.eta_s * same - eta_d * other)) + (Xs @ self.W_).T
        G = Be @ Be.T
        for k in range(r):
            g = G[k].copy()
            g[k] = 0.0
            Bs[k] = np.where(P[k] - g @ Bs >= 0, 1.0, -1.0)

    def _existing_update(
        self, Bs: np.ndarray, pids: np.ndarray, sim: PatternSimilarity, eta_d: float
    ) -> np.ndarray:
        """``B_e = sgn(B_s S)``, per existing item's pattern (robust mode: only items with a
        similar item in the stage change)."""
        n_pat = sim.n
        sums_s = pattern_sums(Bs.astype(np.int8), pids, n_pat)
        same_s = sim.spread(sums_s)  # r x P: sum of B_s over stage items similar to pattern q
        total_s = Bs.sum(axis=1, keepdims=True)
        be_pattern = exact_sign_balance(self.eta_s, eta_d, same_s, total_s - same_s)
        codes_e = be_pattern[:, self.pattern_e_]
        if self.robust:
            touched = sim.spread(np.bincount(pids, minlength=n_pat).astype(np.float64)) > 0
            keep = ~touched[self.pattern_e_]
            codes_e[:, keep] = self.codes_e_[:, keep]
        return codes_e

    def _w_step(self, Xs: np.ndarray, Bs: np.ndarray) -> np.ndarray:
        """``W = sigma (sigma X X^T + lambda I)^-1 X B^T`` from the stage (dual form when d > n).

        The Gram matrix is symmetric, so BLAS ``syrk`` computes one triangle of it (half the
        multiply-adds of a GEMM; the Cholesky factorisation reads only that triangle)."""
        n, d = Xs.shape
        use_dual = self.dual if self.dual is not None else d > n
        # Upper triangle of sigma X X^T (n x n, dual) or sigma X^T X (d x d, primal). BLAS wants
        # column-major input: the transpose of a row-major X is that, without a copy.
        XT = np.ascontiguousarray(Xs).T
        gram = scipy.linalg.blas.dsyrk(self.sigma, XT, trans=1 if use_dual else 0, lower=0)
        gram[np.diag_indices(gram.shape[0])] += self.lam
        factor = scipy.linalg.cho_factor(gram, lower=False, overwrite_a=True, check_finite=False)
        if use_dual:
            alpha = scipy.linalg.cho_solve(factor, Bs.T, check_finite=False)
            return self.sigma * (Xs.T @ alpha)
        return self.sigma * scipy.linalg.cho_solve(factor, Xs.T @ Bs.T, check_finite=False)

    # -- robust mode: replay and the collapse guard ----------------------------------------------
    def _replay_rows(self, pids_new: np.ndarray, n_pat: int) -> np.ndarray:
        """Reservoir rows that top the stage up to ``q = max(1, replay // classes)`` items per
        class the reservoir knows (a class already that well represented gets none)."""
        if not self.replay or self.replay_X_ is None or not len(self.replay_pattern_):
            return np.zeros(0, np.int64)
        held = self.replay_pattern_
        q = max(1, self.replay // len(np.unique(held)))
        need = np.maximum(0, q - np.bincount(pids_new, minlength=n_pat))
        order, rank = _random_rank_within(held, self.rng_)
        return np.sort(order[rank < need[held[order]]])

    def _remember(self, Xn: np.ndarray, pids: np.ndarray, positions: np.ndarray) -> None:
        """Add a batch to the class-balanced reservoir; past ``replay`` items, the largest
        classes give up random members first."""
        if not self.robust:
            return
        if self.replay_X_ is None:
            self.replay_X_ = np.zeros((0, Xn.shape[1]), np.float32)
        X = np.concatenate([self.replay_X_, Xn.astype(np.float32)])  # float32: half the saved state
        P = np.concatenate([self.replay_pattern_, pids])
        pos = np.concatenate([self.replay_pos_, positions])
        capacity = max(self.replay, GUARD_PROBE)
        if len(P) > capacity:
            order, rank = _random_rank_within(P, self.rng_)
            keep = np.sort(order[np.argsort(rank, kind="stable")[:capacity]])
            X, P, pos = X[keep], P[keep], pos[keep]
        self.replay_X_, self.replay_pattern_, self.replay_pos_ = X, P, pos

    def _would_collapse(self, Xs: np.ndarray, pids: np.ndarray, W_new: np.ndarray) -> bool:
        """The new W maps the stage's items and the reservoir's (a class-balanced sample of
        everything learned so far) onto fewer than half the distinct codes the old W did, and
        onto fewer codes than they have classes."""
        both = np.concatenate([self.W_, W_new], axis=1)  # one product for the old and new codes
        signs = [Xs @ both >= 0]
        if self.replay_X_ is not None and len(self.replay_pattern_):
            signs.append(self.replay_X_ @ both.astype(np.float32) >= 0)
            pids = np.concatenate([pids, self.replay_pattern_])
        bits = np.concatenate(signs)
        r = self.n_bits
        before = len(np.unique(np.packbits(bits[:, :r], axis=1), axis=0))
        after = len(np.unique(np.packbits(bits[:, r:], axis=1), axis=0))
        return after < 0.5 * before and after < len(np.unique(pids))

    # -- (de)serialisation without pickles ----------------------------------------------------
    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-able parameters + plain numeric arrays (saved with ``np.savez``, no pickles)."""
        params = {
            "kind": "bsodh",
            "n_bits": self.n_bits,
            "lam": self.lam,
            "sigma": self.sigma,
            "eta_s": self.eta_s,
            "eta_d": self.eta_d,
            "mode": self.mode,
            "balance": self.balance,
            "replay": self.replay,
            "center": self.center,
            "normalize": self.normalize,
            "seed": self.seed,
            "n_features": self.n_features_,
            "n_labels": self.n_labels_,
            "n_batches": self.n_batches_,
            "n_seen": self.n_seen_,
            "refused_stages": self.refused_stages_,
            "last_eta_d": self.last_eta_d_,
            "rng": self.rng_.bit_generator.state,
        }
        arrays: dict[str, np.ndarray] = {"codes_e": self.codes_e_, "pattern_e": self.pattern_e_}
        if self.W_ is not None:
            arrays["W"] = self.W_
        if self.mean_ is not None:
            arrays["mean"] = self.mean_
        if self.n_labels_ == 0:
            arrays["patterns"] = np.asarray(self._patterns, np.int64)
        elif self._pattern_rows:
            arrays["patterns"] = np.stack(self._pattern_rows).astype(np.uint8)
        if self.replay_X_ is not None:
            arrays["replay_X"] = self.replay_X_
            arrays["replay_pattern"] = self.replay_pattern_
            arrays["replay_pos"] = self.replay_pos_
        return params, arrays

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> BSODH:
        """Rebuild a saved BSODH. States saved before robust mode existed have no ``mode``: they
        were the paper's stage, and load as ``mode="paper"``."""
        obj = cls(
            params["n_bits"],
            params["lam"],
            params["sigma"],
            params["eta_s"],
            params["eta_d"],
            mode=params.get("mode", "paper"),
            balance=params.get("balance", "stream"),
            replay=int(params.get("replay", DEFAULT_REPLAY)),
            center=params["center"],
            normalize=params["normalize"],
            seed=params["seed"],
        )
        obj.n_features_ = params["n_features"]
        obj.n_labels_ = params["n_labels"]
        obj.n_batches_ = params["n_batches"]
        obj.n_seen_ = params["n_seen"]
        obj.refused_stages_ = int(params.get("refused_stages", 0))
        obj.last_eta_d_ = params.get("last_eta_d")
        if "rng" in params:
            obj.rng_.bit_generator.state = params["rng"]
        obj.W_ = arrays.get("W")
        obj.mean_ = arrays.get("mean")
        obj.codes_e_ = np.asarray(arrays["codes_e"], np.int8).reshape(obj.n_bits, -1)
        obj.pattern_e_ = np.asarray(arrays["pattern_e"], np.int64)
        pats = arrays.get("patterns")
        if pats is not None:
            if obj.n_labels_ == 0:
                obj._patterns = [int(v) for v in pats]
            else:
                obj._pattern_rows = [np.asarray(row, np.uint8) for row in pats]
                obj._patterns = [row.tobytes() for row in obj._pattern_rows]
            obj._pattern_index = {key: i for i, key in enumerate(obj._patterns)}
        if "replay_X" in arrays:
            obj.replay_X_ = np.asarray(arrays["replay_X"], np.float32)
            obj.replay_pattern_ = np.asarray(arrays["replay_pattern"], np.int64)
            obj.replay_pos_ = np.asarray(arrays["replay_pos"], np.int64)
        if obj.W_ is not None and obj.W_.shape != (obj.n_features_, obj.n_bits):
            raise HashingError(
                f"BSODH state: W has shape {obj.W_.shape}, expected ({obj.n_features_}, {obj.n_bits})"
            )
        if obj.codes_e_.shape[1] != obj.pattern_e_.shape[0]:
            raise HashingError("BSODH state: codes and label patterns disagree in length")
        return obj
