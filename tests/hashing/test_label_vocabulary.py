"""An index keeps its own label vocabulary (``extra["class_names"]``, ``extra["label_names"]``),
made from the labels CSV at build and grown by ``add``; the model's class names play no part.
Real CSV files, the tiny exported model of the retrieval tests and real saved indexes."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from automl import retrieval
from hashing import HashingError
from hashing.index import HashIndex
from hashing.stream import align_label_columns, merge_vocabulary, read_labels_csv, vocabulary_order
from tests.tiny_embedder import CLASSES, write_tiny_embedder


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_embedder(tmp_path_factory.mktemp("model"))


def _photos(folder: Path, labels: list[str], seed: int = 0, header: str = "label") -> Path:
    """Aligned crops, one per label (pixels depend on the label), and their labels CSV."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = [f"file,{header}"]
    kinds = sorted(set(labels))
    for i, lab in enumerate(labels):
        c = kinds.index(lab)
        img = np.clip(50 * c + 40 + rng.normal(0, 12, (48, 48)), 0, 255).astype(np.uint8)
        img[8 + 6 * c : 16 + 6 * c] = 255
        name = f"img_{seed}_{i:02d}.png"
        cv2.imwrite(str(folder / name), img)
        rows.append(f"{name},{lab}")
    csv_path = folder.with_suffix(".csv")
    csv_path.write_text("\n".join(rows) + "\n")
    return csv_path


def _build(model_file, folder, csv_path, out, **kw):
    faces = retrieval.embed_folder(model_file, folder, csv_path, detect=False)
    return faces, retrieval.build_index(faces, out, bits=16, batch_size=kw.pop("batch_size", 6), **kw)


def test_face_nonface_labels_build_and_query_by_name(model_file, tmp_path):
    csv_path = _photos(tmp_path / "p", ["nonface", "face"] * 6)
    faces, built = _build(model_file, tmp_path / "p", csv_path, tmp_path / "ix")
    assert faces.class_names == ["face", "nonface"]  # the CSV's own names, sorted
    assert built.index.extra["class_names"] == ["face", "nonface"]
    assert built.index.labels.tolist() == [1, 0] * 6
    index, answer = retrieval.query_image(tmp_path / "ix", tmp_path / "p" / "img_0_00.png", k=3, detect=False)
    assert {r["label"] for r in answer.rows} <= {"face", "nonface"}
    assert index.label_of(0) == "nonface" and index.label_of(1) == "face"


def test_add_with_a_new_name_grows_the_vocabulary_and_keeps_old_ids(model_file, tmp_path):
    csv_path = _photos(tmp_path / "p", ["alice", "bob", "alice", "bob", "alice", "bob"])
    _build(model_file, tmp_path / "p", csv_path, tmp_path / "ix")
    before = HashIndex.load(tmp_path / "ix")
    old = before.labels.copy()
    more_csv = _photos(tmp_path / "more", ["carol", "bob", "carol", "dave"], seed=1)
    more = retrieval.embed_folder(model_file, tmp_path / "more", more_csv, detect=False)
    assert more.class_names == ["bob", "carol", "dave"]  # the add's own names, before mapping
    grown = retrieval.add_to_index(tmp_path / "ix", more, batch_size=10)
    assert grown.new_classes == ["carol", "dave"] and "new class(es): carol, dave" in grown.summary("add")
    index = HashIndex.load(tmp_path / "ix")
    assert index.extra["class_names"] == ["alice", "bob", "carol", "dave"]  # appended, sorted
    assert index.labels[: len(old)].tolist() == old.tolist() == [0, 1, 0, 1, 0, 1]
    assert index.labels[len(old) :].tolist() == [2, 1, 2, 3]
    assert [index.label_of(p) for p in range(len(old), len(index))] == ["carol", "bob", "carol", "dave"]
    assert grown.labelled and grown.added == 4


