"""HashIndex: add / refresh / search / remove, atomic save & load, corruption, injected failures."""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np
import pytest

from hashing import BSODH, HashingError, IndexFormatError
from hashing.index import HashIndex


def _data(rng, n, d=16, n_classes=4):
    centers = rng.standard_normal((n_classes, d)) * 3
    y = rng.integers(0, n_classes, n)
    return centers[y] + rng.standard_normal((n, d)), y


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.iterdir())}


@pytest.fixture
def built(tmp_path):
    rng = np.random.default_rng(0)
    idx = HashIndex(BSODH(32, seed=0), 16)
    for _ in range(3):
        X, y = _data(rng, 60)
        idx.add(X, labels=y, sources=[f"img{i}.png" for i in range(60)])
    return idx, rng


def test_codes_follow_hash_updates(built):
    idx, rng = built
    assert len(idx) == 180 and idx.stats()["stale_updates"] == 0
    emb = np.concatenate([s.astype(np.float32) for s in idx.embeddings()])
    np.testing.assert_array_equal(idx.codes, idx.hasher.export_encoder().encode(emb.astype(np.float16)))
    # kNN agrees with a brute-force Hamming ranking.
    q = emb[:5]
    res = idx.search(q, k=7)
    qc = idx.encode_queries(q)
    dist = np.bitwise_count(qc[:, None, :] ^ idx.codes[None]).sum(-1)
    np.testing.assert_array_equal(res.distances, np.sort(dist, axis=1)[:, :7])
    assert (res.ids[:, 0] >= 0).all()


def test_refresh_every_k_reports_staleness():
    rng = np.random.default_rng(1)
    idx = HashIndex(BSODH(16, seed=0), 16, refresh_every=3)
    for i in range(1, 5):
        X, y = _data(rng, 30)
        idx.add(X, labels=y)
        assert idx.stats()["stale_updates"] == i % 3
    # Stale codes are still consistent: encoded with the snapshot, as are queries.
    snap = idx.encoder
    emb = np.concatenate([s for s in idx.embeddings()])
    np.testing.assert_array_equal(idx.codes, snap.encode(emb, validate=False))
    idx.refresh()
    assert idx.stats()["stale_updates"] == 0


def test_unlabelled_items_are_only_encoded(built):
    idx, rng = built
    W = idx.hasher.W_.copy()
    X, _ = _data(rng, 10)
    new = idx.add(X)
    np.testing.assert_array_equal(idx.hasher.W_, W)
    assert (idx.labels[-10:] == -1).all() and len(new) == 10
    assert idx.stats()["labelled_items"] == 180


def test_radius_search_includes_the_radius(built):
    idx, _ = built
    q = idx.embeddings()[0][:3].astype(np.float32)
    qc = idx.encode_queries(q)
    dist = np.bitwise_count(qc[:, None, :] ^ idx.codes[None]).sum(-1)
    for radius in (0, 2, 5):
        res = idx.range_search(q, radius)
        for i in range(3):
            expect = np.flatnonzero(dist[i] <= radius)
            assert sorted(res[i].ids.tolist()) == sorted(idx.ids[expect].tolist())
            assert (res[i].distances <= radius).all()


def test_remove(built):
    idx, _ = built
    assert idx.remove([0, 1, 2, 999]) == 3
    assert len(idx) == 177 and not np.isin([0, 1, 2], idx.ids).any()
    assert idx.sources[0] == "img3.png"
    res = idx.search(idx.embeddings()[0][:1].astype(np.float32), k=3)
    assert not np.isin(res.ids, [0, 1, 2]).any()


def test_save_load_round_trip(built, tmp_path):
    idx, rng = built
    root = idx.save(tmp_path / "ix")
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["bits"] == 32 and manifest["dim"] == 16 and manifest["count"] == 180
    assert all(len(v["sha256"]) == 64 for v in manifest["files"].values())
    back = HashIndex.load(root)
    q = rng.standard_normal((4, 16))
    np.testing.assert_array_equal(back.search(q, 5).ids, idx.search(q, 5).ids)
    assert back.sources == idx.sources and back.stats()["items"] == 180
    # Keep learning after a reload, save again into the same directory: old generation removed.
    X, y = _data(rng, 40)
    back.add(X, labels=y)
    back.save(root)
    names = {p.name for p in root.iterdir()}
    assert not any(".g1." in n for n in names)
    assert len(HashIndex.load(root)) == 220


