"""Baselines under the :class:`~hashing.base.OnlineHasher` interface, following the reference
implementations of the MIHash online-hashing framework (``fcakir/mihash``, ``+Methods/*.m``).

Every method consumes a stream batch in the order the framework's ``train_online`` loop feeds it:
OSH one item per step, OKH and AdaptHash consecutive pairs (an odd item waits for the next
batch), SketchHash chunks of ``batch_size`` items. Inputs are used as given: the benchmark
applies the framework's preprocessing (centre, then unit rows) to every method alike.

Every method saves and restores its state without pickles (:meth:`OnlineHasher.get_state`), and
those whose hash function is linear (all but OKH's kernel features) export a frozen
:class:`~hashing.base.LinearEncoder`, so they can back a :class:`~hashing.index.HashIndex` as
BSODH does. The registry of names is :mod:`hashing.registry`.
"""

from __future__ import annotations

import numpy as np

from hashing.base import LinearEncoder, OnlineHasher, random_unit_columns
from hashing.errors import HashingError


def _similar(ya: np.ndarray, yb: np.ndarray) -> bool:
    """``affinity.m`` for one pair: equal class, or at least one shared label."""
    if ya.ndim == 0:
        return bool(ya == yb)
    return bool(np.dot(ya.astype(np.int64), yb.astype(np.int64)) > 0)


class LSH(OnlineHasher):
    """Random hyperplanes ``sgn(W^T x)`` with Gaussian unit columns; nothing is learned."""

    supervised = False
    linear = True
    _fitted = ("W_",)

    def _init_params(self, X: np.ndarray) -> None:
        self.W_ = random_unit_columns(self.rng_, X.shape[1], self.n_bits)

    def _partial_fit(self, X: np.ndarray, y: np.ndarray | None) -> None:
        return None

    def export_encoder(self) -> LinearEncoder:
        return self._linear_encoder(getattr(self, "W_", None))

    def _project(self, X: np.ndarray) -> np.ndarray:
        return X @ self.W_


class ITQ(OnlineHasher):
    """Iterative Quantisation (Gong & Lazebnik), an *offline* reference: every ``partial_fit``
    refits PCA + the rotation on all data seen so far (what an offline method would have to do)."""

    supervised = False
    linear = True
    _hyper = ("n_iter",)
    _fitted = ("mean_", "pca_", "R_")

    def __init__(self, n_bits: int, n_iter: int = 50, seed: int = 0) -> None:
        super().__init__(n_bits, seed)
        self.n_iter = n_iter
        self._seen: list[np.ndarray] = []

    def export_encoder(self) -> LinearEncoder:
        if not hasattr(self, "R_"):
            raise HashingError("ITQ has not been fitted yet: partial_fit it on a first batch")
        return self._linear_encoder(self.pca_ @ self.R_, self.mean_)

    def _extra_arrays(self) -> dict[str, np.ndarray]:
        return {"seen": np.concatenate(self._seen)} if self._seen else {}

    def _restore_extra(self, arrays: dict[str, np.ndarray]) -> None:
        self._seen = [np.asarray(arrays["seen"], np.float64)] if "seen" in arrays else []

    def _init_params(self, X: np.ndarray) -> None:
        if X.shape[1] < self.n_bits:
            raise HashingError(f"ITQ needs n_features >= n_bits ({X.shape[1]} < {self.n_bits})")

    def _partial_fit(self, X: np.ndarray, y: np.ndarray | None) -> None:
        self._seen.append(X)
        data = np.concatenate(self._seen)
        self.mean_ = data.mean(axis=0)
        centred = data - self.mean_
        cov = centred.T @ centred
        evals, evecs = np.linalg.eigh(cov)
        self.pca_ = evecs[:, np.argsort(evals)[::-1][: self.n_bits]]
        V = centred @ self.pca_
        R = np.linalg.qr(self.rng_.standard_normal((self.n_bits, self.n_bits)))[0]
        for _ in range(self.n_iter):
            B = np.where(V @ R >= 0, 1.0, -1.0)
            U, _, Wt = np.linalg.svd(B.T @ V)
            R = (U @ Wt).T
        self.R_ = R

    def _project(self, X: np.ndarray) -> np.ndarray:
        if not hasattr(self, "R_"):
            raise HashingError("ITQ has not been fitted yet")
        return (X - self.mean_) @ self.pca_ @ self.R_


