"""The Retrieval page on indexes of synthetic faces, their ties, and its empty state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import retrieval_data as rd

APP = "../../dashboard/app.py"


@pytest.fixture(scope="module")
def synth_indexes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two 8-bit indexes (many ties) of the same synthetic test split: one built as
    ``automl index build --data synth:fer`` does now, one as before the load options were kept."""
    from automl import retrieval
    from tests.face_media import write_tiny_model

    root = tmp_path_factory.mktemp("synth-page")
    model = write_tiny_model(root / "model.pt", image_size=16, class_names=[f"c{i}" for i in range(7)])
    faces = retrieval.embed_dataset(model, "synth:fer", split="test", n=80, seed=1)
    retrieval.build_index(faces, root / "new.idx", bits=8, batch_size=8)
    faces.model.pop("source_data")
    retrieval.build_index(faces, root / "old.idx", bits=8, batch_size=8)
    return root / "new.idx", root / "old.idx"


def _open(monkeypatch: pytest.MonkeyPatch, db: Path, indexes: str | None) -> AppTest:
    monkeypatch.setenv("AUTOML_DB", f"sqlite:///{db}")
    if indexes is None:
        monkeypatch.delenv("AUTOML_INDEXES", raising=False)
    else:
        monkeypatch.setenv("AUTOML_INDEXES", indexes)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("views/retrieval.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _image_captions(at: AppTest) -> list[str]:
    return [c for img in at.get("image") for c in img.captions]


def _texts(at: AppTest) -> list[str]:
    """Every caption, image caption, warning and markdown of the page."""
    out = [c.value for c in at.caption] + [w.value for w in at.warning] + [m.value for m in at.markdown]
    return out + _image_captions(at)


def test_synthetic_results_show_their_faces_and_the_ties(
    synth_indexes: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    new, _ = synth_indexes
    at = _open(monkeypatch, tmp_path / "none.db", str(new))
    assert len(_image_captions(at)) == 11  # the query and its 10 results: every face rendered
    assert not any("rebuild" in t or "not found" in t for t in _texts(at))
    index = rd.load_index(new)
    hits = rd.search(index, rd.stored_embedding(index, 0), 10, exclude_id=int(index.ids[0]))
    ties = rd.ties_at_cut(index, rd.stored_embedding(index, 0), hits, exclude_id=int(index.ids[0]))
    assert ties is not None and ties.beyond > 0  # 8 bits over 64 faces: the cut falls in a tie
    assert [w.value for w in at.warning] == [rd.tie_note(ties)]
    assert f"{ties.in_top} of the top 10 are at distance {ties.distance}" in at.warning[0].value
    assert not any("None" in t or "nan" in t for t in _texts(at))


def test_an_old_synthetic_index_says_to_rebuild_never_a_wrong_face(
    synth_indexes: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, old = synth_indexes
    at = _open(monkeypatch, tmp_path / "none.db", str(old))
    assert not _image_captions(at)
    captions = [c.value for c in at.caption]
    assert sum(rd.REBUILD_NOTE in c for c in captions) == 11
    assert not any("image file not found" in c for c in captions)


def _store_with_runs(path: Path) -> None:
    """A search run, its trained run with weights, then an HPO trial's train run without any."""
    from automl.store import open_store

    store = open_store(f"sqlite:///{path}")
    search = store.create_run(kind="search", config={}, seed=0, space="darts", task="fer", data="synth:fer")
    trained = store.create_run(kind="train", config={}, seed=0, space="darts", task="fer", data="synth:fer")
    trial = store.create_run(kind="train", config={}, seed=0, space="darts", task="fer", data="synth:fer")
    weights = path.parent / "model.safetensors"
    weights.write_bytes(b"weights")
    store.add_checkpoint(trained, weights, kind="weights")
    for run in (search, trained, trial):
        store.set_state(run, "running")
        store.set_state(run, "completed")
    assert trained == 2


def test_the_empty_state_gives_commands_that_work_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _open(monkeypatch, tmp_path / "none.db", None)
    assert any("No retrieval index" in i.value for i in at.info)
    text = "\n".join(m.value for m in at.markdown)
    assert "automl search" in text and "automl train 1" in text
    assert "automl export 2 --format torchscript --out model.pt" in text
    assert "automl index build --model model.pt --data synth:fer --out faces.idx" in text
    assert "RUN_ID" not in text

    db = tmp_path / "store" / "automl.db"
    db.parent.mkdir()
    _store_with_runs(db)
    at = _open(monkeypatch, db, None)
    text = "\n".join(m.value for m in at.markdown)
    assert "automl export 2 --format torchscript" in text  # the run with weights, not the trial (3)
    assert "automl train 1" not in text
    assert f"--out model.pt --db sqlite:///{db}" in text  # the commands act on the store shown here


def test_the_page_shows_the_indexed_face_pixel_for_pixel(
    synth_indexes: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from PIL import Image
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    from automl.data import load_data

    new, _ = synth_indexes
    at = _open(monkeypatch, tmp_path / "none.db", str(new))
    shown: list[bytes] = []
    original = MemoryMediaFileStorage.load_and_get_id

    def spy(self, path_or_data, mimetype, kind, filename=None):  # noqa: ANN001, ANN202
        shown.append(path_or_data)
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", spy)
    at.number_input(key="sample_pos").set_value(5).run()
    assert not at.exception and _image_captions(at)[0].startswith("item #5")
    index = rd.load_index(new)
    row = int(index.sources[5].rsplit(":", 1)[1])
    face = load_data("synth:fer", image_size=16, channels=1, n=80, seed=1).test_x[row, 0].numpy()
    decoded = [np.asarray(Image.open(io.BytesIO(b))) for b in shown if isinstance(b, bytes)]
    faces = [a for a in decoded if a.shape == (16, 16)]  # not the app's logo
    assert len(faces) == 11 and np.array_equal(faces[0], face)  # the query, then its results
    assert not np.array_equal(faces[1], face)


def test_an_upload_without_a_face_waits_for_the_user(seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    cv2 = pytest.importorskip("cv2")
    monkeypatch.setenv("AUTOML_DB", seeded.url)
    monkeypatch.setenv("AUTOML_INDEXES", str(seeded.index_dirs[0]))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("views/retrieval.py").run()
    at.radio(key="query_kind").set_value("Upload a face image").run()
    blank = cv2.imencode(".png", np.full((120, 120, 3), 90, np.uint8))[1].tobytes()
    at.file_uploader(key="upload").set_value(("blank.png", blank, "image/png")).run()
    assert not at.exception
    assert any("No face was detected" in w.value for w in at.warning)
    assert not _image_captions(at)  # nothing searched
    at.checkbox(key="whole_image").check().run()
    assert not at.exception
    captions = _image_captions(at)
    assert captions[0] == "blank.png" and len(captions) == 11
    assert any("whole image was searched" in c.value for c in at.caption)


def test_an_upload_on_a_synthetic_index_shows_the_faces_it_found(
    synth_indexes: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The upload path renders its synthetic results too (no face rendered before them)."""
    cv2 = pytest.importorskip("cv2")
    new, _ = synth_indexes
    rd._rendered_split.cache_clear()
    at = _open(monkeypatch, tmp_path / "none.db", str(new))
    at.radio(key="query_kind").set_value("Upload a face image").run()
    at.toggle(key="detect").set_value(False).run()
    grey = cv2.imencode(".png", np.full((40, 40, 3), 120, np.uint8))[1].tobytes()
    at.file_uploader(key="upload").set_value(("grey.png", grey, "image/png")).run()
    assert not at.exception, [e.value for e in at.exception]
    captions = _image_captions(at)
    assert captions[0] == "grey.png" and len(captions) == 11
    assert all(" · d=" in c for c in captions[1:])
    assert not any("rebuild" in t or "not found" in t or "None" in t for t in _texts(at))
