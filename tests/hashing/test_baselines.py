"""Baselines: the shared interface, stream bookkeeping, and that the supervised ones learn."""

from __future__ import annotations

import numpy as np
import pytest

from hashing import BSODH, HashingError, metrics
from hashing.baselines import ITQ, LSH, OKH, OSH, AdaptHash, SketchHash
from hashing.bench import hash_benchmark, protocol_split


def _blobs(seed=0, n=600, d=20, k=4):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((k, d)) * 2
    y = rng.integers(0, k, n)
    X = centers[y] + rng.standard_normal((n, d))
    X = X - X.mean(0)
    return X / np.linalg.norm(X, axis=1, keepdims=True), y


FACTORIES = {
    "OKH": lambda: OKH(16, n_anchors=50, seed=0),
    "OSH": lambda: OSH(16, seed=0),
    "OSH-hinge": lambda: OSH(16, sgd_boost=False, seed=0),
    "AdaptHash": lambda: AdaptHash(16, seed=0),
    "SketchHash": lambda: SketchHash(16, sketch_size=18, batch_size=50, seed=0),
    "LSH": lambda: LSH(16, seed=0),
    "ITQ": lambda: ITQ(16, seed=0),
    "BSODH": lambda: BSODH(16, lam=0.3, center=False, normalize=False, seed=0),
}


@pytest.mark.parametrize("name", list(FACTORIES))
def test_interface_and_learning(name):
    X, y = _blobs()
    h = FACTORIES[name]()
    for s in range(0, 400, 101):  # odd batch sizes exercise pair / chunk carry-over
        h.partial_fit(X[s : s + 101], y[s : s + 101])
    codes = h.encode(X[400:])
    assert codes.shape == (200, 2) and codes.dtype == np.uint8
    assert set(np.unique(h.encode(X[:3], packed=False))) <= {-1, 1}
    m = metrics.evaluate(codes, h.encode(X[:400]), y[400:], y[:400], top_k=100)
    assert 0.0 <= m["mAP"] <= 1.0
    if name in ("OSH", "OSH-hinge", "BSODH", "ITQ"):
        assert m["mAP"] > 0.5  # four well-separated blobs: chance is ~0.25
    with pytest.raises(HashingError):
        h.partial_fit(np.ones((3, 7)), [0, 1, 2])


def test_pair_carry_over_feeds_every_item():
    X, y = _blobs(n=9)
    seen = []

    class Spy(AdaptHash):
        def _update_pair(self, xi, xj, similar):
            seen.append((xi.copy(), xj.copy()))

    h = Spy(8)
    h.partial_fit(X[:5], y[:5])
    h.partial_fit(X[5:], y[5:])
    got = np.concatenate([np.stack(p) for p in seen])
    np.testing.assert_array_equal(got, X[:8])


def test_osh_multilabel_codewords():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 6))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Y = (rng.random((20, 3)) < 0.5).astype(np.uint8)
    Y[Y.sum(1) == 0, 0] = 1
    h = OSH(8).partial_fit(X, Y)
    assert set(h.codewords_) <= {0, 1, 2} and all(len(c) == 8 for c in h.codewords_.values())


def test_protocol_split_is_per_class_and_seeded():
    X, y = _blobs(n=400)
    a = protocol_split(X, y, 10, seed=3)
    b = protocol_split(X, y, 10, seed=3)
    np.testing.assert_array_equal(a[1], b[1])
    assert np.bincount(a[1]).tolist() == [10, 10, 10, 10] and len(a[3]) == 360
    np.testing.assert_allclose(np.linalg.norm(a[0], axis=1), 1.0)


def test_hash_benchmark_smoke():
    res = hash_benchmark(("digits",), (16,), methods=("BSODH", "LSH"))
    rows = {r["method"]: r for r in res["results"]}
    assert set(rows) == {"BSODH", "LSH"} and res["protocol"]["digits"]["n_queries"] == 300
    assert rows["BSODH"]["mAP"] > rows["LSH"]["mAP"]


def test_every_bench_method_takes_au_rows_without_any_label():
    """AU data has neutral faces (no active AU): no method may refuse a batch for them."""
    from hashing.bench import make_methods

    rng = np.random.default_rng(0)
    Y = (rng.random((300, 6)) < 0.2).astype(np.uint8)
    assert (Y.sum(axis=1) == 0).any()
    X = rng.standard_normal((300, 20))
    for name, factory in make_methods(16, 20, 0, "cifar10").items():
        h = factory()
        for s in range(0, 300, 50):
            h.partial_fit(X[s : s + 50], Y[s : s + 50] if h.supervised else None)
        assert h.encode(X).shape == (300, 2), name