def test_emotion_names_are_not_remapped_to_the_models_classes(model_file, tmp_path):
    # The model's classes are happy, sad, surprise (ids 0, 1, 2); the CSV has its own vocabulary.
    assert CLASSES == ["happy", "sad", "surprise"]
    csv_path = _photos(tmp_path / "p", ["surprise", "happy", "surprise", "happy", "angry", "angry"])
    _, built = _build(model_file, tmp_path / "p", csv_path, tmp_path / "ix")
    assert built.index.extra["class_names"] == ["angry", "happy", "surprise"]  # angry: no model class
    assert [built.index.label_of(p) for p in range(6)] == [
        "surprise",
        "happy",
        "surprise",
        "happy",
        "angry",
        "angry",
    ]
    assert built.index.labels.tolist() == [2, 1, 2, 1, 0, 0]
    # Numbers are names too: "0" is the class called "0", not the model's class 0 ("happy").
    num_csv = _photos(tmp_path / "n", ["10", "2", "0", "2", "10", "0"])
    _, num = _build(model_file, tmp_path / "n", num_csv, tmp_path / "ixn")
    assert num.index.extra["class_names"] == ["0", "2", "10"]  # whole numbers sort by value
    assert [num.index.label_of(p) for p in range(6)] == ["10", "2", "0", "2", "10", "0"]


def test_a_data_spec_vocabulary_is_shared_by_csv_adds(model_file, tmp_path):
    faces = retrieval.embed_dataset(model_file, "synth:fer", split="train", n=40)
    built = retrieval.build_index(faces, tmp_path / "ix", bits=16, batch_size=20)
    fer = built.index.extra["class_names"]
    assert fer == faces.class_names and "Happy" in fer and "Sad" in fer
    csv_path = _photos(tmp_path / "p", ["Sad", "Happy", "Sad", "Bored"])
    retrieval.add_to_index(
        tmp_path / "ix", retrieval.embed_folder(model_file, tmp_path / "p", csv_path, detect=False)
    )
    index = HashIndex.load(tmp_path / "ix")
    assert index.extra["class_names"] == [*fer, "Bored"]
    assert index.labels[-4:].tolist() == [fer.index("Sad"), fer.index("Happy"), fer.index("Sad"), len(fer)]


def test_an_unlabelled_build_starts_no_vocabulary_from_the_model(model_file, tmp_path):
    _photos(tmp_path / "p", ["x"] * 4)
    faces = retrieval.embed_folder(model_file, tmp_path / "p", detect=False)
    built = retrieval.build_index(faces, tmp_path / "ix", bits=16)
    assert "class_names" not in built.index.extra  # the model's happy/sad/surprise are not labels here
    csv_path = _photos(tmp_path / "q", ["face", "face", "nonface"], seed=1)
    retrieval.add_to_index(
        tmp_path / "ix", retrieval.embed_folder(model_file, tmp_path / "q", csv_path, detect=False)
    )
    index = HashIndex.load(tmp_path / "ix")
    assert index.extra["class_names"] == ["face", "nonface"] and index.labels.tolist() == [-1] * 4 + [0, 0, 1]


def test_multilabel_columns_are_matched_by_name(model_file, tmp_path):
    folder = tmp_path / "au"
    _photos(folder, ["a"] * 6)
    names = sorted(p.name for p in folder.glob("*.png"))
    (tmp_path / "au.csv").write_text(
        "file,AU1,AU12\n" + "".join(f"{n},{i % 2},1\n" for i, n in enumerate(names))
    )
    _build(model_file, folder, tmp_path / "au.csv", tmp_path / "ix")
    more = tmp_path / "more"
    _photos(more, ["b"] * 3, seed=1)
    more_names = sorted(p.name for p in more.glob("*.png"))
    # Same columns, other order: mapped by name.
    (tmp_path / "swap.csv").write_text("file,AU12,AU1\n" + "".join(f"{n},0,1\n" for n in more_names))
    retrieval.add_to_index(
        tmp_path / "ix", retrieval.embed_folder(model_file, more, tmp_path / "swap.csv", detect=False)
    )
    index = HashIndex.load(tmp_path / "ix")
    assert index.extra["label_names"] == ["AU1", "AU12"] and index.labels[-3:].tolist() == [[1, 0]] * 3
    assert index.label_of(len(index) - 1) == ["AU1"]
    # A missing (or unknown) column: refused in one line, the index unchanged.
    (tmp_path / "miss.csv").write_text("file,AU1,AU4\n" + "".join(f"{n},1,0\n" for n in more_names))
    faces = retrieval.embed_folder(model_file, more, tmp_path / "miss.csv", detect=False)
    with pytest.raises(HashingError, match="missing AU12; not in the index: AU4") as err:
        retrieval.add_to_index(tmp_path / "ix", faces)
    assert "\n" not in str(err.value)
    assert HashIndex.load(tmp_path / "ix").generation == index.generation
    # A single-label CSV cannot label a multi-label index.
    single = _photos(tmp_path / "s", ["face"], seed=2)
    with pytest.raises(HashingError, match="multi-label rows"):
        retrieval.add_to_index(
            tmp_path / "ix", retrieval.embed_folder(model_file, tmp_path / "s", single, detect=False)
        )


