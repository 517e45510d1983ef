"""Retrieval page helpers: labels, relevance, sources, stream history, bad index directories."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import retrieval_data as rd

APP = "../../dashboard/app.py"


def test_labels_and_relevance_single_and_multi_label() -> None:
    names = ["anger", "happiness"]
    assert rd.label_text(np.int64(1), names) == "happiness"
    assert rd.label_text(np.int64(-1), names) == "unlabelled"
    assert rd.label_text(np.array([1, 0, 1], np.int8), ["AU1", "AU2"]) == "AU1, L2"
    assert rd.label_text(np.array([0, 0], np.int8), names) == "none"
    assert rd.relevance(np.int64(1), np.array([1, 0, 1])).tolist() == [True, False, True]
    assert rd.relevance(np.int64(-1), np.array([1, 0])) is None
    multi = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 0]], np.int8)
    assert rd.relevance(np.array([0, 1, 0], np.int8), multi).tolist() == [False, True, False]
    assert rd.relevance(np.array([-1, -1, -1], np.int8), multi) is None


def test_sources_history_and_directories(tmp_path: Path) -> None:
    (tmp_path / "faces").mkdir()
    img = tmp_path / "faces" / "a.png"
    img.write_bytes(b"png")
    index_dir = tmp_path / "index"
    index_dir.mkdir()
    assert rd.resolve_source("faces/a.png", index_dir) == tmp_path / "faces" / "a.png"  # beside the index
    assert rd.resolve_source(str(img), index_dir) == img
    assert (
        rd.resolve_source("synth:fer#train:3", index_dir) is None and rd.resolve_source("", index_dir) is None
    )
    history = rd.stream_history(
        {}, {"map_history": [{"items": 2000, "mAP": 0.3}, {"items": 4000, "map": 0.4}]}
    )
    assert history == [(2000.0, 0.3), (4000.0, 0.4)]
    assert rd.stream_history({"stream_map": "not a list"}) == []
    dirs = rd.candidate_dirs([index_dir], [{"path": str(index_dir)}, {"path": str(tmp_path / "other")}])
    assert dirs == [index_dir, tmp_path / "other"]


def test_search_leaves_out_the_query_item(seeded) -> None:
    index = rd.load_index(seeded.index_dirs[0])
    hits = rd.search(index, rd.stored_embedding(index, 4), 5, exclude_id=int(index.ids[4]))
    assert len(hits.ids) == 5 and int(index.ids[4]) not in hits.ids.tolist()
    assert (np.diff(hits.distances) >= 0).all()
    assert index.ids[hits.positions].tolist() == hits.ids.tolist()
    with pytest.raises(IndexError):
        rd.stored_embedding(index, len(index))
    assert rd.model_path(index, seeded.index_dirs[0]).name == "model.pt"
    assert rd.class_names(index) == ["anger", "happiness", "neutral"]


def test_a_directory_that_is_not_an_index_is_reported(tmp_path: Path, monkeypatch) -> None:
    bad = tmp_path / "not-an-index"
    bad.mkdir()
    (bad / "manifest.json").write_text("{ corrupt")
    monkeypatch.setenv("AUTOML_DB", f"sqlite:///{tmp_path / 'none.db'}")
    monkeypatch.setenv("AUTOML_INDEXES", str(bad))
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    at.switch_page("views/retrieval.py").run()
    assert not at.exception
    assert any("Cannot open the index" in e.value for e in at.error)


def test_a_video_faces_source_shows_its_frame(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("cv2")
    from tests.face_media import write_video

    frames = [np.full((360, 640, 3), 20 * i, np.uint8) for i in range(6)]
    video = write_video(tmp_path / "clip.avi", frames)
    got = rd.source_image(f"{video}#frame=4&face=1", tmp_path)
    assert isinstance(got, np.ndarray) and got.shape == (180, 320, 3)  # shrunk to 320 px
    assert abs(float(got.mean()) - 60) < 4  # the 4th frame (1-based), not the first
    assert rd.source_image(f"{video}#frame=99&face=0", tmp_path) is None  # past the end
    assert rd.source_image(f"{tmp_path / 'gone.avi'}#frame=1&face=0", tmp_path) is None
    assert rd.source_image("clip.avi#frame=2&face=0", tmp_path) is not None  # relative to the index
    monkeypatch.setenv("AUTOML_MAX_IMAGE_PIXELS", "1000")
    assert rd.source_image(f"{video}#frame=1&face=0", tmp_path) is None  # never decoded
