"""The streaming side and ``automl index``: a tiny exported TorchScript model, drawn faces,
Haar detection, labels CSVs, build / add / query / stats, and failures that leave the index as it was."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from hashing import HashingError, ModelFormatError
from hashing.index import HashIndex
from hashing.stream import embed_images, load_model, read_labels_csv
from tests.face_media import draw_face
from tests.tiny_embedder import CLASSES, write_tiny_embedder


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    return write_tiny_embedder(tmp_path_factory.mktemp("model"))


def _crops(folder: Path, n_per_class: int = 6, seed: int = 0) -> list[tuple[str, int]]:
    """Aligned 48x48 crops whose pixels depend on the class (for --no-detect)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for c in range(len(CLASSES)):
        for i in range(n_per_class):
            img = np.clip(60 * c + 40 + rng.normal(0, 12, (48, 48)), 0, 255).astype(np.uint8)
            img[10 + 8 * c : 20 + 8 * c] = 255
            name = f"{CLASSES[c]}_{seed}_{i}.png"
            cv2.imwrite(str(folder / name), img)
            rows.append((name, c))
    return rows


def _write_csv(path: Path, rows: list[tuple[str, int]], by_name: bool = True) -> Path:
    path.write_text("file,label\n" + "".join(f"{f},{CLASSES[c] if by_name else c}\n" for f, c in rows))
    return path


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.iterdir())}


# -- model & stream -------------------------------------------------------------------------
def test_model_contract(model_file, tmp_path):
    m = load_model(model_file)
    assert (m.in_channels, m.image_size, m.embedding_dim, m.task) == (1, 32, 16, "fer")
    assert m.embed(np.random.default_rng(0).random((3, 1, 32, 32), dtype=np.float32)).shape == (3, 16)
    with pytest.raises(ModelFormatError, match="not found"):
        load_model(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ModelFormatError, match="sidecar"):
        load_model(bad)
    bad.with_name("bad.pt.json").write_text(json.dumps({"in_channels": 1}))
    with pytest.raises(ModelFormatError, match="needs in_channels"):
        load_model(bad)
    bad.with_name("bad.pt.json").write_text(model_file.with_name("model.pt.json").read_text())
    with pytest.raises(ModelFormatError, match="not a TorchScript"):
        load_model(bad)
    plain = tmp_path / "plain.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(torch.nn.Linear(2, 2)).save(str(plain))
    plain.with_name("plain.pt.json").write_text(model_file.with_name("model.pt.json").read_text())
    with pytest.raises(ModelFormatError, match="embed"):
        load_model(plain)


def test_detection_crops_faces_and_reports_the_rest(model_file, tmp_path):
    m = load_model(model_file)
    cv2.imwrite(str(tmp_path / "face.png"), draw_face(120))
    cv2.imwrite(str(tmp_path / "blank.png"), np.full((200, 200, 3), 128, np.uint8))
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8garbage")
    got = embed_images(m, [tmp_path / "face.png", tmp_path / "blank.png", tmp_path / "broken.jpg"])
    assert got.paths == [str(tmp_path / "face.png")] and got.embeddings.shape == (1, 16)
    assert dict(got.skipped) == {
        str(tmp_path / "blank.png"): "no face detected",
        str(tmp_path / "broken.jpg"): "unreadable image",
    }
    # Without detection the blank image is embedded as an (aligned) crop.
    assert embed_images(m, [tmp_path / "blank.png"], detect=False).embeddings.shape == (1, 16)


