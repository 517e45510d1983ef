"""Everything ``automl index build|add|query|stats|record`` does, from Python in a few lines
(:mod:`automl.retrieval`), with the store rows the dashboard reads."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from automl import retrieval
from hashing import HashingError
from hashing.index import HashIndex
from tests.tiny_embedder import CLASSES, write_tiny_embedder

ROW_KEYS = {
    "model",
    "task",
    "generation",
    "hash_updates",
    "labelled_items",
    "stale_updates",
    "refresh_every",
    "dim",
}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_embedder(tmp_path_factory.mktemp("model"))


def _faces(folder: Path, per_class: int, seed: int) -> Path:
    """Aligned crops whose pixels depend on the class; returns their labels CSV."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    lines = ["file,label"]
    for c, name in enumerate(CLASSES):
        for i in range(per_class):
            img = np.clip(60 * c + 40 + rng.normal(0, 12, (48, 48)), 0, 255).astype(np.uint8)
            img[10 + 8 * c : 20 + 8 * c] = 255
            cv2.imwrite(str(folder / f"{name}_{seed}_{i}.png"), img)
            lines.append(f"{name}_{seed}_{i}.png,{name}")
    csv_path = folder.with_suffix(".csv")
    csv_path.write_text("\n".join(lines) + "\n")
    return csv_path


def test_build_add_query_record_from_python(model_file, tmp_path):
    from automl.store import open_store

    db = f"sqlite:///{tmp_path / 'store.db'}"
    labels = _faces(tmp_path / "faces", 8, seed=0)
    stages = []
    faces = retrieval.embed_folder(model_file, tmp_path / "faces", labels, detect=False,
                                   progress=stages.append)  # fmt: skip
    assert len(faces.sources) == 24 and faces.labels.tolist().count(0) == 8 and not faces.skipped
    last = stages[-1]  # automl.progress.ProgressEvent, the library's one progress type
    assert (last.job, last.done, last.total) == ("embedding", 24, 24) and faces.model["task"] == "fer"

    built = retrieval.build_index(faces, tmp_path / "ix", bits=16, batch_size=6, eval_queries=6)
    assert len(built.index) == 18 and built.index.n_updates == 3 and len(built.history) == 3
    assert built.final_map is not None and "stream mAP" in built.summary()
    assert built.index.extra["model"] == str(model_file.resolve())
    row_id = retrieval.record_index(db, built.path, built.index, {"command": "build"})

    more_labels = _faces(tmp_path / "more", 2, seed=1)
    more = retrieval.embed_folder(model_file, tmp_path / "more", more_labels, detect=False)
    grown = retrieval.add_to_index(tmp_path / "ix", more, batch_size=100)
    assert len(grown.index) == 24 and grown.index.n_updates == 4 and grown.added == 6
    assert grown.index.extra["stream_map"] == built.history  # carried over, not extended
    assert grown.summary("add").startswith("added 6 item(s) (labelled)")

    index, answer = retrieval.query_image(
        tmp_path / "ix", tmp_path / "faces" / "happy_0_0.png", k=3, detect=False
    )
    assert len(answer.rows) == 3 and answer.rows[0]["label"] in CLASSES and index.generation == 2

    row, already = retrieval.record_saved_index(db, tmp_path / "ix")
    assert not already and row != row_id
    assert retrieval.record_saved_index(db, tmp_path / "ix") == (row, True)
    store = open_store(db)
    try:
        newest, first = store.list_indexes()
    finally:
        store.close()
    assert newest["sha256"] == retrieval.generation_sha256(tmp_path / "ix") == grown.index.manifest_sha256
    assert ROW_KEYS | {"command", "signal", "stream_map", "stream_map_queries"} <= set(newest["extra"])
    assert first["extra"]["stream_map"] == built.history and first["size"] == 18


def test_embed_dataset_and_the_index_model(model_file, tmp_path):
    faces = retrieval.embed_dataset(model_file, "synth:fer", split="train", n=60)
    assert (
        faces.class_names
        and faces.sources[0] == "synth:fer#train:0"
        and len(faces.labels) == len(faces.sources)
    )
    built = retrieval.build_index(faces, tmp_path / "ix", hasher="LSH", bits=16, batch_size=20)
    assert built.index.stats()["hasher"] == "LSH" and built.index.extra["class_names"] == faces.class_names
    assert retrieval.model_for_index(tmp_path / "ix").embedding_dim == built.index.dim
    with pytest.raises(HashingError, match="split must be"):
        retrieval.embed_dataset(model_file, "synth:fer", split="val")
    with pytest.raises(HashingError, match="exactly one of data"):
        retrieval.embed_input(model_file)
    with pytest.raises(HashingError, match="already holds a saved index"):
        retrieval.build_index(faces, tmp_path / "ix", bits=16)
    assert len(HashIndex.load(tmp_path / "ix")) == len(faces.sources)