class OSH(OnlineHasher):
    """Online Supervised Hashing (Cakir & Sclaroff): each label gets a random ECOC codeword when
    first seen; W follows it with SGD per item, either the online-boosting exponential loss
    (``sgd_boost=True``, the framework default) or the per-bit hinge loss."""

    linear = True
    _hyper = ("stepsize", "sgd_boost")
    _fitted = ("W_",)

    def __init__(self, n_bits: int, stepsize: float = 0.1, sgd_boost: bool = True, seed: int = 0) -> None:
        super().__init__(n_bits, seed)
        self.stepsize, self.sgd_boost = float(stepsize), bool(sgd_boost)
        self.codewords_: dict[int, np.ndarray] = {}

    def _init_params(self, X: np.ndarray) -> None:
        self.W_ = random_unit_columns(self.rng_, X.shape[1], self.n_bits)

    def export_encoder(self) -> LinearEncoder:
        return self._linear_encoder(getattr(self, "W_", None))

    def _extra_arrays(self) -> dict[str, np.ndarray]:
        keys = sorted(self.codewords_)
        words = np.stack([self.codewords_[k] for k in keys]) if keys else np.zeros((0, self.n_bits))
        return {"codeword_labels": np.asarray(keys, np.int64), "codewords": words}

    def _restore_extra(self, arrays: dict[str, np.ndarray]) -> None:
        labels, words = arrays.get("codeword_labels"), arrays.get("codewords")
        if labels is None or words is None:
            return
        if words.shape != (len(labels), self.n_bits):
            raise HashingError("OSH state: codewords and their labels disagree")
        self.codewords_ = {int(k): np.array(w, np.float64) for k, w in zip(labels, words, strict=True)}

    def _new_codeword(self) -> np.ndarray:
        return self.rng_.integers(0, 2, self.n_bits).astype(np.float64) * 2 - 1

    def _targets(self, label: np.ndarray) -> list[np.ndarray]:
        keys = [int(label)] if label.ndim == 0 else [int(i) for i in np.flatnonzero(label)]
        # an item with no active label (a neutral face in AU data) has no target codeword: it
        # teaches nothing, like an unlabelled item
        for key in keys:
            if key not in self.codewords_:
                self.codewords_[key] = self._new_codeword()
        return [self.codewords_[k] for k in keys]

    def _partial_fit(self, X: np.ndarray, y: np.ndarray | None) -> None:
        assert y is not None
        W, st = self.W_, self.stepsize
        for x, label in zip(X, y, strict=True):
            for c in self._targets(np.asarray(label)):
                if not self.sgd_boost:
                    active = (x @ W) * c < 1
                    W[:, active] += st * np.outer(x, c[active])
                    continue
                # Exponents are clipped at 50 so a diverging run cannot turn W into inf/NaN.
                margins = np.empty(self.n_bits)
                for j in range(self.n_bits):
                    weight = np.exp(min(-margins[:j].sum(), 50.0)) if j else 1.0
                    m = c[j] * (W[:, j] @ x)
                    W[:, j] += st * weight * np.exp(min(-m, 50.0)) * c[j] * x
                    margins[j] = c[j] * (W[:, j] @ x)

    def _project(self, X: np.ndarray) -> np.ndarray:
        return X @ self.W_


