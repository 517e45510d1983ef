"""``automl bench face``: teacher, occluded teacher, occluded baseline, control, distilled student."""

from __future__ import annotations

import json


def test_bench_face_runs_every_row_at_tiny_size(cli, tmp_path):
    out = tmp_path / "face.json"
    res = cli("bench", "face", "--n", "64", "--image-size", "16", "--epochs", "1", "--init-channels", "4",
              "--occlude", "upper", "--temperature", "3", "--kd-weight", "0.25", "--out", out)  # fmt: skip
    assert res.code == 0, res.err
    report = json.loads(out.read_text())
    names = [r["name"] for r in report["rows"]]
    assert names == [
        "teacher",
        "teacher, occluded test",
        "occluded baseline",
        "occluded, teacher init",
        "distilled student",
    ]
    assert [r["test_faces"] for r in report["rows"]] == ["full", "upper", "upper", "upper", "upper"]
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in report["rows"])
    assert report["synthetic"] is True and report["occlude"] == "upper" and report["epochs"] == 1
    assert report["distill"]["temperature"] == 3.0 and report["distill"]["init_from_teacher"] is True
    assert report["distill"]["kd_weight"] == 0.25
    assert report["lost_to_occlusion"] == report["rows"][0]["accuracy"] - report["rows"][2]["accuracy"]
    assert "distilled student" in res.out and "recovered" in res.out


def test_bench_face_without_control_and_bad_genotype(cli, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    res = cli("bench", "face", "--genotype", bad)
    assert res.code == 2 and "not valid JSON" in res.err
    out = tmp_path / "face.json"
    res = cli("bench", "face", "--n", "48", "--image-size", "16", "--epochs", "1", "--init-channels", "4",
              "--no-init-control", "--out", out)  # fmt: skip
    assert res.code == 0, res.err
    assert len(json.loads(out.read_text())["rows"]) == 4
