"""BSODH: the fast exact stage against a literal dense translation of the official ``BSODH.m``."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from hashing import BSODH
from hashing.base import l2_rows, random_unit_columns
from hashing.errors import HashingError


class DenseReference:
    """The official loop body, literally: column-major X (d x n), the n_t x m matrix S, inv()."""

    def __init__(self, n_bits, lam, sigma, eta_s, eta_d, d, seed=0):
        self.r, self.lam, self.sigma, self.eta_s, self.eta_d = n_bits, lam, sigma, eta_s, eta_d
        self.W = random_unit_columns(np.random.default_rng(seed), d, n_bits)
        self.mean = None
        self.Be = None
        self.le = None
        self.Bs = None
        self.ls = None

    def sim(self, ls, le):
        if ls.ndim == 1:
            return (ls[:, None] == le[None, :]).astype(np.float64)
        return ((ls.astype(np.int64) @ le.astype(np.int64).T) > 0).astype(np.float64)

    def stage(self, X, y):
        if self.mean is None:
            self.mean = X.mean(axis=0)
        Xs = l2_rows(X - self.mean).T
        if self.Be is None:
            tmp = self.W.T @ Xs
            self.Be = np.where(tmp >= 0, 1.0, -1.0)
            self.le = y
            return
        if self.Bs is not None:
            self.Be = np.concatenate([self.Be, self.Bs], axis=1)
            self.le = np.concatenate([self.le, self.ls], axis=0)
        tmp = self.W.T @ Xs
        Bs = np.where(tmp >= 0, 1.0, -1.0)
        S = self.sim(y, self.le)
        for i in range(S.shape[0]):
            if S[i].sum() != 0:
                Bs[:, i] = self.Be[:, np.flatnonzero(S[i] != 0)[0]]
        S = np.where(S == 0, -self.eta_d, self.eta_s) * self.r
        P = self.r * self.Be @ S.T + self.W.T @ Xs
        for k in range(self.r):
            be = self.Be[k]
            Be_hat = np.delete(self.Be, k, axis=0)
            Bs_hat = np.delete(Bs, k, axis=0)
            t = P[k] - (be @ Be_hat.T) @ Bs_hat
            Bs[k] = np.where(t >= 0, 1.0, -1.0)
        # B_e = sgn(B_s S), decided exactly: with the dense mask, B_s S / r = eta_s * (sum of B_s
        # over similar rows) - eta_d * (sum over the others), two integer matrices. (The official
        # single-precision BLAS result at an exact tie depends on summation order.) The rule:
        # the etas as the decimals they are written as (1.2 = 6/5), sgn(0) = +1.
        mask = S > 0
        Bi = Bs.astype(np.int64)
        pos, neg = Bi @ mask.astype(np.int64), Bi @ (~mask).astype(np.int64)
        fs, fd = Fraction(repr(self.eta_s)), Fraction(repr(self.eta_d))
        exact = np.frompyfunc(lambda a, b: 1.0 if fs * int(a) - fd * int(b) >= 0 else -1.0, 2, 1)
        self.Be = exact(pos, neg).astype(np.float64)
        d = Xs.shape[0]
        self.W = self.sigma * np.linalg.inv(self.sigma * Xs @ Xs.T + self.lam * np.eye(d)) @ Xs @ Bs.T
        self.Bs, self.ls = Bs, y

    def codes_existing(self):
        return np.concatenate([self.Be, self.Bs], axis=1)


def _stream(rng, n_stages, n, d, n_classes, multi=False):
    centers = rng.standard_normal((n_classes, d)) * 2
    for _ in range(n_stages):
        if multi:
            y = (rng.random((n, n_classes)) < 0.3).astype(np.uint8)
            y[rng.random(n) < 0.1] = 0  # some items with no label at all
            X = y.astype(np.float64) @ centers + rng.standard_normal((n, d))
        else:
            y = rng.integers(0, n_classes, n)
            X = centers[y] + rng.standard_normal((n, d))
        yield X, y


@pytest.mark.parametrize(
    ("d", "n", "multi", "etas"),
    [
        (24, 40, False, (1.2, 0.2)),  # primal W step (d < n), the paper's etas
        (64, 30, False, (1.2, 0.2)),  # dual W step (d > n)
        (24, 40, False, (1.25, 0.25)),  # dyadic etas: the dense float computation is exact
        (32, 36, True, (1.2, 0.2)),  # multi-label similarity from label overlap
        (20, 60, False, (1.0, 0.0)),  # Places205 setting (eta_d = 0)
    ],
)
def test_fast_stage_is_bit_identical_to_dense_reference(d, n, multi, etas):
    rng = np.random.default_rng(3)
    r = 16
    fast = BSODH(r, lam=0.3, sigma=0.5, eta_s=etas[0], eta_d=etas[1], mode="paper", seed=7)
    ref = DenseReference(r, 0.3, 0.5, etas[0], etas[1], d, seed=7)
    for stage, (X, y) in enumerate(_stream(rng, 5, n, d, 5, multi)):
        fast.partial_fit(X, y)
        ref.stage(X, y)
        if stage == 0:
            np.testing.assert_array_equal(fast.codes_e_, ref.Be.astype(np.int8))
            continue
        np.testing.assert_array_equal(fast.codes_e_, ref.codes_existing().astype(np.int8))
        np.testing.assert_allclose(fast.W_, ref.W, rtol=1e-8, atol=1e-10)
    Xq = rng.standard_normal((50, d))
    ref_codes = np.where(l2_rows(Xq - ref.mean) @ ref.W >= 0, 1, -1)
    np.testing.assert_array_equal(fast.encode(Xq, packed=False), ref_codes)


def test_existing_code_update_tie_rule_is_as_documented():
    """The documented rule: etas as written in decimal (1.2 = 6/5, 0.2 = 1/5), sgn(0) = +1, so
    the paper's tie 1.2 c = 0.2 * 6 c gives +1 (binary64 arithmetic would give -1)."""
    from hashing.bsodh import decimal_fraction, exact_sign_balance

    same = np.array([[1, 0, 2, -1, 5, 1]])
    other = np.array([[6, 0, 12, -6, 31, 7]])
    out = exact_sign_balance(1.2, 0.2, same, other)
    # 6/5 - 6/5 = 0 -> +1; 0 -> +1; 12/5 - 12/5 = 0 -> +1; -6/5 + 6/5 = 0 -> +1; 6 - 31/5 < 0; 6/5 - 7/5 < 0
    assert out[0].tolist() == [1, 1, 1, 1, -1, -1]
    assert 1.2 * 1 - 0.2 * 6 < 0  # what float64 says about the first tie
    assert decimal_fraction(1.2) == Fraction(6, 5) and decimal_fraction(0.2) == Fraction(1, 5)


