"""``automl bench predict``: pipeline vs raw forward and peak RSS, at tiny sizes (no timing checks)."""

from __future__ import annotations

import json
import math

import pytest


def test_bench_predict_tiny_run_prints_the_table_and_writes_every_key(cli, tmp_path):
    out = tmp_path / "predict.json"
    res = cli(
        "bench",
        "predict",
        "--seconds",
        "1",
        "--frame-size",
        "320x180",
        "--repeats",
        "1",
        "--raw-faces",
        "64",
        "--batch",
        "16",
        "--skip-rss",
        "--out",
        out,
    )
    assert res.code == 0, res.err
    for text in (
        "raw forward",
        "detect every frame",
        "detect every 5th frame",
        "side 320",
        "--no-detect",
        "each stage alone",
        "target pipeline ratio >= 0.7",
        "untrained",
        "not measured (--skip-rss)",
    ):
        assert text in res.out, text
    report = json.loads(out.read_text())
    for key in (
        "machine",
        "videos",
        "model",
        "settings",
        "raw_forward",
        "pipeline",
        "stages",
        "rss",
        "targets",
    ):
        assert key in report, key
    assert report["synthetic"] is True and report["untrained"] is True
    assert report["model"]["image_size"] == 24 and report["model"]["in_channels"] == 1
    assert report["machine"]["nproc"] >= 1
    assert [r["mode"] for r in report["pipeline"]] == ["every1", "every5", "side320", "nodetect"]
    assert report["videos"]["faces"]["frames"] == 25 and report["videos"]["faces"]["size"] == [320, 180]
    for row in report["pipeline"]:
        assert row["frames"] == 25, row["mode"]
        assert math.isfinite(row["ratio"]) and row["ratio"] > 0, row["mode"]
        assert 0 < row["frames_with_face"] <= 1
        assert set(row["shares"]) == {"decode", "detect", "crop", "forward"}
        assert math.isclose(sum(row["shares"].values()), 1.0, rel_tol=1e-6)
    assert report["pipeline"][-1]["frames_with_face"] == 1.0  # --no-detect: every frame is a face
    raw = report["raw_forward"][0]
    assert raw["device"] == "cpu" and raw["faces"] >= 64 and raw["faces_per_s"] > 0
    assert report["rss"] is None and report["targets"]["rss_ratio"] is None
    assert report["targets"]["pipeline_ratio"]["target"] == 0.7
    assert set(report["stages"][0]) >= {
        "decode_frame_ms",
        "detect_frame_ms",
        "crop_face_ms",
        "forward_face_ms",
    }


def test_bench_predict_peak_rss_of_a_short_and_a_long_video(cli, tmp_path):
    out = tmp_path / "p.json"
    res = cli(
        "bench",
        "predict",
        "--seconds",
        "0.5",
        "--long-seconds",
        "1",
        "--frame-size",
        "256x144",
        "--repeats",
        "1",
        "--raw-faces",
        "16",
        "--batch",
        "8",
        "--modes",
        "every5,nodetect",
        "--no-stages",
        "--out",
        out,
    )
    assert res.code == 0, res.err
    assert "peak ratio" in res.out and "target RSS ratio <= 1.2" in res.out
    report = json.loads(out.read_text())
    rss = report["rss"]
    assert rss["detect_every"] == 5  # without every1 measured, the RSS runs detect every 5th frame
    assert [r["video_frames"] for r in rss["runs"]] == [12, 25]
    assert [r["frames"] for r in rss["runs"]] == [12, 25]
    assert math.isfinite(rss["ratio"]) and rss["ratio"] > 0
    assert all(r["peak_kib"] > 0 and r["peak_kib"] >= r["peak_after_load_kib"] for r in rss["runs"])
    assert report["targets"]["rss_ratio"]["target"] == 1.2 and report["stages"] == []
    assert [r["mode"] for r in report["pipeline"]] == ["every5", "nodetect"]


def test_bench_predict_bad_options_are_one_line(cli):
    res = cli("bench", "predict", "--modes", "every2", "--skip-rss")
    assert res.code == 2 and "every1, every5, side320, nodetect" in res.err
    res = cli("bench", "predict", "--frame-size", "big")
    assert res.code == 2 and "WIDTHxHEIGHT" in res.err


def test_rss_detect_every_is_the_smallest_that_fits():
    from automl.bench_predict import choose_rss_detect_every, frame_costs

    # 2 ms a frame plus a 44 ms detection: 15,000 frames fit 180 s at every 5th frame, not every frame
    every, est = choose_rss_detect_every(0.002, 0.044, 15_000)
    assert every == 5 and est <= 180
    assert choose_rss_detect_every(0.001, 0.001, 1_500)[0] == 1
    pipe = [
        {"device": "cpu", "mode": "every1", "frames_per_s": 20.0, "faces": 10, "frames": 10},
        {"device": "cpu", "mode": "every5", "frames_per_s": 80.0, "faces": 10, "frames": 10},
    ]
    fixed, detect = frame_costs({"pipeline": pipe, "stages": []})
    assert math.isclose(fixed + detect, 1 / 20) and math.isclose(fixed + detect / 5, 1 / 80)
    assert frame_costs({"pipeline": pipe[1:], "stages": []}) is None


def test_synthetic_video_has_the_frames_asked(tmp_path):
    cv2 = pytest.importorskip("cv2")
    from automl.bench_predict import write_aligned_video, write_synthetic_video

    info = write_synthetic_video(tmp_path / "v.avi", 0.6, fps=10, size=(160, 96), faces=3, pool_seconds=0.3)
    assert info["frames"] == 6 and info["pool_frames"] == 3 and info["face_side"] == 32
    cap = cv2.VideoCapture(info["path"])
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    assert n == 6
    aligned = write_aligned_video(tmp_path / "a.avi", 0.5, fps=10, side=64)
    assert aligned["frames"] == 5 and aligned["size"] == [64, 64]
