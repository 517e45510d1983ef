"""Metrics against brute-force, loop-by-loop definitions (small random data with many ties): the
MIHash framework's index-order rule (``ties="index"``). The tie-aware default is checked in
test_tie_aware_metrics.py."""

from __future__ import annotations

import numpy as np
import pytest

from hashing import metrics


def _brute_order(dist_row):
    return sorted(range(len(dist_row)), key=lambda j: (dist_row[j], j))


def _brute_ap(dist_row, rel_row, k=None):
    order = _brute_order(dist_row)
    if k is not None:
        order = order[:k]
    hits, precs = 0, []
    for pos, j in enumerate(order, start=1):
        if rel_row[j]:
            hits += 1
            precs.append(hits / pos)
    return np.mean(precs) if precs else np.nan


def _shell_walk_topk(dist_row, n_bits, k):
    """The evaluate.m rule literally: walk Hamming shells 0, 1, ... collecting indices in order."""
    idx = []
    for h in range(n_bits + 1):
        idx += [j for j in range(len(dist_row)) if dist_row[j] == h]
        if len(idx) >= k:
            break
    return idx[:k]


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    n_bits = 8  # few bits -> many ties
    q = rng.integers(0, 256, (25, 1), dtype=np.uint8)
    db = rng.integers(0, 256, (120, 1), dtype=np.uint8)
    yq, yd = rng.integers(0, 4, 25), rng.integers(0, 4, 120)
    yd[:] = np.where(np.arange(120) % 17 == 0, 9, yd)  # some db items relevant to no query
    yq[0] = 7  # a query with no relevant item at all
    return n_bits, q, db, yq, yd


def test_hamming_distance_bruteforce(data):
    n_bits, q, db, *_ = data
    d = metrics.hamming_distances(q, db)
    for i in range(q.shape[0]):
        for j in range(db.shape[0]):
            assert d[i, j] == bin(int(q[i, 0]) ^ int(db[j, 0])).count("1")
    rng = np.random.default_rng(1)
    q64, db64 = rng.integers(0, 256, (5, 8), dtype=np.uint8), rng.integers(0, 256, (7, 8), dtype=np.uint8)
    d64 = metrics.hamming_distances(q64, db64)
    assert d64[2, 3] == np.unpackbits(q64[2] ^ db64[3]).sum()


def test_map_full_and_topk(data):
    n_bits, q, db, yq, yd = data
    dist = metrics.hamming_distances(q, db)
    rel = metrics.relevance(yq, yd)
    aps = [_brute_ap(dist[i], rel[i]) for i in range(len(yq))]
    assert np.isnan(aps[0])
    assert metrics.mean_average_precision(dist, rel, ties="index") == pytest.approx(
        np.nanmean(aps), abs=1e-12
    )
    for k in (1, 10, 37):
        aps_k = []
        for i in range(len(yq)):
            top = _shell_walk_topk(dist[i], n_bits, k)
            assert top == _brute_order(dist[i])[:k]
            hits, precs = 0, []
            for pos, j in enumerate(top, start=1):
                if rel[i, j]:
                    hits += 1
                    precs.append(hits / pos)
            aps_k.append(np.mean(precs) if precs else np.nan)
        assert metrics.mean_average_precision(dist, rel, top_k=k, ties="index") == pytest.approx(
            np.nanmean(aps_k), abs=1e-12
        )


def test_precision_radius_and_k(data):
    n_bits, q, db, yq, yd = data
    dist = metrics.hamming_distances(q, db)
    rel = metrics.relevance(yq, yd)
    for radius in (0, 1, 2, 3):
        vals = []
        for i in range(len(yq)):
            inside = [j for j in range(len(yd)) if dist[i, j] <= radius]
            vals.append(np.mean([rel[i, j] for j in inside]) if inside else 0.0)
        assert metrics.precision_at_radius(dist, rel, radius) == pytest.approx(np.mean(vals), abs=1e-12)
    for k in (1, 5, 50):
        vals = [np.mean([rel[i, j] for j in _brute_order(dist[i])[:k]]) for i in range(len(yq))]
        assert metrics.precision_at_k(dist, rel, k, ties="index") == pytest.approx(np.mean(vals), abs=1e-12)


def test_empty_ball_counts_zero():
    dist = np.array([[5, 6], [0, 4]])
    rel = np.array([[True, True], [True, False]])
    assert metrics.precision_at_radius(dist, rel, 2) == pytest.approx(0.5)


def test_multilabel_relevance_is_overlap():
    yq = np.array([[1, 0, 1], [0, 0, 0]])
    yd = np.array([[0, 0, 1], [0, 1, 0], [1, 1, 1]])
    assert metrics.relevance(yq, yd).tolist() == [[True, False, True], [False, False, False]]


def test_evaluate_report_keys(data):
    n_bits, q, db, yq, yd = data
    res = metrics.evaluate(q, db, yq, yd, top_k=20, radius=2, ks=(5,))
    assert set(res) == {"mAP", "mAP@20", "P@H<=2", "P@5"}
    assert all(0.0 <= v <= 1.0 for v in res.values())