class _PairStream(OnlineHasher):
    """Feeds consecutive pairs of the stream to ``_update_pair``; an odd item waits."""

    def __init__(self, n_bits: int, seed: int = 0) -> None:
        super().__init__(n_bits, seed)
        self._pending: tuple[np.ndarray, np.ndarray] | None = None

    def _extra_arrays(self) -> dict[str, np.ndarray]:
        if self._pending is None:
            return {}
        return {"pending_x": self._pending[0], "pending_y": self._pending[1]}

    def _restore_extra(self, arrays: dict[str, np.ndarray]) -> None:
        if "pending_x" in arrays and "pending_y" in arrays:
            self._pending = (np.asarray(arrays["pending_x"]), np.asarray(arrays["pending_y"]))

    def _partial_fit(self, X: np.ndarray, y: np.ndarray | None) -> None:
        assert y is not None
        if self._pending is not None:
            X = np.concatenate([self._pending[0], X])
            y = np.concatenate([self._pending[1], y])
            self._pending = None
        n_pairs = X.shape[0] // 2
        for t in range(n_pairs):
            self._update_pair(X[2 * t], X[2 * t + 1], _similar(y[2 * t], y[2 * t + 1]))
        if X.shape[0] % 2:
            self._pending = (X[-1:], y[-1:])

    def _update_pair(self, xi: np.ndarray, xj: np.ndarray, similar: bool) -> None:
        raise NotImplementedError


class AdaptHash(_PairStream):
    """AdaptHash (Cakir & Sclaroff, ICCV 2015) as ``+Methods/AdaptHash.m``: hinge on the Hamming
    distance of a pair, gradient of the sigmoid-relaxed inner-product loss restricted to the
    ``loss`` bits with the largest projections among the offending ones, orthogonality
    regulariser ``beta``, unit columns after every step."""

    linear = True
    _hyper = ("alpha", "beta", "stepsize")
    _fitted = ("W_",)

    def __init__(
        self, n_bits: int, alpha: float = 0.9, beta: float = 1e-2, stepsize: float = 1.0, seed: int = 0
    ) -> None:
        super().__init__(n_bits, seed)
        self.alpha, self.beta, self.stepsize = float(alpha), float(beta), float(stepsize)

    def _init_params(self, X: np.ndarray) -> None:
        self.W_ = random_unit_columns(self.rng_, X.shape[1], self.n_bits)

    def export_encoder(self) -> LinearEncoder:
        return self._linear_encoder(getattr(self, "W_", None))

    def _update_pair(self, xi: np.ndarray, xj: np.ndarray, similar: bool) -> None:
        W, r = self.W_, self.n_bits
        v, u = W.T @ xi, W.T @ xj
        bi, bj = np.where(v > 0, 1, -1), np.where(u > 0, 1, -1)
        differ = bi != bj
        n_diff = int(differ.sum())
        s = 1.0 if similar else -1.0
        if similar:
            loss = max(0.0, n_diff - (1 - self.alpha) * r)
            offending = np.flatnonzero(differ)
        else:
            loss = max(0.0, self.alpha * r - n_diff)
            offending = np.flatnonzero(~differ)
        if loss <= 0:
            return
        strength = np.maximum(np.abs(v), np.abs(u))
        by_strength = np.argsort(-strength, kind="stable")
        ranked = by_strength[np.isin(by_strength, offending)]
        update = np.zeros(r, bool)
        update[ranked[: int(np.ceil(loss))]] = True
        fw, fz = 2 / (1 + np.exp(-v)) - 1, 2 / (1 + np.exp(-u)) - 1
        dv, du = np.exp(-v) / (1 + np.exp(-v)) ** 2, np.exp(-u) / (1 + np.exp(-u)) ** 2
        grad = self.stepsize * 2 * (fw @ fz - r * s) * (np.outer(xi, 2 * fz * dv) + np.outer(xj, 2 * fw * du))
        grad[:, ~update] = 0.0
        grad += self.beta * W @ (W.T @ W - np.eye(r))
        W = W - grad
        self.W_ = W / np.linalg.norm(W, axis=0, keepdims=True)

    def _project(self, X: np.ndarray) -> np.ndarray:
        return X @ self.W_


