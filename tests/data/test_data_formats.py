"""Every ``automl data synth --format X`` output is read back by the matching reader with the
right counts, labels and splits; CV folds never share a subject; caches are reused."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from automl.data import load_data
from automl.data.folds import BP4D_FOLDS, BP4D_SUBJECTS, DISFA_FOLDS, DISFA_SUBJECTS
from automl.data.readers.fer2013 import ferplus_targets
from automl.data.synthface.facs import FER7
from automl.data.synthface.generate import synth_expressions
from automl.data.synthface.writer import write_format

SEED = 5


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    root = tmp_path_factory.mktemp("formats")
    sizes = {
        "fer2013": 200,
        "ferplus": 200,
        "rafdb": 80,
        "affectnet": 80,
        "bp4d": 96,
        "disfa": 96,
        "folder": 60,
    }
    return {fmt: (root / fmt, write_format(fmt, root / fmt, n=n, seed=SEED)) for fmt, n in sizes.items()}


def _quiet_load(spec: str, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d = load_data(spec, **kw)
    return d, [str(w.message) for w in caught]


def test_fer2013_round_trip_is_pixel_exact(written):
    path, info = written["fer2013"]
    d = load_data(f"fer2013:{path / 'fer2013.csv'}")
    s = synth_expressions(200, classes=7, size=48, channels=1, seed=SEED)
    with open(path / "fer2013.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["emotion", "pixels", "Usage"] and len(rows) == 201
    usage = np.array([r[2] for r in rows[1:]])
    assert len(d.train_x) == (usage == "Training").sum() and len(d.test_x) == (usage == "PrivateTest").sum()
    assert len(d.meta["val_y"]) == (usage == "PublicTest").sum()
    assert torch.equal(d.train_x, torch.from_numpy(s.images[usage == "Training"]))
    assert torch.equal(d.test_y, torch.from_numpy(s.expression[usage == "PrivateTest"]))
    assert d.class_names == list(FER7)
    # resized / RGB on request
    d2 = load_data(f"fer2013:{path}", image_size=32, channels=3)
    assert d2.train_x.shape[1:] == (3, 32, 32)


@pytest.mark.parametrize("mode", ["majority", "probability"])
def test_ferplus_modes(written, mode):
    path, info = written["ferplus"]
    d, warns = _quiet_load(f"ferplus:{path}?mode={mode}")
    with open(path / "fer2013new.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0][:2] == ["Usage", "Image name"] and len(rows) == 201
    votes = np.array([[int(v) for v in r[2:]] for r in rows[1:]])
    named = np.array([bool(r[1]) for r in rows[1:]])
    usage = np.array([r[0] for r in rows[1:]])
    y, keep = ferplus_targets(votes, mode)
    keep &= named
    assert len(d.train_x) == (keep & (usage == "Training")).sum()
    assert len(d.test_x) == (keep & (usage == "PrivateTest")).sum()
    assert d.num_outputs == 8 and d.class_names[-1] == "Contempt"
    assert any("dropped" in w for w in warns) == bool((~keep).any())
    if mode == "probability":
        assert d.train_y.dtype == torch.float32 and torch.allclose(
            d.train_y.sum(1), torch.ones(len(d.train_y))
        )
    else:
        assert d.train_y.dtype == torch.int64
        # the crowd mostly agrees with the rendered expression
        s = synth_expressions(200, classes=8, size=48, seed=SEED)
        to_ferplus = {
            "Angry": "Anger",
            "Disgust": "Disgust",
            "Fear": "Fear",
            "Happy": "Happiness",
            "Sad": "Sadness",
            "Surprise": "Surprise",
            "Neutral": "Neutral",
            "Contempt": "Contempt",
        }
        truth = [
            d.class_names.index(to_ferplus[s.class_names[c]])
            for c in s.expression[keep & (usage == "Training")]
        ]
        assert (np.array(truth) == d.train_y.numpy()).mean() > 0.8


def test_rafdb_round_trip(written):
    path, info = written["rafdb"]
    d = load_data(f"rafdb:{path}")
    assert (len(d.train_x), len(d.test_x)) == (info["train"], info["test"])
    assert d.train_x.shape[1:] == (3, 100, 100)
    lines = (path / "EmoLabel" / "list_patition_label.txt").read_text().splitlines()
    assert (
        lines[0].startswith("train_00001.jpg ") and (path / "Image/aligned/train_00001_aligned.jpg").is_file()
    )
    s = synth_expressions(80, classes=7, size=100, channels=3, seed=SEED)
    test = s.subjects % 5 == 0
    raf = {
        "Angry": "Anger",
        "Disgust": "Disgust",
        "Fear": "Fear",
        "Happy": "Happiness",
        "Sad": "Sadness",
        "Surprise": "Surprise",
        "Neutral": "Neutral",
    }
    want = [d.class_names.index(raf[FER7[c]]) for c in s.expression[~test]]
    assert d.train_y.tolist() == want
    # JPEG is lossy but close
    diff = (d.train_x[0].float() - torch.from_numpy(s.images[~test][0]).float()).abs().mean()
    assert diff < 8


def test_affectnet_7_and_8_classes(written):
    path, info = written["affectnet"]
    d8 = load_data(f"affectnet:{path}?classes=8")
    assert (len(d8.train_x), len(d8.test_x)) == (info["training"], info["validation"])
    d7 = load_data(f"affectnet:{path}")
    assert d7.num_outputs == 7 and d8.num_outputs == 8
    n_contempt = int((d8.train_y == 7).sum())
    assert len(d7.train_x) == len(d8.train_x) - n_contempt
    assert d7.train_x.shape[1:] == (3, 112, 112)
    with open(path / "training.csv", newline="") as fh:
        header = next(csv.reader(fh))
    assert header[0] == "subDirectory_filePath" and header[-3:] == ["expression", "valence", "arousal"]


@pytest.mark.parametrize("kind", ["bp4d", "disfa"])
def test_au_sets_three_subject_exclusive_folds(written, kind):
    path, info = written[kind]
    folds = BP4D_FOLDS if kind == "bp4d" else DISFA_FOLDS
    all_subjects = BP4D_SUBJECTS if kind == "bp4d" else DISFA_SUBJECTS
    tested: list[set] = []
    total = None
    for fold in (1, 2, 3):
        d = load_data(f"{kind}:{path}", fold=fold, image_size=48, channels=1)
        tr, te = set(d.train_subjects.tolist()), set(d.test_subjects.tolist())
        assert tr and te and not tr & te
        assert te <= set(folds[fold - 1])  # the published fold's subjects
        assert tr <= set(all_subjects)
        assert len(d.train_x) == len(d.train_y) == len(d.train_subjects)
        n = len(d.train_x) + len(d.test_x)
        total = n if total is None else total
        assert n == total
        tested.append(te)
        assert d.train_x.shape[1:] == (1, 48, 48) and d.train_y.shape[1] == (12 if kind == "bp4d" else 8)
    assert not (tested[0] & tested[1]) and not (tested[1] & tested[2]) and not (tested[0] & tested[2])
    if kind == "disfa":
        assert total == info["frames"]
        # intensity >= 2 is "present": check one subject's AU12 file against the labels
        subj = sorted((path / "ActionUnit_Labels").iterdir())[0].name
        lines = (path / "ActionUnit_Labels" / subj / f"{subj}_au12.txt").read_text().splitlines()
        pos = sum(int(line.split(",")[1]) >= 2 for line in lines)
        d = load_data(f"disfa:{path}", fold=1, image_size=32)
        y = torch.cat([d.train_y, d.test_y])[:, 5]
        s = np.concatenate([d.train_subjects, d.test_subjects])
        assert int(y[torch.from_numpy(s == subj)].sum()) == pos
    else:
        uncoded = 0
        for f in (path / "AUCoding" / "AU_OCC").glob("*.csv"):
            rows = list(csv.reader(open(f)))
            assert rows[0][0] == "0"
            uncoded += sum(r[1] == "9" for r in rows[1:])
        assert total == info["frames"] - uncoded


def test_folder_round_trip_and_cache_reuse(written):
    path, info = written["folder"]
    d1 = load_data(f"folder:{path}")
    assert (len(d1.train_x), len(d1.test_x)) == (info["train"], info["test"])
    assert d1.class_names == sorted(FER7)
    cache = Path(d1.meta["cache"])
    assert cache.is_file() and cache.parent.name == ".automl_cache"
    mtime = cache.stat().st_mtime_ns
    d2 = load_data(f"folder:{path}")
    assert cache.stat().st_mtime_ns == mtime  # reused, not rebuilt
    assert torch.equal(d1.train_x, d2.train_x) and torch.equal(d1.test_y, d2.test_y)
    assert isinstance(np.load(cache, mmap_mode="r"), np.memmap)
    d3 = load_data(f"folder:{path}", n=20, seed=1)
    assert len(d3.train_x) + len(d3.test_x) == 20


def test_cifar10_batches(tmp_path):
    import pickle

    rng = np.random.default_rng(0)
    for name, n in [(f"data_batch_{i}", 20) for i in range(1, 6)] + [("test_batch", 10)]:
        batch = {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"labels": rng.integers(0, 10, n).tolist(),
        }
        (tmp_path / name).write_bytes(pickle.dumps(batch))
    d = load_data(f"cifar10:{tmp_path}")
    assert (len(d.train_x), len(d.test_x)) == (100, 10) and d.train_x.shape[1:] == (3, 32, 32)
    d = load_data(f"cifar10:{tmp_path}", channels=1, image_size=16, n=22)
    assert d.train_x.shape[1:] == (1, 16, 16) and len(d.train_x) + len(d.test_x) == 22
