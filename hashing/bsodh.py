"""BSODH: Balanced Similarity for Online Discrete Hashing (Lin et al., AAAI 2019).

One call of :meth:`BSODH.partial_fit` is one stage of the authors' ``BSODH.m`` loop:

1. the first batch only initialises the existing codes ``B_e = sgn(W^T X)``;
2. later batches: ``S = eta_s`` where a new and an existing item share a label, ``-eta_d``
   elsewhere, scaled by ``r``; a new item that has a similar existing item starts from the code
   of the *first* such item, the others from ``sgn(W^T x)``;
3. ``B_s`` by discrete cyclic coordinate descent, bit by bit, with
   ``P = r B_e S^T + W^T X_s`` and ``B_s[k] = sgn(P[k] - B_e[k] B_e_hat^T B_s_hat)``;
4. ``B_e = sgn(B_s S)`` overwrites every existing code;
5. ``W = sigma (sigma X_s X_s^T + lambda I)^-1 X_s B_s^T`` from the current batch only;
6. the batch joins the existing set.

The arithmetic never builds the ``n_t x m`` similarity matrix. Every item's similarity row only
depends on its *label pattern* (its class, or its 0/1 label row for multi-label data), so
``B_e S^T`` and ``B_s S`` reduce to per-pattern sums of codes times a small pattern-similarity
matrix; ``B_e[k] B_e_hat^T`` is row k of the Gram matrix ``G = B_e B_e^T`` without column k;
the W step uses the dual form ``sigma X (sigma X^T X + lambda I_n)^-1 B^T`` when ``d > n_t``.
All code-valued sums are integers, so the signs equal those of the dense computation; the
``B_e`` step, which has no continuous term, decides exact ties (``6c = d`` for the default etas)
in exact rational arithmetic with ``sgn(0) = +1``.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse

from hashing.base import LinearEncoder, OnlineHasher, l2_rows, random_unit_columns
from hashing.errors import HashingError

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


def exact_sign_balance(eta_s: float, eta_d: float, same: np.ndarray, other: np.ndarray) -> np.ndarray:
    """``sgn(eta_s * same - eta_d * other)`` for integer arrays, exact, with sgn(0) = +1.

    Values too close to zero for float64 to decide are settled with :class:`fractions.Fraction`
    (the etas are taken at their exact binary values).
    """
    v = eta_s * same - eta_d * other
    tol = 16 * np.finfo(np.float64).eps * (np.abs(eta_s * same) + np.abs(eta_d * other))
    out = np.where(v >= 0, 1, -1).astype(np.int8)
    ambiguous = np.argwhere(np.abs(v) <= tol)
    if ambiguous.size:
        fs, fd = Fraction(eta_s), Fraction(eta_d)
        for idx in map(tuple, ambiguous):
            out[idx] = 1 if fs * int(same[idx]) - fd * int(other[idx]) >= 0 else -1
    return out


class BSODH(OnlineHasher):
    """Online discrete hashing with balanced similarity, exactly as the official stage runs.

    Parameters follow the paper: ``lam`` (lambda), ``sigma``, ``eta_s``, ``eta_d``. Features are
    centred (``center``: with the mean of the first batch, or ``mean`` if given; the reference
    protocol centres with the whole dataset's mean, which a stream does not have) and scaled to
    unit length (``normalize``). ``dual=None`` picks the cheaper W-step form.
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
        center: bool = True,
        normalize: bool = True,
        mean: np.ndarray | None = None,
        dual: bool | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(n_bits, seed)
        if lam <= 0 or sigma <= 0:
            raise HashingError(f"lam and sigma must be > 0 (got lam={lam}, sigma={sigma})")
        if eta_s < 0 or eta_d < 0:
            raise HashingError(f"eta_s and eta_d must be >= 0 (got {eta_s}, {eta_d})")
        self.lam, self.sigma, self.eta_s, self.eta_d = float(lam), float(sigma), float(eta_s), float(eta_d)
        self.center, self.normalize, self.dual = bool(center), bool(normalize), dual
        self.mean_: np.ndarray | None = None if mean is None else np.asarray(mean, np.float64)
        self.W_: np.ndarray | None = None
        self.codes_e_ = np.zeros((self.n_bits, 0), np.int8)  # B_e, one column per existing item
        self.pattern_e_ = np.zeros(0, np.int64)  # label pattern id of each existing item
        self._patterns: list[Any] = []  # class value (single-label) or label-row bytes
        self._pattern_index: dict[Any, int] = {}
        self._pattern_rows: list[np.ndarray] = []  # multi-label: the 0/1 rows

    # -- set-up -------------------------------------------------------------------------------
    def _init_params(self, X: np.ndarray) -> None:
        self.W_ = random_unit_columns(self.rng_, X.shape[1], self.n_bits)
        if self.center and self.mean_ is None:
            self.mean_ = X.mean(axis=0)

    def _prep(self, X: np.ndarray) -> np.ndarray:
        if self.center and self.mean_ is not None:
            X = X - self.mean_
        return l2_rows(X) if self.normalize else X

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

    def _pattern_similarity(self) -> np.ndarray:
        """(P, P) bool: patterns similar when they share a class / at least one label."""
        if self.n_labels_ == 0:
            return np.eye(len(self._patterns), dtype=bool)
        rows = np.stack(self._pattern_rows).astype(np.int64)
        return (rows @ rows.T) > 0

    # -- one stage ----------------------------------------------------------------------------
    def _partial_fit(self, X: np.ndarray, y: np.ndarray | None) -> None:
        assert y is not None and self.W_ is not None
        r = self.n_bits
        Xs = self._prep(X)  # n x d (the reference's X_s is its transpose)
        pids = self._pattern_ids(y)
        proj = (Xs @ self.W_).T  # W^T X_s, r x n
        if self.codes_e_.shape[1] == 0:  # first stage: initialise the existing set only
            self.codes_e_ = np.where(proj >= 0, 1, -1).astype(np.int8)
            self.pattern_e_ = pids
            return
        Be = self.codes_e_.astype(np.float64)
        m, n = Be.shape[1], Xs.shape[0]
        sim = self._pattern_similarity()
        n_pat = sim.shape[0]
        sim_f = sim.astype(np.float64)

        # Start codes: copy the first similar existing item's code, else sgn(W^T x).
        Bs = np.where(proj >= 0, 1.0, -1.0)
        first = np.full(n_pat, m, np.int64)
        uniq, first_idx = np.unique(self.pattern_e_, return_index=True)
        first[uniq] = first_idx
        first_similar = np.where(sim, first[None, :], m).min(axis=1)
        src = first_similar[pids]
        has = src < m
        Bs[:, has] = Be[:, src[has]]

        # P = r * B_e S^T + W^T X_s, with B_e S^T = r (eta_s a - eta_d (rowsum - a)) per pattern.
        sums_e = pattern_sums(self.codes_e_, self.pattern_e_, n_pat)  # r x P, integers
        total_e = Be.sum(axis=1, keepdims=True)
        same = (sums_e @ sim_f.T)[:, pids]  # sum of B_e over similar existing items, r x n
        P = float(r) * (float(r) * (self.eta_s * same - self.eta_d * (total_e - same))) + proj

        # B_s: discrete cyclic coordinate descent, bit by bit, using rows updated so far.
        G = Be @ Be.T
        for k in range(r):
            g = G[k].copy()
            g[k] = 0.0
            Bs[k] = np.where(P[k] - g @ Bs >= 0, 1.0, -1.0)

        # B_e = sgn(B_s S): depends on each existing item's pattern only.
        sums_s = pattern_sums(Bs.astype(np.int8), pids, n_pat)
        same_s = sums_s @ sim_f  # r x P: sum of B_s over batch items similar to pattern q
        total_s = Bs.sum(axis=1, keepdims=True)
        be_pattern = exact_sign_balance(self.eta_s, self.eta_d, same_s, total_s - same_s)
        codes_e = be_pattern[:, self.pattern_e_]

        # W from the current batch only (dual form when d > n).
        d = Xs.shape[1]
        use_dual = self.dual if self.dual is not None else d > n
        if use_dual:
            K = Xs @ Xs.T
            K *= self.sigma
            K[np.diag_indices(n)] += self.lam
            alpha = scipy.linalg.cho_solve(
                scipy.linalg.cho_factor(K, overwrite_a=True, check_finite=False), Bs.T, check_finite=False
            )
            self.W_ = self.sigma * (Xs.T @ alpha)
        else:
            C = Xs.T @ Xs
            C *= self.sigma
            C[np.diag_indices(d)] += self.lam
            rhs = Xs.T @ Bs.T
            self.W_ = self.sigma * scipy.linalg.cho_solve(
                scipy.linalg.cho_factor(C, overwrite_a=True, check_finite=False), rhs, check_finite=False
            )

        self.codes_e_ = np.concatenate([codes_e, Bs.astype(np.int8)], axis=1)
        self.pattern_e_ = np.concatenate([self.pattern_e_, pids])

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
            "center": self.center,
            "normalize": self.normalize,
            "seed": self.seed,
            "n_features": self.n_features_,
            "n_labels": self.n_labels_,
            "n_batches": self.n_batches_,
            "n_seen": self.n_seen_,
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
        return params, arrays

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> BSODH:
        obj = cls(
            params["n_bits"],
            params["lam"],
            params["sigma"],
            params["eta_s"],
            params["eta_d"],
            center=params["center"],
            normalize=params["normalize"],
            seed=params["seed"],
        )
        obj.n_features_ = params["n_features"]
        obj.n_labels_ = params["n_labels"]
        obj.n_batches_ = params["n_batches"]
        obj.n_seen_ = params["n_seen"]
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
        if obj.W_ is not None and obj.W_.shape != (obj.n_features_, obj.n_bits):
            raise HashingError(
                f"BSODH state: W has shape {obj.W_.shape}, expected ({obj.n_features_}, {obj.n_bits})"
            )
        if obj.codes_e_.shape[1] != obj.pattern_e_.shape[0]:
            raise HashingError("BSODH state: codes and label patterns disagree in length")
        return obj