class OKH(_PairStream):
    """Online Kernel Hashing (Huang, Yang & Zheng, IJCAI 2013), the framework's set-up: RBF
    features on 300 random anchors (+ a bias), bandwidth from the mean squared anchor distance,
    a passive-aggressive (PA-I, aggressiveness ``c``) step per pair towards the nearest codes that
    satisfy the pair (``alpha`` r differing bits for dissimilar pairs, none for similar ones).

    The framework ships the PA step (``OKHlearn``) only as MATLAB p-code, so the step follows the
    paper; anchors and bandwidth come from the first stream batch (the framework uses the whole
    training set before streaming).
    """

    _hyper = ("c", "alpha", "n_anchors")
    _fitted = ("W_", "anchors_", "bandwidth_")

    def __init__(
        self, n_bits: int, c: float = 0.1, alpha: float = 0.2, n_anchors: int = 300, seed: int = 0
    ) -> None:
        super().__init__(n_bits, seed)
        self.c, self.alpha, self.n_anchors = float(c), float(alpha), int(n_anchors)

    def _kernel(self, X: np.ndarray) -> np.ndarray:
        sq = (
            (X * X).sum(1)[:, None]
            + (self.anchors_ * self.anchors_).sum(1)[None, :]
            - 2 * X @ self.anchors_.T
        )
        K = np.exp(-0.5 * np.maximum(sq, 0) / self.bandwidth_**2)
        return np.concatenate([K, np.ones((X.shape[0], 1))], axis=1)

    def _init_params(self, X: np.ndarray) -> None:
        n = X.shape[0]
        pick = self.rng_.choice(n, size=min(self.n_anchors, n), replace=False)
        self.anchors_ = X[pick].copy()
        val = X[self.rng_.choice(n, size=min(2000, n), replace=False)]
        sq = (val * val).sum(1)[:, None] + (self.anchors_**2).sum(1)[None, :] - 2 * val @ self.anchors_.T
        self.bandwidth_ = float(np.maximum(sq, 0).mean()) or 1.0
        self.W_ = random_unit_columns(self.rng_, self.anchors_.shape[0] + 1, self.n_bits)

    def _update_pair(self, xi: np.ndarray, xj: np.ndarray, similar: bool) -> None:
        ki, kj = self._kernel(np.stack([xi, xj]))
        W, r = self.W_, self.n_bits
        pi, pj = W.T @ ki, W.T @ kj
        hi, hj = np.where(pi > 0, 1.0, -1.0), np.where(pj > 0, 1.0, -1.0)
        gi, gj = hi.copy(), hj.copy()
        if similar:
            bits = np.flatnonzero(hi != hj)
        else:
            need = int(np.ceil(self.alpha * r)) - int((hi != hj).sum())
            equal = np.flatnonzero(hi == hj)
            bits = equal[np.argsort(np.minimum(np.abs(pi), np.abs(pj))[equal], kind="stable")[: max(need, 0)]]
        if bits.size == 0:
            return
        # Flip each chosen bit on the item whose projection is closer to zero.
        flip_i = np.abs(pi[bits]) <= np.abs(pj[bits])
        gi[bits[flip_i]] *= -1
        gj[bits[~flip_i]] *= -1
        loss = bits.size + np.abs(pi[bits[flip_i]]).sum() + np.abs(pj[bits[~flip_i]]).sum()
        step = np.outer(ki, gi - hi) + np.outer(kj, gj - hj)
        tau = min(self.c, loss / max(float((step * step).sum()), 1e-12))
        self.W_ = W + tau * step

    def _project(self, X: np.ndarray) -> np.ndarray:
        return self._kernel(X) @ self.W_


