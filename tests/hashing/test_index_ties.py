"""Ties in query answers: a k-NN answer says how many items beyond the k returned sit at the k-th
distance (so the cut among them is arbitrary), marks the tied rows, and breaks ties by position.
Checked on a real HashIndex with duplicate codes, and through ``automl index query``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from hashing import BSODH
from hashing.index import HashIndex
from hashing.metrics import hamming_distances
from tests.tiny_embedder import write_tiny_embedder


@pytest.fixture
def dup_index():
    """40 items: 6 copies of embedding A (at positions 3, 9, 15, ...), 4 of B, 30 distinct."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 8))
    a, b = rng.standard_normal(8), rng.standard_normal(8)
    a_pos, b_pos = np.arange(3, 40, 6)[:6], np.array([1, 2, 20, 39])
    X[a_pos], X[b_pos] = a, b
    index = HashIndex(BSODH(16, seed=0), 8)
    index.add(X, sources=[f"s{i}" for i in range(40)], labels=np.arange(40) % 3)
    return index, X, a_pos, b_pos


def _expected_ties(index, query_codes, k):
    """Brute force: items within the k-th distance minus k (0 when every item is returned)."""
    d = hamming_distances(query_codes, index.codes)
    k = min(k, d.shape[1])
    kth = np.sort(d, axis=1)[:, k - 1]
    return (d <= kth[:, None]).sum(axis=1) - k


def test_duplicate_codes_report_the_tie_count_for_every_k(dup_index):
    index, X, a_pos, _ = dup_index
    queries = np.vstack([X[a_pos[0]], X[1], np.random.default_rng(1).standard_normal((4, 8))])
    codes = index.encode_queries(queries)
    for k in [1, 2, 3, 5, 6, 7, 10, 20, 39, 40, 41, 1000]:
        res = index.search(queries, k=k)
        assert res.ties_beyond.dtype == np.int64 and res.ties_beyond.shape == (len(queries),)
        np.testing.assert_array_equal(res.ties_beyond, _expected_ties(index, codes, k), err_msg=f"k={k}")
        if k >= len(index):  # clamped (or exactly everything): nothing lies beyond
            assert (res.ties_beyond == 0).all()
    # The six copies of A: asking for 2 leaves the other 4 out, and the 2 returned are the first added.
    res = index.search(X[a_pos[0]][None], k=2)
    assert res.ties_beyond[0] >= 4 and (res.distances[0] == 0).all()
    at_zero = np.flatnonzero(hamming_distances(index.encode_queries(X[a_pos[0]][None]), index.codes)[0] == 0)
    assert res.ids[0].tolist() == index.ids[at_zero[:2]].tolist()  # position order among ties
    assert res.ties_beyond[0] == len(at_zero) - 2


def test_neighbours_mark_the_rows_that_tie(dup_index):
    index, X, a_pos, _ = dup_index
    answer = index.neighbours(X[a_pos[0]], k=3)
    n_zero = int((hamming_distances(index.encode_queries(X[a_pos[0]][None]), index.codes)[0] == 0).sum())
    assert answer.ties_beyond == n_zero - 3 and answer.tie_distance == 0
    assert all(r["tied"] for r in answer.rows)
    whole = index.neighbours(X[a_pos[0]], k=n_zero)  # exactly the shell: a clean cut
    assert all(r["distance"] == 0 for r in whole.rows)
    clean = whole.ties_beyond == 0
    assert clean == (not any(r["tied"] for r in whole.rows))
    everything = index.neighbours(X[a_pos[0]], k=500)
    assert everything.clamped and everything.ties_beyond == 0 and everything.tie_distance is None
    ball = index.neighbours(X[a_pos[0]], radius=0)
    assert len(ball.rows) == n_zero and ball.ties_beyond == 0 and not any(r["tied"] for r in ball.rows)
    assert index.range_search(X[a_pos[0]][None], 0)[0].ties_beyond is None


def test_ties_survive_a_save_and_an_empty_index(dup_index, tmp_path):
    index, X, a_pos, _ = dup_index
    index.save(tmp_path / "ix")
    loaded = HashIndex.load(tmp_path / "ix")
    assert (
        loaded.search(X[a_pos[:1]], k=2).ties_beyond.tolist()
        == index.search(X[a_pos[:1]], k=2).ties_beyond.tolist()
    )
    empty = HashIndex(BSODH(16), 8)
    assert empty.search_codes(np.zeros((2, 2), np.uint8), k=5).ties_beyond.tolist() == [0, 0]


# -- the command line -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    return write_tiny_embedder(tmp_path_factory.mktemp("model"))


def test_cli_query_reports_ties(cli, model_file, tmp_path):
    from automl import retrieval

    faces = tmp_path / "faces"
    faces.mkdir()
    rng = np.random.default_rng(0)
    lines = ["file,label"]
    for i in range(6):  # one photo and 5 byte-identical copies: identical codes
        name = f"same_{i}.png"
        if i == 0:
            cv2.imwrite(str(faces / name), np.clip(rng.normal(120, 30, (48, 48)), 0, 255).astype(np.uint8))
        else:
            shutil.copy(faces / "same_0.png", faces / name)
        lines.append(f"{name},twin")
    for i in range(8):
        img = np.clip(rng.normal(60 + 20 * i, 25, (48, 48)), 0, 255).astype(np.uint8)
        cv2.imwrite(str(faces / f"other_{i}.png"), img)
        lines.append(f"other_{i}.png,other")
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "ix"
    r = cli("index", "build", "--model", model_file, "--images", faces, "--labels", tmp_path / "labels.csv",
            "--bits", "16", "--batch", "7", "--out", out, "--no-detect", "--no-record")  # fmt: skip
    assert r.code == 0, r.err

    query = faces / "same_0.png"
    _, answer = retrieval.query_image(out, query, k=2, detect=False)
    index = HashIndex.load(out)
    code = index.encode_queries(retrieval.embed_folder(model_file, [query], detect=False).embeddings)
    want = int(_expected_ties(index, code, 2)[0])
    assert want >= 4 and answer.ties_beyond == want  # at least the 4 other copies are left out

    r = cli("index", "query", out, query, "-k", "2", "--json", "--no-detect")
    got = json.loads(r.out)
    assert r.code == 0 and got["ties_beyond"] == want and got["tie_distance"] == 0
    assert [x["tied"] for x in got["results"]] == [True, True]
    assert {x["label"] for x in got["results"]} <= {"twin", "other"}  # the CSV's names

    r = cli("index", "query", out, query, "-k", "2", "--no-detect")
    assert r.code == 0 and f"{want} more item(s) tie at distance 0" in " ".join(r.out.split())
    assert r.out.count("0 =") == 2  # the two tied rows are marked

    r = cli("index", "query", out, query, "-k", "14", "--json", "--no-detect")  # every item
    got = json.loads(r.out)
    assert (
        got["ties_beyond"] == 0 and got["tie_distance"] is None and not any(x["tied"] for x in got["results"])
    )