def test_labels_csv(tmp_path):
    rows = _crops(tmp_path / "img", 2)
    csv_path = _write_csv(tmp_path / "labels.csv", rows)
    paths = [str(tmp_path / "img" / f) for f, _ in rows]
    got = read_labels_csv(csv_path, paths)  # the CSV's own names (sorted), not the model's
    assert [got.names[i] for i in got.labels] == [CLASSES[c] for _, c in rows] and not got.multi_label
    (tmp_path / "au.csv").write_text("file,AU1,AU2\n" + "".join(f"{f},1,0\n" for f, _ in rows))
    au = read_labels_csv(tmp_path / "au.csv", paths)
    assert au.labels.shape == (6, 2) and au.names == ["AU1", "AU2"] and au.multi_label
    (tmp_path / "bad.csv").write_text("name,label\nx.png,1\n")
    with pytest.raises(HashingError, match="'file' column"):
        read_labels_csv(tmp_path / "bad.csv", paths)
    with pytest.raises(HashingError, match="no row for image"):
        read_labels_csv(csv_path, paths + [str(tmp_path / "other.png")])
    (tmp_path / "unk.csv").write_text("file,label\n" + "".join(f"{f},angry\n" for f, _ in rows))
    assert read_labels_csv(tmp_path / "unk.csv", paths).names == ["angry"]  # any name is a class


# -- CLI -----------------------------------------------------------------------------------
@pytest.fixture
def built_index(cli, model_file, tmp_path):
    rows = _crops(tmp_path / "faces", 6)
    csv_path = _write_csv(tmp_path / "labels.csv", rows)
    out = tmp_path / "ix"
    r = cli(
        "index",
        "build",
        "--model",
        model_file,
        "--images",
        tmp_path / "faces",
        "--labels",
        csv_path,
        "--bits",
        "16",
        "--batch",
        "6",
        "--out",
        out,
        "--no-detect",
    )
    assert r.code == 0, r.err
    return out, rows


def test_cli_build_add_query_stats(cli, built_index, model_file, tmp_path):
    out, rows = built_index
    r = cli("index", "stats", out, "--json")
    st = json.loads(r.out)
    assert (
        st["items"] == 18
        and st["labelled_items"] == 18
        and st["hash_updates"] == 3
        and st["stale_updates"] == 0
    )

    more = _crops(tmp_path / "more", 3, seed=1)
    r = cli(
        "index",
        "add",
        out,
        "--images",
        tmp_path / "more",
        "--labels",
        _write_csv(tmp_path / "m.csv", more, False),
        "--no-detect",
    )
    assert r.code == 0, r.err
    assert json.loads(cli("index", "stats", out, "--json").out)["hash_updates"] == 4

    r = cli("index", "add", out, "--images", tmp_path / "more", "--no-detect")  # unlabelled: encoded only
    st = json.loads(cli("index", "stats", out, "--json").out)
    assert r.code == 0 and st["items"] == 36 and st["hash_updates"] == 4 and st["labelled_items"] == 27

    query = tmp_path / "faces" / rows[0][0]
    r = cli("index", "query", out, query, "-k", "5", "--json", "--no-detect")
    res = json.loads(r.out)["results"]
    assert len(res) == 5 and res[0]["distance"] == 0 and res[0]["source"].endswith(rows[0][0])
    assert res[0]["label"] == "happy"
    assert [x["distance"] for x in res] == sorted(x["distance"] for x in res)
    r = cli("index", "query", out, query, "--radius", "0", "--json", "--no-detect")
    assert all(x["distance"] == 0 for x in json.loads(r.out)["results"])
    r = cli("index", "query", out, query, "-k", "3", "--no-detect")
    assert r.code == 0 and "neighbour" in r.out


def test_cli_reports_photos_without_faces(cli, built_index, tmp_path):
    out, _ = built_index
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "person.png"), draw_face(mouth=3))
    cv2.imwrite(str(photos / "wall.png"), np.full((240, 240, 3), 90, np.uint8))
    r = cli("index", "add", out, "--images", photos)
    assert r.code == 0, r.err
    assert "wall.png: no face detected" in r.err and "added 1 item" in r.out
    r = cli("index", "query", out, photos / "wall.png")
    assert r.code == 2 and "no face detected" in r.err and "--no-detect" in r.err
    assert "Traceback" not in r.err


