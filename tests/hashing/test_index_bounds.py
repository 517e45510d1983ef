"""The library's bounds on batch sizes, k and radius: refused with one line naming the parameter,
or -- for k above the index size -- clamped, with the result saying so."""

from __future__ import annotations

import numpy as np
import pytest

from hashing import BSODH, HashingError
from hashing.bench import index_benchmark
from hashing.evaluation import StreamMapRecorder, final_map, hold_out_queries
from hashing.index import HashIndex


@pytest.fixture
def idx():
    rng = np.random.default_rng(0)
    index = HashIndex(BSODH(16, seed=0), 8)
    index.add(
        rng.standard_normal((30, 8)), labels=rng.integers(0, 3, 30), sources=[f"s{i}" for i in range(30)]
    )
    return index


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "10"])
def test_batch_size_is_a_positive_whole_number(idx, bad):
    before = (len(idx), idx.n_updates)
    with pytest.raises(HashingError, match="batch_size must be") as err:
        idx.add_batches(np.ones((5, 8)), batch_size=bad)
    assert err.value.param == "batch_size" and len(str(err.value).splitlines()) == 1
    assert (len(idx), idx.n_updates) == before  # nothing was added


def test_add_batches_feeds_one_update_per_batch(idx):
    rng = np.random.default_rng(1)
    seen = []
    ids = idx.add_batches(
        rng.standard_normal((25, 8)),
        labels=rng.integers(0, 3, 25),
        batch_size=10,
        after_batch=lambda i: seen.append(len(i)),
        progress=lambda n: seen.append(-n),
    )
    assert len(ids) == 25 and idx.n_updates == 4 and seen == [40, -10, 50, -10, 55, -5]
    with pytest.raises(HashingError, match="3 labels for 4"):
        idx.add_batches(np.ones((4, 8)), labels=[0, 1, 2])
    with pytest.raises(HashingError, match="features"):
        idx.add_batches(np.ones((4, 5)))


def test_k_above_the_index_size_is_clamped_and_said(idx):
    q = np.random.default_rng(2).standard_normal((2, 8))
    res = idx.search(q, k=1_000_000_000)  # no gigabyte allocation: at most len(index) columns
    assert res.ids.shape == (2, 30) and res.clamped and res.k_requested == 1_000_000_000
    assert set(res.ids[0].tolist()) == set(idx.ids.tolist())
    exact = idx.search(q, k=30)
    assert not exact.clamped and np.array_equal(exact.ids, res.ids)
    answer = idx.neighbours(q[0], k=500)
    assert answer.clamped and len(answer.rows) == 30 and answer.rows[0]["rank"] == 1
    assert not idx.neighbours(q[0], k=3).clamped
    empty = HashIndex(BSODH(16), 8)
    assert empty.search_codes(np.zeros((1, 2), np.uint8), k=5).ids.shape == (1, 0)


@pytest.mark.parametrize("k", [0, -3, 1.5])
def test_k_below_one_is_refused(idx, k):
    with pytest.raises(HashingError, match="k must be") as err:
        idx.search(np.zeros((1, 8)), k=k)
    assert err.value.param == "k"


def test_radius_and_k_together_or_negative_are_refused(idx):
    q = np.zeros(8)
    with pytest.raises(HashingError, match="not both") as err:
        idx.neighbours(q, k=3, radius=2)
    assert err.value.param == "k,radius"
    with pytest.raises(HashingError, match="radius must be 0 or more") as err:
        idx.range_search(q[None], -1)
    assert err.value.param == "radius"
    within = idx.neighbours(q, radius=16)  # every code is within 16 bits
    assert len(within.rows) == 30 and within.k is None and not within.clamped


@pytest.mark.parametrize(
    "kwargs, param",
    [({"k": 0}, "k"), ({"k": 50, "n": 50}, "k"), ({"n_bits": 12}, "n_bits"), ({"n_queries": 0}, "n_queries")],
)
def test_index_benchmark_bounds_before_any_allocation(kwargs, param):
    args = {"n": 10**12, "n_bits": 64, "dim": 10**6, "n_queries": 10, "k": 5, "numpy_queries": 1, **kwargs}
    with pytest.raises(HashingError) as err:  # n=1e12 x 1e6 would be a MemoryError if it got that far
        index_benchmark(**args)
    assert err.value.param == param


def test_hold_out_and_stream_map_recorder(idx):
    rng = np.random.default_rng(3)
    emb, labels = rng.standard_normal((40, 8)), rng.integers(0, 3, 40)
    sources = [f"d#train:{i}" for i in range(40)]
    (kept, kept_labels, kept_sources), (q, q_labels) = hold_out_queries(emb, labels, sources, 10, seed=1)
    assert len(kept) == 30 and len(q) == 10 and len(set(kept_sources)) == 30
    with pytest.raises(HashingError, match="needs labelled data"):
        hold_out_queries(emb, None, sources, 10)
    with pytest.raises(HashingError, match="leaves nothing to index") as err:
        hold_out_queries(emb, labels, sources, 40)
    assert err.value.param == "eval_queries"
    recorder = StreamMapRecorder(q, q_labels)
    index = HashIndex(BSODH(16, seed=0), 8)
    index.add_batches(kept, labels=kept_labels, sources=kept_sources, batch_size=10, after_batch=recorder)
    index.add(rng.standard_normal((3, 8)))  # unlabelled: no new point
    recorder(index)
    assert [h["update"] for h in recorder.history] == [1, 2, 3]
    assert recorder.final_map == final_map(recorder.history) is not None
    recorder.save_to(index)
    assert index.extra["stream_map"] == recorder.history and index.extra["stream_map_queries"] == 10
