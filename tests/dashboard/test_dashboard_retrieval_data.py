"""Retrieval page helpers: labels, relevance, sources, stream history, bad index directories."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import retrieval_data as rd
from hashing.errors import HashingError
from hashing.index import HashIndex

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


@pytest.fixture(scope="module")
def synth_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real index built as ``automl index build --data synth:fer --split test`` builds one."""
    from automl import retrieval
    from tests.face_media import write_tiny_model

    root = tmp_path_factory.mktemp("synth-index")
    model = write_tiny_model(root / "model.pt", image_size=16, class_names=[f"c{i}" for i in range(7)])
    faces = retrieval.embed_dataset(model, "synth:fer", split="test", n=60, seed=3)
    retrieval.build_index(faces, root / "faces.idx", bits=16, batch_size=8)
    return root / "faces.idx"


def test_a_synthetic_source_renders_the_face_that_was_indexed(
    synth_index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from automl.data import load_data
    from automl.data.readers import synth

    index = rd.load_index(synth_index)
    sd = index.extra["source_data"]
    assert {k: sd[k] for k in ("spec", "split", "image_size", "channels", "n", "seed")} == {
        "spec": "synth:fer", "split": "test", "image_size": 16, "channels": 1, "n": 60, "seed": 3,
    }  # fmt: skip
    assert len(sd["pixels"]) == 40  # the split's sha1, checked before a face is shown
    cache = tmp_path / "cache"
    monkeypatch.setenv("AUTOML_CACHE", str(cache))
    monkeypatch.setattr(synth, "CACHE_MIN_PIXELS", 0)  # the loader would cache any render
    rd._rendered_split.cache_clear()
    expected = load_data("synth:fer", image_size=16, channels=1, n=60, seed=3).test_x.numpy()
    assert cache.exists()  # the loader itself did write there...
    for f in cache.iterdir():
        f.unlink()
    cache.rmdir()
    pos = len(index) - 1
    row = int(index.sources[pos].rsplit(":", 1)[1])
    got = rd.source_image(index.sources[pos], synth_index, sd)
    assert isinstance(got, np.ndarray) and got.dtype == np.uint8 and got.shape == (16, 16)
    assert np.array_equal(got, expected[row, 0])  # pixel for pixel
    assert not np.array_equal(got, expected[(row + 1) % len(expected), 0])
    assert not cache.exists()  # ...the dashboard never does
    assert rd.source_image(f"synth:fer#test:{len(expected)}", synth_index, sd) is None  # past the end


def test_a_synthetic_source_without_its_load_options_is_never_rendered(synth_index: Path) -> None:
    index = rd.load_index(synth_index)
    sd, source = index.extra["source_data"], index.sources[0]
    for wrong in (None, {}, {**sd, "split": "train"}, {**sd, "spec": "synth:au"}):
        assert rd.source_image(source, synth_index, wrong) is None
        assert rd.missing_note(source, wrong) == rd.REBUILD_NOTE
    changed = {**sd, "generator": "0" * 12}
    assert rd.source_image(source, synth_index, changed) is None
    assert rd.missing_note(source, changed) == rd.GENERATOR_NOTE
    # The options now render other faces than the fingerprint recorded at build time (as a change
    # to the split rule or a default would, which the generator's hash cannot see): none shown.
    drifted = {**sd, "seed": 4}
    assert rd.source_image(source, synth_index, drifted) is None
    assert rd.missing_note(source, drifted) == rd.PIXELS_NOTE
    assert rd.source_image(source, synth_index, {**sd, "pixels": None}) is not None  # not recorded yet
    past = rd.missing_note("synth:fer#test:999", sd)
    assert past.startswith("synthetic source: its split holds ") and past.endswith(" faces, not this row")
    huge = {**sd, "n": 10**7, "image_size": 512, "channels": 3}
    assert rd.source_image(source, synth_index, huge) is None and "too many" in rd.missing_note(source, huge)
    assert rd.missing_note("fer2013:/d/fer.csv#train:3").startswith("no image file: a row of a data set")
    assert rd.missing_note("faces/a.png") == "image file not found"


def _tie_index() -> tuple[HashIndex, np.ndarray]:
    """Six copies of one embedding (ids 0-5), three of another, and twenty random ones."""
    from hashing import BSODH

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(1, 24)), rng.normal(size=(1, 24))
    emb = np.concatenate([np.repeat(a, 6, 0), np.repeat(b, 3, 0), rng.normal(size=(20, 24))])
    emb = emb.astype(np.float32)
    index = HashIndex(BSODH(64, seed=0), 24)
    index.add(emb, labels=np.arange(len(emb)) % 3, sources=[f"s{i}" for i in range(len(emb))])
    return index, a.astype(np.float32)


