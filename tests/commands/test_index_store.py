"""``automl index build|add`` record every saved generation in the store, and ``--eval-queries``
records the mAP over the stream where the dashboard's Retrieval page looks for it.

A tiny exported TorchScript embedder (``tests/tiny_embedder.py``, shared with the hashing CLI
tests) and class-dependent aligned crops keep every build fast.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.tiny_embedder import CLASSES, write_tiny_embedder


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_embedder(tmp_path_factory.mktemp("model"))


def _crops(folder: Path, n_per_class: int, seed: int = 0) -> Path:
    """Aligned 48x48 crops whose pixels depend on the class, and their labels CSV (returned)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["file,label"]
    for c, name in enumerate(CLASSES):
        for i in range(n_per_class):
            img = np.clip(60 * c + 40 + rng.normal(0, 12, (48, 48)), 0, 255).astype(np.uint8)
            img[10 + 8 * c : 20 + 8 * c] = 255
            cv2.imwrite(str(folder / f"{name}_{seed}_{i}.png"), img)
            lines.append(f"{name}_{seed}_{i}.png,{name}")
    csv_path = folder.with_suffix(".csv")
    csv_path.write_text("\n".join(lines) + "\n")
    return csv_path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rows(db_url: str) -> list[dict]:
    from automl.store import open_store

    store = open_store(db_url)
    try:
        return store.list_indexes()  # newest first
    finally:
        store.close()


def _build(cli, db_url, model_file, tmp_path, *extra):
    labels = _crops(tmp_path / "faces", 6)
    out = tmp_path / "ix"
    r = cli("--db", db_url, "index", "build", "--model", model_file, "--images", tmp_path / "faces",
            "--labels", labels, "--bits", "16", "--batch", "6", "--out", out, "--no-detect",
            *extra)  # fmt: skip
    return r, out


def _add(cli, db_url, out, tmp_path, *extra):
    labels = _crops(tmp_path / "more", 3, seed=1)
    return cli("--db", db_url, "index", "add", out, "--images", tmp_path / "more", "--labels", labels,
               "--no-detect", *extra)  # fmt: skip


def test_build_then_add_record_one_row_per_generation(cli, db_url, model_file, tmp_path):
    r, out = _build(cli, db_url, model_file, tmp_path)
    assert r.code == 0, r.err
    assert "recorded in the store" in r.out
    (row,) = _rows(db_url)
    assert row["path"] == str(out.resolve())
    assert (row["bits"], row["size"]) == (16, 18)
    assert row["sha256"] == _sha256(out / "manifest.json")
    extra = row["extra"]
    assert extra["model"] == str(model_file.resolve()) and extra["task"] == "fer"
    assert (extra["hash_updates"], extra["labelled_items"], extra["command"]) == (3, 18, "build")
    assert "stream_map" not in extra  # --eval-queries is off by default
    first_sha = row["sha256"]

    r = _add(cli, db_url, out, tmp_path)
    assert r.code == 0, r.err
    newest, oldest = _rows(db_url)
    assert oldest["sha256"] == first_sha  # the history is kept
    assert newest["path"] == oldest["path"] and newest["sha256"] != first_sha
    assert newest["sha256"] == _sha256(out / "manifest.json")
    assert (newest["bits"], newest["size"]) == (16, 27)
    assert newest["extra"]["hash_updates"] == 4 and newest["extra"]["command"] == "add"
    assert newest["extra"]["generation"] == oldest["extra"]["generation"] + 1


def test_no_record_skips_the_store(cli, db_url, model_file, tmp_path):
    r, out = _build(cli, db_url, model_file, tmp_path, "--no-record")
    assert r.code == 0, r.err
    assert "recorded" not in r.out
    r = _add(cli, db_url, out, tmp_path, "--no-record")
    assert r.code == 0, r.err
    assert _rows(db_url) == []