class SketchHash(OnlineHasher):
    """Online Sketching Hashing (Leng et al., CVPR 2015) as ``+Methods/SketchHash.m``: a frequent-
    directions sketch of the mean-centred stream (with the mean-shift correction row), hash
    projections = top-r right singular vectors of the sketch times a random rotation."""

    supervised = False
    linear = True
    _hyper = ("sketch_size", "batch_size")
    _fitted = ("W_", "mean_", "sketch_", "count_", "sketch_size_", "_pending")

    def __init__(self, n_bits: int, sketch_size: int = 200, batch_size: int = 50, seed: int = 0) -> None:
        super().__init__(n_bits, seed)
        if sketch_size % 2:
            raise HashingError("SketchHash sketch_size must be even")
        if batch_size < n_bits:
            raise HashingError("SketchHash needs batch_size >= n_bits")
        self.sketch_size, self.batch_size = int(sketch_size), int(batch_size)
        self._pending = np.zeros((0, 0))

    def _init_params(self, X: np.ndarray) -> None:
        d = X.shape[1]
        # The framework asserts sketch_size <= d; for narrow features use the widest even size.
        self.sketch_size_ = min(self.sketch_size, d - d % 2)
        if self.sketch_size_ < self.n_bits:
            raise HashingError(
                f"SketchHash needs a sketch of at least n_bits rows (d={d}, bits={self.n_bits})"
            )
        self.W_ = random_unit_columns(self.rng_, d, self.n_bits)
        self.mean_ = np.zeros(d)
        self.sketch_ = np.zeros((0, d))
        self.count_ = 0
        self._pending = np.zeros((0, d))

    def _shrink_append(self, rows: np.ndarray) -> None:
        ell, half = self.sketch_size_, self.sketch_size_ // 2
        B = self.sketch_
        filled = B.shape[0]  # the reference counts every row of B here, zeroed ones included
        if filled < ell:
            B = np.concatenate([B, np.zeros((ell - filled, B.shape[1]))])
        for a in rows:
            if filled < ell:
                B[filled] = a
                filled += 1
                continue
            _, s, vt = np.linalg.svd(B, full_matrices=False)
            s2 = s**2
            theta = s2[half] if s2.size > half else 0.0
            B = np.sqrt(np.maximum(s2 - theta, 0))[:, None] * vt
            if B.shape[0] < ell:
                B = np.concatenate([B, np.zeros((ell - B.shape[0], B.shape[1]))])
            filled = half + 1
            B[half] = a
        self.sketch_ = B[: max(filled, self.sketch_.shape[0])] if filled < ell else B

    def _learn_chunk(self, chunk: np.ndarray) -> None:
        n = chunk.shape[0]
        mean_cur = chunk.mean(axis=0)
        rows = chunk - mean_cur
        if self.count_ > 0:
            corr = np.sqrt(self.count_ * n / (self.count_ + n)) * (mean_cur - self.mean_)
            rows = np.concatenate([rows, corr[None, :]])
        self._shrink_append(rows)
        self.mean_ = (self.mean_ * self.count_ + mean_cur * n) / (self.count_ + n)
        self.count_ += n
        _, _, vt = np.linalg.svd(self.sketch_, full_matrices=False)
        proj = vt[: self.n_bits].T
        if proj.shape[1] < self.n_bits:
            return  # not enough directions yet: keep the previous W
        rot = np.linalg.qr(self.rng_.standard_normal((self.n_bits, self.n_bits)))[0]
        self.W_ = proj @ rot

    def _partial_fit(self, X: np.ndarray, y: np.ndarray | None) -> None:
        data = np.concatenate([self._pending, X]) if self._pending.size else X
        n_full = data.shape[0] // self.batch_size * self.batch_size
        for s in range(0, n_full, self.batch_size):
            self._learn_chunk(data[s : s + self.batch_size])
        self._pending = data[n_full:]

    def _project(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean_) @ self.W_

    def export_encoder(self) -> LinearEncoder:
        return self._linear_encoder(getattr(self, "W_", None), getattr(self, "mean_", None))