def test_ties_at_the_cut_are_counted_with_the_index() -> None:
    index, a = _tie_index()
    hits = rd.search(index, a, 4)
    assert hits.distances.tolist()[:4] == [0, 0, 0, 0]
    ties = rd.ties_at_cut(index, a, hits)
    assert ties == rd.Ties(distance=0, in_top=4, beyond=2, shown=4)
    assert ties.beyond == int(index.search(a, 4).ties_beyond[0])  # the index's own count agrees
    assert rd.tie_note(ties) == (
        "4 of the top 4 are at distance 0 and 2 more items tie at 0: their order, and which of them "
        "make the top 4, is arbitrary."
    )
    # A sample query leaves itself out: five copies remain, four shown, one more ties.
    hits = rd.search(index, rd.stored_embedding(index, 0), 4, exclude_id=0)
    assert 0 not in hits.ids.tolist()
    assert rd.ties_at_cut(index, rd.stored_embedding(index, 0), hits, exclude_id=0).beyond == 1
    # All six copies fit: the cut is clean, but their order is still arbitrary.
    hits = rd.search(index, a, 6)
    ties = rd.ties_at_cut(index, a, hits)
    assert ties.beyond == 0
    assert rd.tie_note(ties) == "6 of the top 6 are at distance 0: their order is arbitrary."
    assert rd.tie_note(rd.Ties(distance=3, in_top=1, beyond=0, shown=10)) is None
    assert rd.tie_note(None) is None
    assert rd.tie_note(rd.Ties(3, 1, 1, 10)) == (
        "1 of the top 10 is at distance 3 and 1 more item ties at 3: their order, and which of them make "
        "the top 10, is arbitrary."
    )


def test_an_upload_without_a_face_is_not_searched_unless_asked() -> None:
    off = rd.face_choice(0, detect=False, whole_anyway=False)
    assert off.search and not off.crop
    none = rd.face_choice(0, detect=True, whole_anyway=False)
    assert not none.search and rd.WHOLE_IMAGE_LABEL in none.note
    anyway = rd.face_choice(0, detect=True, whole_anyway=True)
    assert anyway.search and not anyway.crop and "whole image" in anyway.note
    one = rd.face_choice(1, detect=True, whole_anyway=False)
    two = rd.face_choice(3, detect=True, whole_anyway=True)
    assert one.search and one.crop and two.search and two.crop
    assert two.note == "3 faces detected: the largest one was used (shown)"


def test_embed_upload_follows_the_choice_on_real_images(tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    from tests.face_media import draw_face, two_faces_photo, write_tiny_model

    model = write_tiny_model(tmp_path / "model.pt", image_size=32)

    def png(bgr: np.ndarray) -> bytes:
        return cv2.imencode(".png", bgr)[1].tobytes()

    blank = png(np.full((200, 200, 3), 128, np.uint8))
    q = rd.embed_upload(model, blank, detect=True)
    assert q.faces == 0 and q.embedding is None and not q.choice.search
    q = rd.embed_upload(model, blank, detect=True, whole_anyway=True)
    assert q.embedding is not None and q.embedding.shape == (1, 16) and q.crop is None
    assert rd.embed_upload(model, blank, detect=False).embedding is not None
    q = rd.embed_upload(model, png(draw_face(120)), detect=True)
    assert q.faces == 1 and q.embedding is not None and q.crop is not None and q.crop.shape[0] < 240
    q = rd.embed_upload(model, png(two_faces_photo()), detect=True)
    assert q.faces == 2 and "largest" in q.choice.note and q.crop is not None
    small = np.full((240, 240, 3), 200, np.uint8)
    small[60:180, 60:180] = draw_face(60)
    q = rd.embed_upload(model, png(np.concatenate([small, draw_face(120)], axis=1)), detect=True)
    assert q.faces == 2 and q.crop is not None and q.crop.shape[0] > 120  # the big face, not the small
    with pytest.raises(HashingError):
        rd.embed_upload(model, b"not an image", detect=True)


def test_the_setup_commands_start_from_what_the_store_holds() -> None:
    fresh = rd.setup_commands(None).splitlines()
    steps = [line.split("#")[0].split() for line in fresh[:2]]
    assert steps == [["automl", "search"], ["automl", "train", "1"]]
    assert fresh[2] == "automl export 2 --format torchscript --out model.pt"
    assert fresh[3].startswith("automl index build --model model.pt --data synth:fer --out faces.idx")
    known = rd.setup_commands(4).splitlines()
    assert "automl export 4 --format torchscript --out model.pt" in known
    assert not any(line.startswith(("automl search", "automl train")) for line in known)


def test_the_setup_commands_name_a_store_that_is_not_the_default() -> None:
    import shlex

    assert rd.setup_commands(None, "sqlite:///automl.db") == rd.setup_commands(None)
    lines = rd.setup_commands(None, "sqlite:////srv/my store/automl.db").splitlines()
    for line in lines:
        words = shlex.split(line.split("  #")[0])
        assert words[0] == "automl" and words[-2:] == ["--db", "sqlite:////srv/my store/automl.db"]
    assert lines[0].endswith("# run 1: an architecture search on synth:fer")  # the comment stays last
    known = rd.setup_commands(4, "postgresql://me:secret@db.example/automl")
    assert "secret" not in known and "--db 'postgresql://me:***@db.example/automl'" in known
    assert known.splitlines()[0].startswith("# run 4")  # a comment line gets no flag
