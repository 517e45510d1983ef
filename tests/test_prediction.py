"""automl.predict end to end through the Python API: real Haar detection on drawn faces, real
(tiny) TorchScript and ONNX models, CSV / JSON Lines rows, the summary, atomic output and the
collapse signal."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from automl.face_model import load_face_model
from automl.prediction import FRAME_COLUMNS, au_column, predict, prediction_columns, read_rows
from tests.face_media import (
    CANVAS,
    FPS,
    blank_frames,
    draw_face,
    two_faces_frames,
    two_faces_photo,
    write_tiny_model,
    write_video,
)
from tests.tiny_embedder import CLASSES, write_tiny_embedder

N_FRAMES = 16  # two faces a frame: 32 faces, enough for the collapse check (30)
AUS = ["AU1", "AU2", "AU12", "AU25"]


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("media")
    out = {
        "model": write_tiny_embedder(root),
        "two": write_video(root / "two.avi", two_faces_frames(N_FRAMES)),
        "blank": write_video(root / "blank.avi", blank_frames(6)),
        "photo": root / "pair.png",
        "wall": root / "wall.png",
    }
    assert cv2.imwrite(str(out["photo"]), two_faces_photo())
    assert cv2.imwrite(str(out["wall"]), np.full((240, 240, 3), 90, np.uint8))
    return out


@pytest.fixture(scope="module")
def two_face_rows(media, tmp_path_factory) -> tuple[list[dict[str, str]], object]:
    out = tmp_path_factory.mktemp("two") / "two.csv"
    result = predict(media["model"], media["two"], out=out, batch_size=8, device="cpu")
    return read_rows(out.read_text()), result


def _probs(row: dict[str, str], names=CLASSES) -> list[float]:
    return [float(row[c]) for c in names]


def _faces_by_frame(rows):
    by: dict[int, dict[int, dict[str, str]]] = {}
    for r in rows:
        by.setdefault(int(r["frame"]), {})[int(r["face_id"])] = r
    return by


def _no_temp_files(folder: Path) -> bool:
    from automl.atomic import is_temp_name

    return not [p.name for p in folder.iterdir() if is_temp_name(p.name)]


# -- (a) a video of two faces ------------------------------------------------------------------------
def test_two_faces_per_frame_keep_their_ids(two_face_rows, media):
    rows, result = two_face_rows
    assert list(rows[0]) == [*FRAME_COLUMNS, *CLASSES, "expression"] == result.columns
    assert len(rows) == result.rows == 2 * N_FRAMES
    by = _faces_by_frame(rows)
    assert sorted(by) == list(range(1, N_FRAMES + 1))
    assert all(sorted(faces) == [0, 1] for faces in by.values())
    # face 0 is the left face in every frame (moving right), face 1 the right one (moving left)
    w, h = CANVAS
    left = [float(by[f][0]["face_x"]) for f in sorted(by)]
    right = [float(by[f][1]["face_x"]) for f in sorted(by)]
    assert all(x < w / 2 for x in left) and all(x > w / 2 for x in right)
    assert left[-1] - left[0] > 15 and right[0] - right[-1] > 15
    for r in rows:
        assert r["source"] == str(media["two"])
        assert float(r["timestamp"]) == pytest.approx((int(r["frame"]) - 1) / FPS)
        assert (r["success"], r["detected"]) == ("1", "1")
        assert 0 < float(r["confidence"]) < 1
        x, y, bw, bh = (float(r[k]) for k in ("face_x", "face_y", "face_width", "face_height"))
        assert x >= 0 and y >= 0 and x + bw <= w and y + bh <= h and 90 < bw < 180 and 90 < bh < 180
        p = _probs(r)
        assert all(0 <= v <= 1 for v in p) and sum(p) == pytest.approx(1, abs=3e-4)
        assert r["expression"] == CLASSES[int(np.argmax(p))]


def test_two_faces_summary(two_face_rows, media):
    _, result = two_face_rows
    d = result.to_dict()
    assert (d["inputs"], d["frames"], d["faces"], d["empty_frames"], d["detections"]) == (
        1, N_FRAMES, 2 * N_FRAMES, 0, N_FRAMES
    )  # fmt: skip
    assert d["outputs"] == result.outputs and Path(d["outputs"][0]).name == "two.csv"
    assert d["skipped"] == [] and d["truncated"] == []
    assert d["model"]["format"] == "torchscript" and d["model"]["image_size"] == 32
    assert set(d["seconds"]) == {"decode", "detect", "crop", "forward"}
    assert d["frames_per_s"] > 0 and result.notes() == []
    json.dumps(d, allow_nan=False)  # the --json summary is plain JSON


# -- (b) no face at all ---------------------------------------------------------------------------
def test_a_video_without_faces_gives_one_empty_row_per_frame(media, tmp_path):
    # Regression: a batch without any face (logits of shape (0, 0)) crashed the softmax.
    out = tmp_path / "blank.csv"
    result = predict(media["model"], media["blank"], out=out, device="cpu")
    rows = read_rows(out.read_text())
    assert [int(r["frame"]) for r in rows] == list(range(1, 7))
    for r in rows:
        assert (r["success"], r["face_id"], r["detected"]) == ("0", "", "0")
        assert all(
            r[c] == "" for c in ("face_x", "face_y", "face_width", "face_height", *CLASSES, "expression")
        )
    assert (result.stats.frames, result.stats.faces, result.stats.empty_frames) == (6, 0, 6)


def test_faceless_frames_after_the_last_full_batch(media, tmp_path):
    # Regression: a last batch of faceless frames after full batches of faces.
    w, h = CANVAS
    frames = two_faces_frames(4) + blank_frames(4, (w, h))
    video = write_video(tmp_path / "then_blank.avi", frames)
    out = tmp_path / "o.csv"
    predict(media["model"], video, out=out, batch_size=8, device="cpu")
    rows = read_rows(out.read_text())
    assert [(int(r["frame"]), r["success"]) for r in rows] == [(f, "1") for f in (1, 1, 2, 2, 3, 3, 4, 4)] + [
        (f, "0") for f in (5, 6, 7, 8)
    ]


def test_an_au_model_on_a_video_without_faces(media, tmp_path):
    model = write_tiny_model(tmp_path / "au.pt", task="au", class_names=AUS)
    out = tmp_path / "o.csv"
    predict(model, media["blank"], out=out, device="cpu")
    rows = read_rows(out.read_text())
    assert len(rows) == 6 and all(r["success"] == "0" and r["AU01_c"] == "" for r in rows)


# -- (c) photos -----------------------------------------------------------------------------------
def test_a_photo_of_two_faces_and_a_blank_photo(media, tmp_path):
    out = tmp_path / "photos.csv"
    result = predict(media["model"], [media["photo"], media["wall"]], out=out, device="cpu")
    rows = read_rows(out.read_text())
    assert [(r["source"], r["frame"], r["timestamp"], r["face_id"], r["success"]) for r in rows] == [
        (str(media["photo"]), "1", "0.0", "0", "1"),
        (str(media["photo"]), "1", "0.0", "1", "1"),
        (str(media["wall"]), "1", "0.0", "", "0"),
    ]
    assert float(rows[0]["face_x"]) < 240 <= float(rows[1]["face_x"])  # reading order
    assert all(rows[2][c] == "" for c in (*CLASSES, "expression"))
    assert (result.stats.faces, result.stats.empty_frames, result.stats.detections) == (2, 1, 2)


def test_a_photo_over_the_pixel_limit_is_skipped_and_reported(media, tmp_path, monkeypatch):
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), cv2.resize(draw_face(120), (200, 200)))
    monkeypatch.setenv("AUTOML_MAX_IMAGE_PIXELS", str(200 * 200))
    out = tmp_path / "o.csv"
    result = predict(media["model"], [media["photo"], small], out=out, device="cpu")
    assert {r["source"] for r in read_rows(out.read_text())} == {str(small)}
    (note,) = result.notes()
    assert note.startswith(f"skipped {media['photo']}: image of 480x240 pixels")


# -- (d) models whose inputs differ from the frames --------------------------------------------------
def test_a_three_channel_48_pixel_model(media, tmp_path):
    path = write_tiny_model(tmp_path / "rgb.pt", in_channels=3, image_size=48, head_scale=20.0)
    model = load_face_model(path, device="cpu")
    shapes, real = [], model.logits
    model.logits = lambda x: (shapes.append(x.shape), real(x))[1]
    out = tmp_path / "rgb.csv"
    result = predict(
        model, [media["two"], media["photo"]], out=out, batch_size=10, frame_step=4, device="cpu"
    )
    rows = read_rows(out.read_text())
    assert len(rows) == result.rows == 2 * 4 + 2
    assert {s[1:] for s in shapes} == {(3, 48, 48)} and sum(s[0] for s in shapes) == 10
    assert sorted({int(r["frame"]) for r in rows if r["source"] == str(media["two"])}) == [1, 5, 9, 13]
    for r in rows:
        p = _probs(r)
        assert sum(p) == pytest.approx(1, abs=3e-4) and r["expression"] == CLASSES[int(np.argmax(p))]
    assert result.model["in_channels"] == 3 and result.model["image_size"] == 48


# -- (e) an AU model ------------------------------------------------------------------------------
@pytest.mark.parametrize("threshold", [0.5, 0.7])
def test_an_au_model_writes_openface_columns(media, tmp_path, threshold):
    path = write_tiny_model(tmp_path / "au.pt", task="au", class_names=AUS, head_scale=30.0)
    out = tmp_path / "au.csv"
    result = predict(path, [media["two"], media["photo"]], out=out, threshold=threshold, frame_step=2,
                     device="cpu")  # fmt: skip
    rows = read_rows(out.read_text())
    names = ["AU01", "AU02", "AU12", "AU25"]
    assert list(rows[0]) == [*FRAME_COLUMNS, *(f"{a}_c" for a in names), *(f"{a}_p" for a in names)]
    assert "expression" not in rows[0]
    assert len(rows) == 2 * N_FRAMES // 2 + 2 == result.rows
    values = set()
    for r in rows:
        for a in names:
            p, c = float(r[f"{a}_p"]), r[f"{a}_c"]
            assert 0 <= p <= 1 and c in ("0", "1")
            assert c == str(int(p >= threshold)), (a, p, c)
            values.add(c)
    assert values == {"0", "1"}  # the head is scaled so that both occur


def test_au_column_names():
    assert [au_column(n) for n in ("AU1", "au_01", "12", "AU25", " AU 4 ", "smile")] == [
        "AU01", "AU01", "AU12", "AU25", "AU04", "smile"
    ]  # fmt: skip
    assert prediction_columns("au", AUS) == [
        "AU01_c", "AU02_c", "AU12_c", "AU25_c", "AU01_p", "AU02_p", "AU12_p", "AU25_p"
    ]  # fmt: skip
    assert prediction_columns("fer", ["happy", "source", "expression"]) == [
        "happy", "p_source", "p_expression", "expression"
    ]  # fmt: skip


# -- (f) aligned crops, no detection ----------------------------------------------------------------
def test_no_detect_uses_the_centre_square_of_the_whole_image(media, tmp_path):
    crops = tmp_path / "crops"
    crops.mkdir()
    rng = np.random.default_rng(0)
    for i, (hh, ww) in enumerate([(48, 48), (48, 48), (60, 40)]):
        cv2.imwrite(str(crops / f"c{i}.png"), rng.integers(0, 255, (hh, ww), dtype=np.uint8))
    out = tmp_path / "o.csv"
    result = predict(media["model"], crops, out=out, detect=False, device="cpu")
    rows = read_rows(out.read_text())
    assert [Path(r["source"]).name for r in rows] == ["c0.png", "c1.png", "c2.png"]
    boxes = [tuple(float(r[k]) for k in ("face_x", "face_y", "face_width", "face_height")) for r in rows]
    assert boxes == [(0, 0, 48, 48), (0, 0, 48, 48), (0, 10, 40, 40)]  # what the model sees
    for r in rows:  # nothing was detected: the whole image is taken as the face
        assert (r["face_id"], r["success"], r["detected"], float(r["confidence"])) == ("0", "1", "0", 1.0)
    assert result.stats.detections == 0 and result.stats.faces == 3


# -- (g) one file per input; JSON Lines ---------------------------------------------------------------
def test_out_dir_writes_one_file_per_input(media, tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    same_stem = other / "pair.png"
    same_stem.write_bytes(media["photo"].read_bytes())
    out_dir = tmp_path / "preds"
    inputs = [media["two"], media["photo"], same_stem]
    result = predict(media["model"], inputs, out_dir=out_dir, frame_step=4, device="cpu")
    assert sorted(p.name for p in out_dir.iterdir()) == ["pair.csv", "pair_2.csv", "two.csv"]
    assert result.outputs == [str(out_dir / n) for n in ("two.csv", "pair.csv", "pair_2.csv")]
    for path, source in zip(result.outputs, inputs, strict=True):
        rows = read_rows(Path(path).read_text())
        assert rows and {r["source"] for r in rows} == {str(source)}
    assert len(read_rows((out_dir / "two.csv").read_text())) == 8


def test_jsonl_has_the_csv_values(media, tmp_path):
    csv_out, jsonl_out = tmp_path / "p.csv", tmp_path / "p.jsonl"
    args = dict(batch_size=8, frame_step=3, device="cpu")
    predict(media["model"], [media["two"], media["wall"]], out=csv_out, **args)
    result = predict(media["model"], [media["two"], media["wall"]], out=jsonl_out, **args)  # from the name
    assert result.settings["format"] == "jsonl"
    lines = jsonl_out.read_text().splitlines()
    objs = [json.loads(line) for line in lines]
    rows = read_rows(csv_out.read_text())
    assert len(objs) == len(rows) == 2 * 6 + 1
    for obj, row in zip(objs, rows, strict=True):
        assert list(obj) == list(row)
        assert {k: "" if v is None else str(v) for k, v in obj.items()} == row
    assert isinstance(objs[0]["frame"], int) and isinstance(objs[0]["happy"], float)
    assert objs[-1]["face_id"] is None and objs[-1]["success"] == 0 and objs[-1]["happy"] is None
    forced = tmp_path / "rows.txt"
    predict(media["model"], media["photo"], out=forced, fmt="jsonl", device="cpu")
    assert [json.loads(line)["face_id"] for line in forced.read_text().splitlines()] == [0, 1]


def test_rows_to_a_stream(media):
    import io

    buf = io.StringIO()
    result = predict(media["model"], media["photo"], out="-", stdout=buf, device="cpu")
    assert result.outputs == ["-"] and len(read_rows(buf.getvalue())) == 2


# -- (h) the summary with detect_every ----------------------------------------------------------------
def test_detect_every_5_detects_on_a_fraction_of_the_frames(media, tmp_path):
    out = tmp_path / "o.csv"
    events = []
    inputs = [media["two"], media["photo"], media["wall"]]
    result = predict(
        media["model"], inputs, out=out, detect_every=5, batch_size=8, device="cpu", progress=events.append
    )
    d = result.to_dict()
    # the video: frames 1, 6, 11, 16 are searched (4 of 16); each photo once
    assert d["frames"] == N_FRAMES + 2 and d["faces"] == 2 * N_FRAMES + 2
    assert d["empty_frames"] == 1 and d["detections"] == 4 + 2
    rows = [r for r in read_rows(out.read_text()) if r["source"] == str(media["two"])]
    searched = {int(r["frame"]) for r in rows if r["detected"] == "1"}
    assert searched == {1, 6, 11, 16}
    assert all(r["detected"] == "0" for r in rows if int(r["frame"]) not in searched)
    by = _faces_by_frame(rows)
    assert all(sorted(v) == [0, 1] for v in by.values())
    assert by[2][0]["face_x"] == by[1][0]["face_x"]  # held at the last detected box
    assert events and events[-1].done == events[-1].total == N_FRAMES + 2


# -- (i) an interrupted run leaves no output ----------------------------------------------------------
def _failing_after_first_batch(path):
    model = load_face_model(path, device="cpu")
    real, calls = model.logits, []

    def logits(x):
        calls.append(len(x))
        if len(calls) > 1:
            raise RuntimeError("injected failure in the forward pass")
        return real(x)

    model.logits = logits
    return model, calls


def test_a_run_that_fails_midway_leaves_no_output(media, tmp_path):
    model, calls = _failing_after_first_batch(media["model"])
    out = tmp_path / "preds.csv"
    with pytest.raises(RuntimeError, match="injected"):
        predict(model, media["two"], out=out, batch_size=4)
    assert calls == [4, 4] and not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no temp file either
    # an earlier run's file is left as it was
    out.write_text("earlier,run\n1,2\n")
    model, calls = _failing_after_first_batch(media["model"])
    with pytest.raises(RuntimeError, match="injected"):
        predict(model, media["two"], out=out, batch_size=4)
    assert out.read_text() == "earlier,run\n1,2\n" and [p.name for p in tmp_path.iterdir()] == ["preds.csv"]


def test_out_dir_keeps_the_inputs_finished_before_a_failure(media, tmp_path):
    model, _ = _failing_after_first_batch(media["model"])
    out_dir = tmp_path / "preds"
    with pytest.raises(RuntimeError, match="injected"):
        predict(model, [media["photo"], media["two"]], out_dir=out_dir, batch_size=4)
    assert [p.name for p in out_dir.iterdir()] == ["pair.csv"] and _no_temp_files(out_dir)
    assert len(read_rows((out_dir / "pair.csv").read_text())) == 2


def test_bad_settings_fail_before_anything_is_written(media, tmp_path):
    from automl.errors import UserError

    out = tmp_path / "o.csv"
    for kwargs in ({"batch_size": 0}, {"detect_every": 0}, {"frame_step": 0}, {"threshold": 1.0},
                   {"threshold": 0.0}, {"fmt": "xml"}, {"out_dir": tmp_path / "d"}):  # fmt: skip
        with pytest.raises(UserError):
            predict(media["model"], media["photo"], out=out, device="cpu", **kwargs)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# -- (j, k) the signal ------------------------------------------------------------------------------
def _with_logits(path, fn):
    model = load_face_model(path, device="cpu")
    model.logits = fn
    return model


def test_constant_predictions_over_30_faces_are_flagged(media, tmp_path):
    constant = _with_logits(media["model"], lambda x: np.tile(np.float32([[0.0, 4.0, 1.0]]), (len(x), 1)))
    result = predict(constant, media["two"], out=tmp_path / "o.csv", device="cpu")
    (w,) = result.signal["warnings"]
    assert w["code"] == "predictions_one_class" and w["class"] == "sad" and w["n"] == 2 * N_FRAMES
    assert result.signal["learned"] is True and "predictions_collapse" in result.signal["checks"]
    assert {r["expression"] for r in read_rows((tmp_path / "o.csv").read_text())} == {"sad"}


def test_varied_predictions_and_few_faces_are_not_flagged(media, tmp_path):
    varied = _with_logits(media["model"], lambda x: 4 * np.eye(3, dtype=np.float32)[np.arange(len(x)) % 3])
    result = predict(varied, media["two"], out=tmp_path / "o.csv", device="cpu")
    assert result.signal["warnings"] == [] and result.signal["learned"] is True
    constant = _with_logits(media["model"], lambda x: np.tile(np.float32([[0.0, 4.0, 1.0]]), (len(x), 1)))
    few = predict(constant, media["two"], out=tmp_path / "o.csv", frame_step=2, device="cpu")  # 16 faces
    assert few.signal["warnings"] == [] and few.signal["faces"] == N_FRAMES


def test_one_class_share_at_95_percent(media, tmp_path):
    # 32 faces, 2 of another class: 30/32 = 94% is not a collapse; 31/32 = 97% is
    for others, flagged in ((2, False), (1, True)):
        model = load_face_model(media["model"], device="cpu")
        n_other = {"n": 0}

        def logits(x, k=others, n_other=n_other):
            z = np.tile(np.float32([[4.0, 0.0, 0.0]]), (len(x), 1))
            take = min(len(x), k - n_other["n"])
            z[:take] = [0.0, 0.0, 4.0]
            n_other["n"] += take
            return z

        model.logits = logits
        result = predict(model, media["two"], out=tmp_path / "o.csv", device="cpu")
        codes = [w["code"] for w in result.signal["warnings"]]
        assert codes == (["predictions_one_class"] if flagged else []), others


def test_constant_au_predictions_are_flagged(media, tmp_path):
    path = write_tiny_model(tmp_path / "au.pt", task="au", class_names=AUS)
    model = _with_logits(path, lambda x: np.tile(np.float32([[3.0, -3.0, 3.0, -3.0]]), (len(x), 1)))
    result = predict(model, media["two"], out=tmp_path / "o.csv", device="cpu")
    assert [w["code"] for w in result.signal["warnings"]] == ["predictions_constant"]
    # one AU that changes is enough
    model = _with_logits(
        path, lambda x: np.concatenate([np.tile(np.float32([[3.0, -3.0, 3.0]]), (len(x), 1)),
                                        np.float32(np.arange(len(x)) % 2 * 6 - 3)[:, None]], axis=1)
    )  # fmt: skip
    result = predict(model, media["two"], out=tmp_path / "o.csv", device="cpu")
    assert result.signal["warnings"] == []


def test_the_sidecar_signal_is_carried_over(media, tmp_path):
    finding = {"code": "no_better_than_chance", "severity": "no_signal", "message": "m"}
    trained = {"learned": False, "checks": ["chance"], "alpha": 0.01, "warnings": [finding]}
    path = write_tiny_model(tmp_path / "m.pt", extra={"signal": trained})
    result = predict(path, media["photo"], out=tmp_path / "o.csv", device="cpu")
    assert result.model_signal["learned"] is False  # the training run's verdict, kept apart
    assert [w["code"] for w in result.model_signal["warnings"]] == ["no_better_than_chance"]
    assert result.signal["checks"] == ["predictions_collapse"] and result.signal["learned"] is True


def test_a_malformed_sidecar_signal_is_ignored_not_a_traceback(media, tmp_path):
    bad = {"learned": False, "warnings": ["a string, not an object"]}
    path = write_tiny_model(tmp_path / "m.pt", extra={"signal": bad})
    result = predict(path, media["photo"], out=tmp_path / "o.csv", device="cpu")
    assert result.model_signal == {"learned": False, "warnings": []}
    path = write_tiny_model(tmp_path / "n.pt", extra={"signal": "yes"})
    assert predict(path, media["photo"], out=tmp_path / "p.csv", device="cpu").model_signal is None


# -- (l) ONNX ------------------------------------------------------------------------------------------
def test_onnx_predictions_equal_torchscript(media, tmp_path):
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (the 'export' extra)")
    pytest.importorskip("onnx", reason="onnx is not installed (torch.onnx.export needs it)")
    import warnings

    import torch

    from tests.tiny_embedder import TinyEmbedder

    net = TinyEmbedder()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        net.load_state_dict(torch.jit.load(str(media["model"])).state_dict())
    net.eval()

    class Pair(torch.nn.Module):
        def __init__(self, m: torch.nn.Module) -> None:
            super().__init__()
            self.m = m

        def forward(self, x):
            e = self.m.embed(x)
            return self.m.head(e), e

    onnx_path = tmp_path / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Pair(net),
            (torch.rand(2, 1, 32, 32),),
            str(onnx_path),
            input_names=["input"],
            output_names=["logits", "embedding"],
            dynamic_axes={"input": {0: "b"}, "logits": {0: "b"}, "embedding": {0: "b"}},
            opset_version=18,
            dynamo=False,
        )
    side = json.loads(media["model"].with_name("model.pt.json").read_text())
    onnx_path.with_name("model.onnx.json").write_text(json.dumps({**side, "format": "onnx"}))

    onnx_model = load_face_model(onnx_path, device="cpu")
    ts_model = load_face_model(media["model"], device="cpu")
    assert onnx_model.format == "onnx" and ts_model.format == "torchscript"
    x = np.random.default_rng(0).random((5, 1, 32, 32), dtype=np.float32)
    np.testing.assert_allclose(onnx_model.logits(x), ts_model.logits(x), atol=1e-4)
    np.testing.assert_allclose(onnx_model.embed(x), ts_model.embed(x), atol=1e-4)

    inputs = [media["two"], media["photo"]]
    a = predict(ts_model, inputs, out=tmp_path / "ts.csv", frame_step=3, batch_size=5)
    b = predict(onnx_model, inputs, out=tmp_path / "onnx.csv", frame_step=3, batch_size=5)
    assert b.model["format"] == "onnx" and a.rows == b.rows
    ra, rb = read_rows((tmp_path / "ts.csv").read_text()), read_rows((tmp_path / "onnx.csv").read_text())
    for x_, y_ in zip(ra, rb, strict=True):
        assert {k: x_[k] for k in FRAME_COLUMNS} == {k: y_[k] for k in FRAME_COLUMNS}
        assert _probs(x_) == pytest.approx(_probs(y_), abs=1.5e-4)  # 4 decimals either side


# -- (m) a truncated video ---------------------------------------------------------------------------
def test_a_truncated_video_is_reported(media, tmp_path):
    full = write_video(tmp_path / "full.avi", two_faces_frames(20))
    cut = tmp_path / "cut.avi"
    data = full.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.6)])  # the header (and its frame count) survive
    out = tmp_path / "o.csv"
    result = predict(media["model"], cut, out=out, device="cpu")  # one batch: every frame in it
    (truncated,) = result.stats.truncated
    assert truncated[0] == str(cut) and truncated[2] == 20 and 0 < truncated[1] < 19
    (note,) = result.notes()
    n = truncated[1]
    assert (
        note == f"{cut}: the video ended after {n} of the 20 frames its header gives (truncated or corrupt)"
    )
    rows = read_rows(out.read_text())
    assert max(int(r["frame"]) for r in rows) == truncated[1]
    want = {"source": str(cut), "frames_read": truncated[1], "frames_in_header": 20}
    assert result.to_dict()["truncated"] == [want]


def test_a_complete_video_is_not_reported_as_truncated(two_face_rows):
    _, result = two_face_rows
    assert result.stats.truncated == [] and not math.isnan(result.frames_per_s)