def test_bad_rows_are_one_clear_line(tmp_path):
    imgs = [str(tmp_path / f"{n}.png") for n in ("a", "b", "c")]
    cases = {
        "file,label\na.png,face\nb.png,face\n": "has no row for image .*c.png",
        "file,label\na.png,face\nb.png,\nc.png,face\n": "line 3: empty 'label' for b.png",
        "file,label\na.png,face\n,face\nb.png,x\nc.png,x\n": "line 3: empty 'file' cell",
        "file,label\na.png,face\nb.png,x\na.png,nonface\nc.png,x\n": "line 4: a.png is listed again",
        "file,AU1,AU2\na.png,1,0\nb.png,1,\nc.png,0,0\n": "line 3: empty 'AU2' for b.png",
        "file,AU1,AU2\na.png,1,0\nb.png,1,2\nc.png,0,0\n": "'AU2' is '2' for b.png, but multi-label",
        "file,identity\na.png,alice\nb.png,bob\nc.png,x\n": "must be called label or class",
        "file,AU1,AU1\na.png,1,0\nb.png,1,0\nc.png,0,0\n": "its own name",
    }
    for i, (text, message) in enumerate(cases.items()):
        p = tmp_path / f"bad{i}.csv"
        p.write_text(text)
        with pytest.raises(HashingError, match=message) as err:
            read_labels_csv(p, imgs)
        assert "\n" not in str(err.value), text


def test_vocabulary_rules():
    assert vocabulary_order(["b", "10", "a", "2", "-1", "B"]) == ["-1", "2", "10", "B", "a", "b"]
    vocab, ids = merge_vocabulary(["face", "nonface"], ["nonface", "unsure", "face", "maybe"])
    assert vocab == ["face", "nonface", "maybe", "unsure"] and ids.tolist() == [1, 3, 0, 2]
    rows = np.array([[1, 0, 1], [0, 1, 0]])
    assert align_label_columns(["AU1", "AU2", "AU4"], ["AU4", "AU1", "AU2"], rows).tolist() == [
        [0, 1, 1],
        [1, 0, 0],
    ]


def test_cli_build_with_names_and_a_bad_csv(cli, model_file, tmp_path):
    csv_path = _photos(tmp_path / "p", ["face", "nonface"] * 4)
    out = tmp_path / "ix"
    r = cli("index", "build", "--model", model_file, "--images", tmp_path / "p", "--labels", csv_path,
            "--bits", "16", "--batch", "4", "--out", out, "--no-detect", "--no-record")  # fmt: skip
    assert r.code == 0, r.err
    r = cli("index", "query", out, tmp_path / "p" / "img_0_01.png", "-k", "3", "--json", "--no-detect")
    assert r.code == 0 and {x["label"] for x in json.loads(r.out)["results"]} <= {"face", "nonface"}
    assert json.loads(cli("index", "stats", out, "--json").out)["extra"]["class_names"] == ["face", "nonface"]
    more_csv = _photos(tmp_path / "m", ["unsure", "face"], seed=1)
    r = cli(
        "index", "add", out, "--images", tmp_path / "m", "--labels", more_csv, "--no-detect", "--no-record"
    )
    assert r.code == 0, r.err
    assert json.loads(cli("index", "stats", out, "--json").out)["extra"]["class_names"] == [
        "face",
        "nonface",
        "unsure",
    ]
    bad = tmp_path / "bad.csv"
    bad.write_text(csv_path.read_text().replace(",nonface\n", ",\n", 1))
    r = cli("index", "build", "--model", model_file, "--images", tmp_path / "p", "--labels", bad,
            "--bits", "16", "--out", tmp_path / "ix2", "--no-detect", "--no-record")  # fmt: skip
    assert r.code == 2 and "Traceback" not in r.err, r.err
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and "empty 'label'" in lines[0]
    assert not (tmp_path / "ix2" / "manifest.json").exists()
