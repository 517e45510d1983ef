"""Tie-aware retrieval metrics (``ties="aware"``, the default of :mod:`hashing.metrics`) against
their definition: the mean of the metric over every order of the items inside each Hamming shell.

Small cases are enumerated exhaustively (every permutation within every shell), so the only
difference allowed is float rounding (1e-12). One larger case, too big to enumerate, is checked
against random permutations with a tolerance of five Monte Carlo standard errors of the sample
mean (computed from the sample itself), which a correct formula fails with probability < 1e-6.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hashing import HashingError, metrics
from hashing.evaluation import STREAM_MAP_TIES_KEY, StreamMapRecorder
from hashing.index import HashIndex


def _ap(ranked_rel: np.ndarray, k: int | None = None) -> float:
    """AP of one ranked relevance vector, as vl_pr / evaluate.m (normalised by the hits in the top k)."""
    rr = np.asarray(ranked_rel[:k] if k is not None else ranked_rel, float)
    hits = np.cumsum(rr)
    if hits[-1] == 0:
        return float("nan")
    return float((rr * hits / np.arange(1, len(rr) + 1)).sum() / hits[-1])


def _shell_orders(dist_row: np.ndarray):
    """Every ranking of one query: shells in increasing distance, any order inside each."""
    shells = [np.flatnonzero(dist_row == v) for v in np.unique(dist_row)]
    for perms in itertools.product(*(itertools.permutations(s) for s in shells)):
        yield np.concatenate([np.asarray(p, int) for p in perms])


def _brute(dist_row, rel_row, k=None, what="ap"):
    """Mean over all within-shell orders (AP: over the orders where it is defined)."""
    vals = []
    for order in _shell_orders(dist_row):
        ranked = rel_row[order]
        vals.append(_ap(ranked, k) if what == "ap" else float(ranked[:k].mean()))
    vals = np.asarray(vals)
    ok = ~np.isnan(vals)
    return float(vals[ok].mean()) if ok.any() else float("nan")


def _small_cases(n_cases: int = 120, seed: int = 0):
    rng = np.random.default_rng(seed)
    for _ in range(n_cases):
        nd = int(rng.integers(1, 8))
        yield rng.integers(0, 3, nd), rng.random(nd) < rng.uniform(0.2, 0.8)


@pytest.mark.parametrize("k", [None, 1, 2, 3, 5, 7])
def test_aware_ap_is_the_mean_over_all_orders_within_shells(k):
    for dist, rel in _small_cases():
        want = _brute(dist, rel, None if k is None else min(k, len(dist)))
        got = metrics.average_precisions(dist[None], rel[None], k)[0]
        if np.isnan(want):
            assert np.isnan(got), (dist, rel, k)
        else:
            assert got == pytest.approx(want, abs=1e-12), (dist, rel, k)


@pytest.mark.parametrize("k", [1, 2, 3, 5, 7])
def test_aware_precision_at_k_is_the_mean_over_all_orders(k):
    for dist, rel in _small_cases(seed=1):
        want = _brute(dist, rel, min(k, len(dist)), what="p")
        assert metrics.precision_at_k(dist[None], rel[None], k) == pytest.approx(want, abs=1e-12)


def test_map_is_the_mean_of_the_per_query_expectations():
    cases = list(_small_cases(30, seed=2))
    nd = 6
    dist = np.stack([np.resize(d, nd) for d, _ in cases])
    rel = np.stack([np.resize(r, nd) for _, r in cases])
    for k in (None, 3):
        aps = [_brute(dist[i], rel[i], k) for i in range(len(cases))]
        assert metrics.mean_average_precision(dist, rel, k) == pytest.approx(np.nanmean(aps), abs=1e-12)
        assert metrics.mean_average_precision(dist, rel, k, ties="aware") == metrics.mean_average_precision(
            dist, rel, k
        )


def test_larger_shells_against_random_permutations():
    """40 items in 3 shells (sizes 9, 18, 13): ~1e27 orders, so sample 20,000 of them."""
    rng = np.random.default_rng(3)
    dist = np.repeat([0, 1, 2], [9, 18, 13])
    rel = rng.random(40) < 0.4
    rel[:9] = False  # no relevant item in the first shell: the cut shell decides whether AP@K exists
    for k in (None, 15, 30):
        samples = []
        for _ in range(20_000):
            order = np.concatenate([rng.permutation(np.flatnonzero(dist == v)) for v in (0, 1, 2)])
            samples.append(_ap(rel[order], k))
        s = np.asarray(samples)
        s = s[~np.isnan(s)]
        tol = 5 * s.std(ddof=1) / np.sqrt(len(s))
        got = metrics.average_precisions(dist[None], rel[None], k)[0]
        assert abs(got - s.mean()) < tol, (k, got, s.mean(), tol)


def test_no_ties_gives_the_index_order_numbers():
    rng = np.random.default_rng(4)
    dist = np.stack([rng.permutation(300) for _ in range(20)])  # every shell holds one item
    rel = rng.random((20, 300)) < 0.2
    for k in (None, 1, 10, 100, 300):
        a = metrics.average_precisions(dist, rel, k)
        b = metrics.average_precisions(dist, rel, k, ties="index")
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    for k in (1, 10, 100):
        assert metrics.precision_at_k(dist, rel, k) == pytest.approx(
            metrics.precision_at_k(dist, rel, k, ties="index"), abs=1e-12
        )


def test_sorted_data_index_order_is_biased_and_aware_lies_between_best_and_worst():
    """A database sorted by class (as LFW, or a stream by class) with coarse codes: many items
    tie, and the index rule scores whatever class comes first as better."""
    rng = np.random.default_rng(5)
    db_labels = np.repeat(np.arange(4), 50)  # sorted by class
    q_labels = np.tile(np.arange(4), 8)
    dist = rng.integers(0, 3, (32, 200))  # 2-bit-like distances: big shells
    rel = metrics.relevance(q_labels, db_labels)
    # The best / worst order within each shell: relevant items first / last.
    ranked_best = np.take_along_axis(rel, np.lexsort((~rel, dist), axis=1), axis=1)
    ranked_worst = np.take_along_axis(rel, np.lexsort((rel, dist), axis=1), axis=1)
    aware = metrics.average_precisions(dist, rel)
    hi = np.array([_ap(r) for r in ranked_best])
    lo = np.array([_ap(r) for r in ranked_worst])
    assert (lo < aware).all() and (aware < hi).all()
    for k in (10, 60):
        p_aware = metrics.precision_at_k(dist, rel, k)
        assert ranked_worst[:, :k].mean() < p_aware < ranked_best[:, :k].mean()
    for k in (None, 60):
        aware = metrics.average_precisions(dist, rel, k)
        index = metrics.average_precisions(dist, rel, k, ties="index")
        # Index order ranks class 0's items first in every shell and class 3's last.
        assert index[q_labels == 0].mean() > aware[q_labels == 0].mean() + 0.05
        assert index[q_labels == 3].mean() < aware[q_labels == 3].mean() - 0.05
        # Shuffling the database changes the index rule's numbers, never the tie-aware ones.
        perm = rng.permutation(200)
        assert metrics.mean_average_precision(dist[:, perm], rel[:, perm], k) == pytest.approx(
            metrics.mean_average_precision(dist, rel, k), abs=1e-12
        )
        assert metrics.mean_average_precision(dist[:, perm], rel[:, perm], k, ties="index") != pytest.approx(
            metrics.mean_average_precision(dist, rel, k, ties="index"), abs=1e-6
        )


def test_float_distances_are_sorted_into_shells_like_integers():
    rng = np.random.default_rng(6)
    dist = rng.integers(0, 5, (15, 60))
    rel = rng.random((15, 60)) < 0.3
    for k in (None, 7, 25):
        np.testing.assert_allclose(
            metrics.average_precisions(dist * 0.5 - 3.0, rel, k),
            metrics.average_precisions(dist, rel, k),
            atol=1e-12,
        )
    assert metrics.precision_at_k(dist.astype(float), rel, 9) == pytest.approx(
        metrics.precision_at_k(dist, rel, 9)
    )
    big = dist * 10_000  # integers beyond the bincount range take the sorting path too
    assert metrics.mean_average_precision(big, rel, 7) == pytest.approx(
        metrics.mean_average_precision(dist, rel, 7)
    )


def test_evaluate_takes_the_rule_and_refuses_others():
    rng = np.random.default_rng(7)
    q, db = rng.integers(0, 256, (20, 1), dtype=np.uint8), rng.integers(0, 256, (150, 1), dtype=np.uint8)
    yq, yd = rng.integers(0, 3, 20), rng.integers(0, 3, 150)
    dist, rel = metrics.hamming_distances(q, db), metrics.relevance(yq, yd)
    for ties in ("aware", "index"):
        res = metrics.evaluate(q, db, yq, yd, top_k=30, ks=(5,), ties=ties)
        assert res["mAP"] == metrics.mean_average_precision(dist, rel, ties=ties)
        assert res["mAP@30"] == metrics.mean_average_precision(dist, rel, 30, ties=ties)
        assert res["P@5"] == metrics.precision_at_k(dist, rel, 5, ties=ties)
        assert res["P@H<=2"] == metrics.precision_at_radius(dist, rel, 2)
    assert metrics.evaluate(q, db, yq, yd, top_k=30) == metrics.evaluate(
        q, db, yq, yd, top_k=30, ties="aware"
    )
    for call in (
        lambda: metrics.mean_average_precision(dist, rel, ties="random"),
        lambda: metrics.precision_at_k(dist, rel, 3, ties="position"),
        lambda: metrics.evaluate(q, db, yq, yd, ties=None),
    ):
        with pytest.raises(HashingError, match="ties must be 'aware'") as err:
            call()
        assert err.value.param == "ties" and "\n" not in str(err.value)


def test_aware_map_is_fast_enough():
    """No sort of the database: the tie-aware mAP is not slower than the index rule's (generous
    bound, for a loaded machine: 3x)."""
    import time

    rng = np.random.default_rng(8)
    dist = rng.integers(0, 33, (300, 8000)).astype(np.int32)
    rel = rng.random((300, 8000)) < 0.1

    def best(ties):
        times = []
        for _ in range(3):
            t = time.perf_counter()
            metrics.mean_average_precision(dist, rel, ties=ties)
            times.append(time.perf_counter() - t)
        return min(times)

    assert best("aware") < 3 * best("index")


def test_stream_map_recorder_uses_and_records_the_rule():
    rng = np.random.default_rng(9)
    index = HashIndex("LSH", 8, hasher_params={"n_bits": 16, "seed": 0})
    X, y = rng.standard_normal((60, 8)), np.repeat(np.arange(3), 20)  # a stream sorted by class
    qx, qy = rng.standard_normal((10, 8)), rng.integers(0, 3, 10)
    aware, by_index = StreamMapRecorder(qx, qy), StreamMapRecorder(qx, qy, ties="index")
    index.add_batches(X, labels=y, batch_size=20, after_batch=lambda i: (aware(i), by_index(i)))
    dist = metrics.hamming_distances(index.encode_queries(qx), index.codes)
    want = metrics.mean_average_precision(dist, metrics.relevance(qy, index.labels))
    assert aware.history[-1]["mAP"] == round(want, 6) and aware.history[-1]["ties"] == "aware"
    assert {h["ties"] for h in by_index.history} == {"index"}
    aware.save_to(index)
    assert index.extra[STREAM_MAP_TIES_KEY] == "aware" and index.extra["stream_map"] == aware.history
    with pytest.raises(HashingError, match="ties must be"):
        StreamMapRecorder(qx, qy, ties="shuffled")