def test_corrupt_and_truncated_directories(built, tmp_path):
    idx, _ = built
    root = idx.save(tmp_path / "ix")
    codes = next(root.glob("codes.g*.npy"))
    data = codes.read_bytes()
    codes.write_bytes(data[:-5])
    with pytest.raises(IndexFormatError, match="truncated"):
        HashIndex.load(root)
    codes.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(IndexFormatError, match="sha256"):
        HashIndex.load(root)
    codes.write_bytes(data)
    (root / "manifest.json").write_text("{not json")
    with pytest.raises(IndexFormatError, match="corrupt"):
        HashIndex.load(root)
    with pytest.raises(IndexFormatError, match="not an index"):
        HashIndex.load(tmp_path / "missing")


def test_failed_save_leaves_directory_byte_identical(built, tmp_path, monkeypatch):
    idx, rng = built
    root = idx.save(tmp_path / "ix")
    before = _snapshot(root)
    X, y = _data(rng, 30)
    idx.add(X, labels=y)
    calls = {"n": 0}
    real_savez = np.savez

    def failing_savez(*args, **kwargs):
        calls["n"] += 1
        raise OSError("disk full (injected)")

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OSError, match="injected"):
        idx.save(root)
    monkeypatch.setattr(np, "savez", real_savez)
    assert calls["n"] == 1
    assert _snapshot(root) == before
    assert len(HashIndex.load(root)) == 180


def test_bad_input(built, tmp_path):
    idx, _ = built
    with pytest.raises(HashingError, match="features"):
        idx.add(np.ones((3, 5)))
    with pytest.raises(HashingError, match="NaN"):
        idx.add(np.full((2, 16), np.inf))
    with pytest.raises(HashingError, match="labels"):
        idx.add(np.ones((3, 16)), labels=[1, 2])
    with pytest.raises(HashingError, match="multiple of 8"):
        HashIndex(BSODH(12), 16)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.txt").write_text("hi")
    with pytest.raises(HashingError, match="not a saved index"):
        idx.save(tmp_path / "junk")
    assert len(idx) == 180


def test_wrapper_matches_raw_faiss(built):
    idx, rng = built
    raw = faiss.IndexBinaryFlat(32)
    raw.add(idx.codes)
    q = idx.encode_queries(rng.standard_normal((6, 16)))
    D, pos = raw.search(q, 9)
    res = idx.search_codes(q, 9)
    np.testing.assert_array_equal(res.ids, idx.ids[pos])
    np.testing.assert_array_equal(res.distances, D)


def test_multilabel_index_and_late_labels(tmp_path):
    rng = np.random.default_rng(5)
    idx = HashIndex(BSODH(16, seed=0), 8, refresh_every=2)
    idx.add(rng.standard_normal((10, 8)))  # unlabelled first: encoded with the initial function
    Y = (rng.random((20, 4)) < 0.4).astype(np.uint8)
    idx.add(rng.standard_normal((20, 8)), labels=Y)
    idx.add(rng.standard_normal((20, 8)), labels=Y)
    assert idx.labels.shape == (50, 4) and (idx.labels[:10] == -1).all()
    assert idx.stats()["label_kind"] == "multi-label" and idx.stats()["labelled_items"] == 40
    with pytest.raises(HashingError, match="columns"):
        idx.add(rng.standard_normal((2, 8)), labels=np.ones((2, 3)))
    back = HashIndex.load(idx.save(tmp_path / "ml"))
    np.testing.assert_array_equal(back.labels, idx.labels)
    assert back.hasher.n_labels_ == 4


def test_gpu_request_without_gpu_is_an_error():
    from hashing.index import gpu_available

    if gpu_available():
        pytest.skip("a GPU build of faiss with a visible GPU is present")
    with pytest.raises(HashingError, match="GPU"):
        HashIndex(BSODH(16), 4, device="gpu")
