"""BSODH's robust mode on the streams that collapse the paper's stage, and its state."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from hashing import BSODH, LSH, metrics
from hashing.bench import official_stream_batches
from hashing.bench_streams import identity_data, stream_order
from hashing.errors import CollapseWarning, HashingError
from hashing.index import HashIndex


def _map(h, data) -> float:
    Xq, yq, Xdb, ydb = data
    return metrics.mean_average_precision(
        metrics.hamming_distances(h.encode(Xq), h.encode(Xdb)), metrics.relevance(yq, ydb)
    )


def _feed(h, X, y, parts):
    for rows in parts:
        h.partial_fit(X[rows], y[rows])
    return h


def _hasher(mode: str, **kw) -> BSODH:
    return BSODH(32, 0.6, 0.5, 1.2, 0.2, center=False, normalize=False, mode=mode, seed=0, **kw)


@pytest.fixture(scope="module")
def ten_classes():
    return identity_data(10, per_id=60, queries_per_id=10, dim=32, noise=1.2, seed=1)


def test_one_class_adds_keep_the_shuffled_quality(ten_classes):
    """Half the stream shuffled, then one class per batch: robust stays within 0.02 of the fully
    shuffled stream; the paper's stage collapses (the issue's 20-photos-of-one-person case)."""
    Xq, yq, Xdb, ydb = ten_classes
    batches = lambda idx: [idx[s : s + 100] for s in range(0, len(idx), 100)]  # noqa: E731
    shuffled = batches(stream_order(ydb, "shuffled", 0)[0])
    first, *groups = stream_order(ydb, "one-class adds", 0)
    one_class = batches(first) + groups
    results = {}
    for mode in ("robust", "paper"):
        results[mode] = (
            _map(_feed(_hasher(mode), Xdb, ydb, shuffled), ten_classes),
            _map(_feed(_hasher(mode), Xdb, ydb, one_class), ten_classes),
        )
    robust_shuffled, robust_one_class = results["robust"]
    assert robust_shuffled > 0.8
    assert robust_one_class >= robust_shuffled - 0.02
    assert results["paper"][1] < robust_one_class - 0.3  # the faithful mode still collapses


def test_many_identities_beat_lsh_where_the_paper_collapses():
    data = identity_data(300, seed=0)
    Xq, yq, Xdb, ydb = data
    parts = [np.arange(s, min(s + 500, len(ydb))) for s in range(0, len(ydb), 500)]
    robust = _map(_feed(BSODH(64, center=False, normalize=False), Xdb, ydb, parts), data)
    paper = _map(_feed(BSODH(64, center=False, normalize=False, mode="paper"), Xdb, ydb, parts), data)
    lsh = _map(_feed(LSH(64, seed=0), Xdb, ydb, parts), data)
    assert paper < 0.05  # chance is 1/300: every code the same
    assert robust > lsh > 0.3


def test_stream_eta_d_follows_the_label_statistics():
    h = BSODH(8)
    sim = h._pattern_similarity  # noqa: F841 (the rule only needs counts and the similarity)
    from hashing.bsodh import PatternSimilarity

    ten = PatternSimilarity(10, None)
    assert h.stream_eta_d(np.full(10, 50), ten) == pytest.approx(0.2)  # the paper's setting
    thousand = PatternSimilarity(1000, None)
    assert h.stream_eta_d(np.full(1000, 10), thousand) == pytest.approx(0.2 * 9 / 999)
    assert h.stream_eta_d(np.array([100]), PatternSimilarity(1, None)) == h.eta_s  # one class: capped


def test_replay_reservoir_is_class_balanced_and_bounded():
    rng = np.random.default_rng(0)
    h = BSODH(16, replay=400, seed=0)
    y = np.r_[np.zeros(1000, int), np.ones(100, int), np.full(100, 2)]
    h.partial_fit(rng.standard_normal((1200, 6)), y)
    counts = np.bincount(h.replay_pattern_)
    assert len(h.replay_pattern_) == 400
    assert counts[1] == counts[2] == 100 and counts[0] == 200  # the big class gave up members
    # a one-class batch is topped up with every other class
    rows = h._replay_rows(np.zeros(50, np.int64), 3)
    got = np.bincount(h.replay_pattern_[rows], minlength=3)
    assert got[1] == got[2] == 100 and got[0] == 83  # q = 400 // 3 = 133 per class; 50 in the batch


def test_reservoir_is_kept_for_the_guard_even_without_replay():
    h = BSODH(16, replay=0, seed=0)
    h.partial_fit(np.random.default_rng(0).standard_normal((300, 6)), np.arange(300) % 3)
    assert len(h.replay_pattern_) == 256  # GUARD_PROBE
    assert h._replay_rows(np.zeros(5, np.int64), 3).size == 0  # but nothing is replayed


def test_robust_state_round_trip_continues_identically():
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((300, 10)), rng.integers(0, 5, 300)
    a = BSODH(16, seed=3).fit(X[:200], y[:200], batch_size=50)
    b = BSODH.from_state(*a.get_state())
    assert b.mode == "robust" and b.replay == a.replay
    for h in (a, b):
        h.fit(X[200:], y[200:], batch_size=50)
    np.testing.assert_array_equal(a.encode(X), b.encode(X))
    np.testing.assert_array_equal(a.codes_e_, b.codes_e_)


def test_state_without_mode_loads_as_the_paper_stage():
    h = BSODH(8, mode="paper").partial_fit(
        np.random.default_rng(0).standard_normal((10, 3)), np.arange(10) % 2
    )
    params, arrays = h.get_state()
    del params["mode"]
    assert BSODH.from_state(params, arrays).mode == "paper"


def test_collapsing_stage_is_refused():
    """A W step that would put a two-class stage on one code is refused, with a warning."""
    rng = np.random.default_rng(0)
    h = BSODH(8, center=False, normalize=False, replay=0, seed=0)
    X = rng.standard_normal((40, 4))
    h.partial_fit(X, np.arange(40) % 2)
    before = h.W_.copy()
    h._w_step = lambda Xs, Bs: np.zeros_like(before)  # noqa: E731 (a degenerate solve: one code)
    with pytest.warns(CollapseWarning, match="refused"):
        h.partial_fit(X[:20] + 0.01, np.arange(20) % 2)
    assert h.refused_stages_ == 1
    np.testing.assert_array_equal(h.W_, before)
    assert h.codes_e_.shape[1] == 60


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"mode": "fast"}, "mode"), ({"balance": "x"}, "balance"), ({"replay": -1}, "replay")],
)
def test_bad_robust_options_are_one_line_errors(kwargs, match):
    with pytest.raises(HashingError, match=match):
        BSODH(8, **kwargs)


def test_index_with_robust_bsodh_reports_mode_and_refusals(tmp_path):
    rng = np.random.default_rng(0)
    idx = HashIndex("BSODH", 6, hasher_params={"n_bits": 16})
    with warnings.catch_warnings():
        warnings.simplefilter("error", CollapseWarning)
        idx.add_batches(rng.standard_normal((90, 6)), labels=rng.integers(0, 3, 90), batch_size=30)
    st = idx.stats()
    assert st["hasher_mode"] == "robust" and st["refused_updates"] == 0
    assert st["balance"] == "stream" and st["replay"] == 2000
    assert st["eta_d_last_update"] == pytest.approx(min(1.2, 0.2 * 9 * (1 / 3) / (2 / 3)), rel=0.05)
    idx.save(tmp_path / "i")
    again = HashIndex.load(tmp_path / "i")
    assert again.hasher.mode == "robust" and len(again.hasher.replay_pattern_) == 90


def test_official_stream_batches_learn_one_plus_six_of_eight():
    parts = official_stream_batches(4000, 500)
    assert len(parts) == 7 and parts[0] == slice(0, 500) and parts[-1] == slice(3000, 3500)


def test_class_sorted_stream_keeps_classes_apart(ten_classes):
    Xq, yq, Xdb, ydb = ten_classes
    order = stream_order(ydb, "class-sorted", 0)[0]
    parts = [order[s : s + 100] for s in range(0, len(order), 100)]
    robust = _map(_feed(_hasher("robust"), Xdb, ydb, parts), ten_classes)
    paper = _map(_feed(_hasher("paper"), Xdb, ydb, parts), ten_classes)
    assert robust > paper + 0.3 and robust > 0.6


def _leave_one_out_map(index: HashIndex) -> float:
    dist = metrics.hamming_distances(index.codes, index.codes)
    rel = metrics.relevance(index.labels, index.labels)
    np.fill_diagonal(rel, False)
    dist = dist + np.eye(len(dist), dtype=dist.dtype) * 10_000  # the item itself ranks last
    return metrics.mean_average_precision(dist, rel)


def test_index_survives_a_batch_of_one_person():
    """The issue's case: a 240-item index (12 people x 20), then 20 more photos of person 0 in one
    labelled add. Robust: quality and code diversity stay; paper: collapses to a few codes."""
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((12, 32)) * 2
    y = np.repeat(np.arange(12), 20)
    X = centers[y] + rng.standard_normal((240, 32))
    extra = centers[0] + rng.standard_normal((20, 32))
    perm = rng.permutation(240)
    got = {}
    for mode in ("robust", "paper"):
        idx = HashIndex("BSODH", 32, hasher_params={"n_bits": 32, "mode": mode})
        idx.add_batches(X[perm], labels=y[perm], batch_size=60)
        before = _leave_one_out_map(idx)
        idx.add(extra, labels=np.zeros(20, int))
        got[mode] = (before, _leave_one_out_map(idx), len(np.unique(idx.codes, axis=0)))
    before, after, distinct = got["robust"]
    assert before > 0.9 and after >= before - 0.02 and distinct > 12
    assert got["paper"][1] < got["paper"][0] - 0.2  # the faithful stage still collapses here


def test_add_to_index_reports_refused_updates(tmp_path, monkeypatch):
    """A refused hash update reaches the caller as a count and a one-line note, not a traceback."""
    from automl import retrieval
    from hashing.bsodh import BSODH as Learner

    rng = np.random.default_rng(0)
    emb, y = rng.standard_normal((60, 6)).astype(np.float32), np.arange(60) % 3
    built = retrieval.build_index(
        retrieval.Embedded(emb, [f"x{i}" for i in range(60)], y), tmp_path / "ix", bits=16, batch_size=30
    )
    assert built.refused == 0 and built.notes() == []
    monkeypatch.setattr(Learner, "_w_step", lambda self, Xs, Bs: np.zeros((Xs.shape[1], self.n_bits)))
    more = retrieval.Embedded(emb[:20] + 0.01, [f"y{i}" for i in range(20)], y[:20])
    with warnings.catch_warnings():
        warnings.simplefilter("error", CollapseWarning)  # the library reports it instead
        grown = retrieval.add_to_index(tmp_path / "ix", more)
    assert grown.refused == 1 and "refused" in grown.notes()[0]
    assert HashIndex.load(tmp_path / "ix").stats()["refused_updates"] == 1
    again = retrieval.add_to_index(tmp_path / "ix", more)  # the same sources once more
    assert again.readded == 20 and any("twice" in n for n in again.notes())


def test_single_batch_builds_learn_their_labels(tmp_path):
    """A labelled build that fits in one batch: robust mode learns from it; paper mode cannot
    (its first stage only initialises) and says so."""
    from automl import retrieval

    rng = np.random.default_rng(0)
    centers = rng.standard_normal((6, 16)) * 2
    y = np.repeat(np.arange(6), 20)
    emb = (centers[y] + rng.standard_normal((120, 16))).astype(np.float32)
    faces = retrieval.Embedded(emb, [f"x{i}" for i in range(120)], y)
    robust = retrieval.build_index(faces, tmp_path / "r", bits=16)
    paper = retrieval.build_index(faces, tmp_path / "p", bits=16, hasher_params={"mode": "paper"})
    assert robust.notes() == [] and "labels were not used" in paper.notes()[0]
    unlabelled = HashIndex("BSODH", 16, hasher_params={"n_bits": 16})
    unlabelled.add(emb)
    assert not np.array_equal(robust.index.codes, unlabelled.codes)  # the labels changed the codes
    assert _leave_one_out_map(robust.index) > 0.95