def test_first_batch_only_initialises():
    rng = np.random.default_rng(0)
    h = BSODH(8, mode="paper", seed=1)
    X = rng.standard_normal((20, 5))
    h.partial_fit(X, rng.integers(0, 3, 20))
    W0 = random_unit_columns(np.random.default_rng(1), 5, 8)
    np.testing.assert_array_equal(h.W_, W0)
    assert h.codes_e_.shape == (8, 20)


def test_packed_encoding_matches_pm1():
    rng = np.random.default_rng(1)
    h = BSODH(12, seed=0).fit(rng.standard_normal((60, 6)), rng.integers(0, 4, 60), batch_size=20)
    X = rng.standard_normal((9, 6))
    pm1 = h.encode(X, packed=False)
    packed = h.encode(X)
    assert packed.shape == (9, 2) and packed.dtype == np.uint8
    np.testing.assert_array_equal(np.unpackbits(packed, axis=1, count=12), (pm1 > 0).astype(np.uint8))


def test_state_round_trip():
    rng = np.random.default_rng(2)
    h = BSODH(16, seed=0).fit(rng.standard_normal((90, 7)), rng.integers(0, 3, 90), batch_size=30)
    params, arrays = h.get_state()
    h2 = BSODH.from_state(params, arrays)
    X, y = rng.standard_normal((30, 7)), rng.integers(0, 3, 30)
    h.partial_fit(X, y)
    h2.partial_fit(X, y)
    np.testing.assert_array_equal(h.encode(X), h2.encode(X))


@pytest.mark.parametrize(
    ("X", "y", "match"),
    [
        (np.full((4, 3), np.nan), [0, 1, 0, 1], "NaN/inf"),
        (np.ones((4, 5)), [0, 1, 0, 1], "features"),
        (np.ones((0, 3)), [], "empty"),
        (np.ones((4, 3)), [0, 1, 0], "labels for 4 items"),
        (np.ones((4, 3)), np.ones((4, 2)), "1-D class labels"),
        (np.ones((3,)), [0], "2-D"),
    ],
)
def test_bad_input_is_rejected(X, y, match):
    h = BSODH(8).partial_fit(np.random.default_rng(0).standard_normal((6, 3)), [0, 1, 2, 0, 1, 2])
    with pytest.raises(HashingError, match=match):
        h.partial_fit(X, y)


def test_unlabelled_batch_is_rejected_for_learning():
    with pytest.raises(HashingError, match="supervised"):
        BSODH(8).partial_fit(np.ones((3, 2)))


def test_robust_first_batch_starts_from_principal_directions():
    """Robust mode: the first W spans the first batch's top principal directions (rotated)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 12)) * np.r_[np.full(4, 5.0), np.full(8, 0.1)]
    h = BSODH(4, center=False, normalize=False, seed=0).initialize(X)  # the start, before learning
    top = np.linalg.svd(X - X.mean(0), full_matrices=False)[2][:4].T  # 12 x 4
    residual = h.W_ - top @ (top.T @ h.W_)
    assert np.abs(residual).max() < 1e-8