def test_cli_failed_add_leaves_index_byte_identical(cli, built_index, tmp_path, monkeypatch):
    out, _ = built_index
    before = _snapshot(out)
    more = _crops(tmp_path / "more", 2, seed=2)
    # 1) bad input discovered after embedding (a label row is missing).
    _write_csv(tmp_path / "partial.csv", more[:-1])
    r = cli(
        "index",
        "add",
        out,
        "--images",
        tmp_path / "more",
        "--labels",
        tmp_path / "partial.csv",
        "--no-detect",
    )
    assert r.code == 2 and "no row for image" in r.err
    assert _snapshot(out) == before
    # 2) an injected I/O failure in the middle of saving the new generation.
    real_save = np.save
    calls = {"n": 0}

    def flaky_save(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("injected: disk full")
        return real_save(*args, **kwargs)

    monkeypatch.setattr(np, "save", flaky_save)
    _write_csv(tmp_path / "full.csv", more)
    with pytest.raises(OSError, match="injected"):
        cli(
            "index",
            "add",
            out,
            "--images",
            tmp_path / "more",
            "--labels",
            tmp_path / "full.csv",
            "--no-detect",
        )
    monkeypatch.setattr(np, "save", real_save)
    assert calls["n"] == 3
    assert _snapshot(out) == before
    assert json.loads(cli("index", "stats", out, "--json").out)["items"] == 18


def test_cli_bad_input_is_one_line(cli, built_index, model_file, tmp_path):
    out, _ = built_index
    codes = next(out.glob("codes.g*.npy"))
    codes.write_bytes(codes.read_bytes()[:-3])
    r = cli("index", "stats", out)
    assert r.code == 2 and "truncated" in r.err and len(r.err.strip().splitlines()) == 1
    r = cli(
        "index", "build", "--model", model_file, "--images", tmp_path / "nowhere", "--out", tmp_path / "x2"
    )
    assert r.code == 2 and "neither an image file nor a folder" in r.err
    r = cli("index", "build", "--model", model_file, "--images", tmp_path, "--out", out)
    assert r.code == 2 and "already exists" in r.err
    r = cli(
        "index", "build", "--model", tmp_path / "missing.pt", "--data", "synth:fer", "--out", tmp_path / "x3"
    )
    assert r.code == 2 and "not found" in r.err


@pytest.mark.slow
def test_cli_build_from_data_spec(cli, model_file, tmp_path):
    out = tmp_path / "ix"
    r = cli(
        "index",
        "build",
        "--model",
        model_file,
        "--data",
        "synth:fer",
        "--n",
        "300",
        "--bits",
        "32",
        "--batch",
        "100",
        "--out",
        out,
    )
    assert r.code == 0, r.err
    st = json.loads(cli("index", "stats", out, "--json").out)
    assert st["items"] > 0 and st["labelled_items"] == st["items"] and st["hash_updates"] >= 1


def test_cli_multilabel_csv_names_its_labels(cli, model_file, tmp_path):
    rows = _crops(tmp_path / "faces", 3)
    au = tmp_path / "au.csv"
    au.write_text("file,AU1,AU12\n" + "".join(f"{f},{c % 2},1\n" for f, c in rows))
    out = tmp_path / "ix"
    r = cli("index", "build", "--model", model_file, "--images", tmp_path / "faces", "--labels", au,
            "--bits", "16", "--batch", "3", "--out", out, "--no-detect")  # fmt: skip
    assert r.code == 0, r.err
    r = cli("index", "query", out, tmp_path / "faces" / rows[0][0], "-k", "1", "--json", "--no-detect")
    assert json.loads(r.out)["results"][0]["label"] == ["AU12"]
    st = json.loads(cli("index", "stats", out, "--json").out)
    assert st["label_kind"] == "multi-label" and st["extra"]["label_names"] == ["AU1", "AU12"]


# -- bounds: exit 2 with one line, nothing changed ------------------------------------------------
def _one_line_error(r) -> str:
    assert r.code == 2 and "Traceback" not in r.err, (r.code, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    return lines[0]


@pytest.mark.parametrize("batch", ["-1", "0"])
def test_cli_add_refuses_a_batch_below_one(cli, built_index, tmp_path, batch):
    out, _ = built_index
    before = _snapshot(out)
    more = _crops(tmp_path / "more", 2, seed=3)
    csv_path = _write_csv(tmp_path / "m.csv", more)
    r = cli("index", "add", out, "--images", tmp_path / "more", "--labels", csv_path, "--no-detect",
            "--batch", batch)  # fmt: skip
    line = _one_line_error(r)
    assert "--batch must be at least 1" in line and "added" not in r.out
    assert _snapshot(out) == before  # no new generation


def test_cli_build_refuses_bad_options_before_any_work(cli, model_file, tmp_path):
    _crops(tmp_path / "faces", 1)
    base = ("index", "build", "--model", model_file, "--images", tmp_path / "faces", "--no-detect")
    for extra, expect in (
        (("--batch", "0"), "--batch must be at least 1"),
        (("--bits", "12"), "--bits must be a multiple of 8"),
        (("--hasher", "nope"), "unknown --hasher 'nope': use one of BSODH"),
        (("--eval-queries", "-1"), "--eval-queries must be 0"),
        (("--lock-timeout", "-5"), "--lock-timeout must be 0"),
        (("--hasher", "OKH"), "OKH cannot back an index"),
    ):
        r = cli(*base, "--out", tmp_path / "x", *extra)
        assert expect in _one_line_error(r)
        assert not (tmp_path / "x").exists()


def test_cli_build_with_a_baseline_hasher(cli, model_file, tmp_path):
    rows = _crops(tmp_path / "faces", 4)
    out = tmp_path / "ix"
    r = cli("index", "build", "--model", model_file, "--images", tmp_path / "faces", "--labels",
            _write_csv(tmp_path / "l.csv", rows), "--no-detect", "--hasher", "osh", "--bits", "16",
            "--batch", "4", "--out", out, "--no-record")  # fmt: skip
    assert r.code == 0, r.err
    st = json.loads(cli("index", "stats", out, "--json").out)
    assert st["hasher"] == "OSH" and st["items"] == 12 and st["hash_updates"] == 3


def test_cli_query_k_is_clamped_and_radius_excludes_k(cli, built_index, tmp_path):
    out, rows = built_index
    query = tmp_path / "faces" / rows[0][0]
    r = cli("index", "query", out, query, "-k", "1000000000", "--json", "--no-detect")
    assert r.code == 0, r.err
    got = json.loads(r.out)
    assert got["clamped"] is True and got["k"] == 1_000_000_000 and len(got["results"]) == 18
    r = cli("index", "query", out, query, "-k", "1000000000", "--no-detect")
    assert r.code == 0 and "more than the index holds" in r.out
    line = _one_line_error(cli("index", "query", out, query, "-k", "3", "--radius", "2", "--no-detect"))
    assert "-k" in line and "--radius" in line and "not both" in line
    assert "-k must be at least 1" in _one_line_error(cli("index", "query", out, query, "-k", "0"))
    assert "--radius must be 0 or more" in _one_line_error(
        cli("index", "query", out, query, "--radius", "-1")
    )


def test_cli_bench_index_k_zero_is_one_line(cli):
    assert "--k must be at least 1" in _one_line_error(cli("bench", "index", "--n", "100", "--k", "0"))
    assert "--k must be smaller than n" in _one_line_error(cli("bench", "index", "--n", "100", "--k", "100"))
    assert "--bits" in _one_line_error(cli("bench", "index", "--n", "100", "--bits", "12", "--k", "5"))


def test_cli_add_to_a_locked_index_says_who_holds_it(cli, built_index, tmp_path):
    import threading

    from hashing.index import HashIndex

    out, _ = built_index
    _crops(tmp_path / "more", 1, seed=4)
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with HashIndex.locked(out, purpose="a long add"):
            held.set()
            release.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    held.wait(10)
    try:
        r = cli("index", "add", out, "--images", tmp_path / "more", "--no-detect", "--lock-timeout", "0")
    finally:
        release.set()
        t.join()
    line = _one_line_error(r)
    assert "is locked by process" in line and "a long add" in line and "--lock-timeout" in line
    assert json.loads(cli("index", "stats", out, "--json").out)["items"] == 18


def test_cli_build_paper_mode_with_fixed_etas(cli, model_file, tmp_path):
    rows = _crops(tmp_path / "faces", 4)
    labels = _write_csv(tmp_path / "l.csv", rows)
    out = tmp_path / "ix"
    r = cli("index", "build", "--model", model_file, "--images", tmp_path / "faces", "--labels", labels,
            "--no-detect", "--bits", "16", "--batch", "4", "--out", out, "--no-record", "--mode", "paper",
            "--eta-s", "1.0", "--eta-d", "0.0", "--no-shuffle")  # fmt: skip
    assert r.code == 0, r.err
    st = json.loads(cli("index", "stats", out, "--json").out)
    assert st["hasher_mode"] == "paper" and st["refused_updates"] == 0
    hasher = HashIndex.load(out).hasher
    assert (hasher.eta_s, hasher.eta_d, hasher.balance) == (1.0, 0.0, "fixed")
    # BSODH options with another hasher, and a bad mode: one line, exit 2, nothing written
    bad = (
        (["--hasher", "LSH", "--eta-d", "0.1"], "--eta-d is a BSODH option"),
        (["--mode", "x"], "--mode"),
        (["--eta-d", "inf"], "--eta-d"),
        (["--eta-d", "nan"], "finite"),
        (["--mode", "paper", "--replay", "10"], "robust mode only"),
    )
    for extra, needle in bad:
        r = cli("index", "build", "--model", model_file, "--images", tmp_path / "faces", "--labels", labels,
                "--no-detect", "--bits", "16", "--out", tmp_path / "bad", "--no-record", *extra)  # fmt: skip
        assert r.code == 2 and needle in r.err and len(r.err.strip().splitlines()) == 1, r.err
        assert not (tmp_path / "bad").exists()


def test_cli_bench_streams_small(cli, tmp_path):
    out = tmp_path / "streams.json"
    r = cli("bench", "streams", "--identities", "40", "--no-mnist", "--no-au", "--bits", "16",
            "--methods", "BSODH,BSODH (paper),LSH", "--orders", "shuffled,one-class adds",
            "--out", out)  # fmt: skip
    assert r.code == 0, r.err
    res = json.loads(out.read_text())
    got = {(x["order"], x["method"]): x for x in res["results"]}
    assert len(got) == 6 and got[("shuffled", "BSODH")]["mAP"] > got[("shuffled", "BSODH (paper)")]["mAP"]
    assert "ids-40_bsodh_one_class_at_least_shuffled_minus_0.02" in res["targets"]
    assert "one-class adds" in r.out
    r = cli("bench", "streams", "--identities", "40", "--methods", "bsodh", "--out", tmp_path / "x.json")
    assert r.code == 2 and "unknown method" in r.err and "BSODH (paper)" in r.err


def test_labels_csv_hints_at_an_extra_column_and_a_wrong_separator(tmp_path):
    (tmp_path / "x.csv").write_text("file,label,notes\na.png,zoe,hi\n")
    with pytest.raises(HashingError, match="keep only 'file' and 'label': drop 'notes'"):
        read_labels_csv(tmp_path / "x.csv", ["a.png"])
    (tmp_path / "y.csv").write_text("file;label\na.png;zoe\n")
    with pytest.raises(HashingError, match="separated by ';'"):
        read_labels_csv(tmp_path / "y.csv", ["a.png"])