def test_eval_queries_records_the_map_over_the_stream(cli, db_url, model_file, tmp_path):
    from dashboard.retrieval_data import stream_history
    from hashing.index import HashIndex

    out = tmp_path / "ix"
    r = cli("--db", db_url, "index", "build", "--model", model_file, "--data", "synth:fer", "--n", "150",
            "--bits", "16", "--batch", "30", "--eval-queries", "30", "--out", out)  # fmt: skip
    assert r.code == 0, r.err
    assert "stream mAP" in r.out
    index = HashIndex.load(out)
    history = index.extra["stream_map"]
    assert len(history) == index.n_updates >= 2
    assert [h["update"] for h in history] == list(range(1, len(history) + 1))
    items = [h["items"] for h in history]
    assert items == sorted(set(items)) and items[-1] == len(index)
    assert all(0.0 <= h["mAP"] <= 1.0 for h in history)
    # The 30 queries were held out: exactly 30 positions of the split are missing from the index.
    indexed = {int(s.rsplit(":", 1)[1]) for s in index.sources}
    assert len(indexed) == len(index) and len(set(range(len(index) + 30)) - indexed) == 30
    assert index.extra["stream_map_queries"] == 30
    (row,) = _rows(db_url)
    assert row["extra"]["stream_map"] == history and row["size"] == len(index)
    # The dashboard reads exactly this format.
    assert stream_history(index.extra, row["extra"]) == [(h["update"], h["mAP"]) for h in history]

    # ``add`` does not extend the curve, but carries it into the new row.
    r = _add(cli, db_url, out, tmp_path)
    assert r.code == 0, r.err
    newest = _rows(db_url)[0]
    assert newest["extra"]["stream_map"] == history == HashIndex.load(out).extra["stream_map"]


def test_eval_queries_needs_labels_and_leftover_items(cli, db_url, model_file, tmp_path):
    _crops(tmp_path / "faces", 2)
    base = ("--db", db_url, "index", "build", "--model", model_file, "--images", tmp_path / "faces",
            "--no-detect", "--bits", "16")  # fmt: skip
    r = cli(*base, "--eval-queries", "2", "--out", tmp_path / "a")
    assert r.code == 2 and "needs labelled data" in r.err
    r = cli(*base, "--labels", tmp_path / "faces.csv", "--eval-queries", "6", "--out", tmp_path / "b")
    assert r.code == 2 and "leaves nothing to index" in r.err
    assert not (tmp_path / "b").exists() and _rows(db_url) == []


def test_store_failure_exits_2_and_keeps_the_saved_index(cli, model_file, tmp_path):
    from hashing.index import HashIndex

    bad_db = tmp_path / "not-a-db"
    bad_db.mkdir()  # a directory is no SQLite file
    bad_url = f"sqlite:///{bad_db}"
    r, out = _build(cli, bad_url, model_file, tmp_path)
    assert r.code == 2
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and "index saved to" in lines[0] and "not recorded" in lines[0]
    assert "Traceback" not in r.err
    assert len(HashIndex.load(out)) == 18

    r = _add(cli, bad_url, out, tmp_path)
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and "not recorded" in r.err
    assert len(HashIndex.load(out)) == 27  # the add itself was saved

    # Once the store works again, `index record` registers the saved generation, exactly once.
    good_url = f"sqlite:///{tmp_path / 'good.db'}"
    assert "automl index record" in r.err
    r = cli("--db", good_url, "index", "record", out)
    assert r.code == 0, r.err
    rows = _rows(good_url)
    assert len(rows) == 1 and rows[0]["size"] == 27 and rows[0]["extra"]["command"] == "record"
    r = cli("--db", good_url, "index", "record", out)
    assert r.code == 0 and "already recorded" in r.out and len(_rows(good_url)) == 1
    r = cli("--db", good_url, "index", "record", tmp_path / "nowhere")
    assert r.code == 2 and "Traceback" not in r.err and len(_rows(good_url)) == 1
