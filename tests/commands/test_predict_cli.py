"""``automl predict`` end to end: default output file, stdout, --json, and every bad input as one
``error:`` line with exit code 2 and no output left behind."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from automl.prediction import FRAME_COLUMNS, read_rows
from tests.face_media import empty_video, two_faces_frames, two_faces_photo, write_video
from tests.tiny_embedder import CLASSES, write_tiny_embedder


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("media")
    out = {
        "model": write_tiny_embedder(root),
        "video": write_video(root / "two.avi", two_faces_frames(6)),
        "photo": root / "pair.png",
        "empty": empty_video(root / "empty.avi"),
        "corrupt": root / "broken.mp4",
        "nomedia": root / "nomedia",
        "nosidecar": root / "bare.pt",
    }
    assert cv2.imwrite(str(out["photo"]), two_faces_photo())
    out["corrupt"].write_bytes(b"\x00\x00\x00\x18ftypmp42 but nothing else" * 40)
    out["nomedia"].mkdir()
    (out["nomedia"] / "readme.txt").write_text("no media here")
    out["nosidecar"].write_bytes(out["model"].read_bytes())
    return out


def _outputs(folder: Path) -> list[str]:
    """Files a predict run may have written (rows or temporary files) in ``folder``."""
    return sorted(p.name for p in folder.rglob("*") if p.suffix in (".csv", ".jsonl", ".tmp")
                  or p.name.startswith("."))  # fmt: skip


def _one_error_line(r) -> str:
    assert r.code == 2, (r.code, r.out, r.err)
    assert "Traceback" not in r.err
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.err
    return lines[0]


def test_writes_predictions_csv_in_the_working_directory(cli, media, tmp_path):
    r = cli("predict", media["model"], media["photo"], media["video"], "--batch", "4")
    assert r.code == 0, r.err
    rows = read_rows((tmp_path / "predictions.csv").read_text())
    assert list(rows[0]) == [*FRAME_COLUMNS, *CLASSES, "expression"]
    assert len(rows) == 2 + 2 * 6
    assert [r_["source"] for r_ in rows[:2]] == [str(media["photo"])] * 2
    assert "predicted 14 face(s) in 7 frame(s) of 2 input(s)" in r.out and "predictions.csv" in r.out
    assert _outputs(tmp_path) == ["predictions.csv"]


def test_out_dash_writes_csv_to_stdout(cli, media, tmp_path):
    r = cli("predict", media["model"], media["video"], "--out", "-", "--frame-step", "2")
    assert r.code == 0, r.err
    rows = read_rows(r.out)
    assert [int(x["frame"]) for x in rows] == [1, 1, 3, 3, 5, 5]
    assert "predicted 6 face(s)" in r.err  # the report goes to stderr, stdout is only rows
    assert _outputs(tmp_path) == []


def test_json_summary(cli, media, tmp_path):
    r = cli("predict", media["model"], media["video"], "--out", "p.jsonl", "--json", "--detect-every", "3")
    assert r.code == 0, r.err
    d = json.loads(r.out)
    assert (d["frames"], d["faces"], d["empty_frames"], d["detections"], d["rows"]) == (6, 12, 0, 2, 12)
    assert d["outputs"] == ["p.jsonl"] and d["settings"]["format"] == "jsonl"
    assert d["settings"]["detect_every"] == 3 and d["model"]["class_names"] == CLASSES
    lines = (tmp_path / "p.jsonl").read_text().splitlines()
    assert len(lines) == 12 and all(json.loads(x)["success"] == 1 for x in lines)


def test_out_dir_and_format(cli, media, tmp_path):
    r = cli(
        "predict", media["model"], media["photo"], media["video"], "--out-dir", "rows", "--format", "jsonl"
    )
    assert r.code == 0, r.err
    assert sorted(p.name for p in (tmp_path / "rows").iterdir()) == ["pair.jsonl", "two.jsonl"]


def test_no_detect(cli, media, tmp_path):
    r = cli("predict", media["model"], media["photo"], "--no-detect", "--out", "o.csv")
    assert r.code == 0, r.err
    (row,) = read_rows((tmp_path / "o.csv").read_text())
    box = [row[k] for k in ("face_x", "face_y", "face_width", "face_height")]
    assert box == ["120.0", "0.0", "240.0", "240.0"]  # the centre square the model sees
    assert float(row["confidence"]) == 1.0 and row["detected"] == "0"


def test_a_png_named_like_a_video_is_a_photo(cli, media, tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(media["photo"].read_bytes())
    r = cli("predict", media["model"], clip, "--out", "o.csv")
    assert r.code == 0, r.err
    rows = read_rows((tmp_path / "o.csv").read_text())
    assert [(x["source"], x["frame"], x["timestamp"], x["face_id"]) for x in rows] == [
        (str(clip), "1", "0.0", "0"), (str(clip), "1", "0.0", "1")
    ]  # fmt: skip


BAD = {
    "missing file": (["{model}", "{root}/nope.mp4"], "nope.mp4 does not exist"),
    "corrupt video": (["{model}", "{corrupt}"], "broken.mp4: not an image Pillow knows and not a video"),
    "zero-frame video": (["{model}", "{empty}"], "empty.avi: the video has no frames"),
    "folder without media": (["{model}", "{nomedia}"], "no photos or videos under"),
    "batch 0": (["{model}", "{photo}", "--batch", "0"], "batch size must be a whole number >= 1"),
    "detect-every 0": (["{model}", "{photo}", "--detect-every", "0"], "(--detect-every)"),
    "frame-step 0": (["{model}", "{photo}", "--frame-step", "0"], "(--frame-step)"),
    "detect-side 10": (["{model}", "{photo}", "--detect-side", "10"], "at least 48 pixels"),
    "threshold 1.5": (["{model}", "{photo}", "--threshold", "1.5"], "threshold must be in (0, 1)"),
    "format xml": (["{model}", "{photo}", "--format", "xml"], "must be one of csv, jsonl, not 'xml'"),
    "out and out-dir": (["{model}", "{photo}", "--out", "a.csv", "--out-dir", "d"], "not both"),
    "json to stdout": (["{model}", "{photo}", "--out", "-", "--json"], "--json prints the summary"),
    "missing model": (["{root}/nothere.pt", "{photo}"], "nothere.pt not found"),
    "model without sidecar": (["{nosidecar}", "{photo}"], "bare.pt.json not found"),
    "unknown run id": (["7", "{photo}", "--db", "sqlite:///tmp.db"], "unknown run id 7"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_error_line_and_writes_nothing(cli, media, tmp_path, case):
    args, needle = BAD[case]
    names = {k: str(v) for k, v in media.items()} | {"root": str(media["model"].parent)}
    argv = ["predict", *(a.format(**names) for a in args)]  # --db works after the command too
    before = sorted(p.name for p in media["model"].parent.iterdir())
    r = cli(*argv)
    line = _one_error_line(r)
    assert needle in line, line
    assert _outputs(tmp_path) == [] and not (tmp_path / "d").exists()
    assert sorted(p.name for p in media["model"].parent.iterdir()) == before


def test_an_existing_output_survives_a_bad_input(cli, media, tmp_path):
    (tmp_path / "predictions.csv").write_text("old\n")
    _one_error_line(cli("predict", media["model"], media["empty"]))
    assert (tmp_path / "predictions.csv").read_text() == "old\n"


def test_notes_are_plain_text(cli, media, tmp_path):
    # Regression: the note was printed with its markup as literal text.
    full = write_video(tmp_path / "full.avi", two_faces_frames(20))
    data = full.read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: int(len(data) * 0.6)])
    r = cli("predict", media["model"], "cut.avi", "--out", "o.csv")
    assert r.code == 0, r.err
    (note,) = [line for line in r.err.splitlines() if "the video ended after" in line]
    assert note.startswith("WARNING: cut.avi: the video ended after")
    assert "[yellow]" not in note and "[/]" not in note


def test_a_video_without_faces(cli, media, tmp_path):
    # Regression: a faceless input crashed the expression path (a traceback, exit 1).
    frames = [np.full((120, 160, 3), 40 + 10 * i, np.uint8) for i in range(4)]
    write_video(tmp_path / "blank.avi", frames)
    r = cli("predict", media["model"], "blank.avi", "--out", "o.csv")
    assert r.code == 0, r.err
    rows = read_rows((tmp_path / "o.csv").read_text())
    assert [(x["frame"], x["success"]) for x in rows] == [("1", "0"), ("2", "0"), ("3", "0"), ("4", "0")]


def test_corrupt_videos_print_one_line_on_the_real_stderr(media, tmp_path):
    """In a fresh process (OpenCV's and FFmpeg's own messages go to file descriptor 2, which the
    in-process runner does not see)."""
    # Regression: OpenCV's built-in MJPEG reader prints its parse errors on fd 2 itself.
    import os
    import subprocess
    import sys

    full = write_video(tmp_path / "full.avi", two_faces_frames(4))
    (tmp_path / "head.avi").write_bytes(full.read_bytes()[:3000])
    (tmp_path / "junk.mp4").write_bytes(media["corrupt"].read_bytes())
    script = (
        "import sys\nfrom automl.cli import main\nfor f in sys.argv[2:]:\n"
        "    try:\n        main(['predict', sys.argv[1], f, '--out', 'o.csv'])\n"
        "    except SystemExit as e:\n        print(f'== {f} exit {e.code}', file=sys.stderr, flush=True)\n"
    )
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": root, "COLUMNS": "200"}
    env.pop("OPENCV_FFMPEG_LOGLEVEL", None)
    argv = [sys.executable, "-c", script, str(media["model"]), "junk.mp4", "head.avi"]
    proc = subprocess.run(
        argv, cwd=tmp_path, env=env, capture_output=True, text=True, errors="replace", timeout=120
    )
    blocks, current = {}, []
    for line in proc.stderr.splitlines():
        if line.startswith("== "):
            name, code = line[3:].split(" exit ")
            blocks[name] = (code, current)
            current = []
        elif line.strip():
            current.append(line)
    assert blocks["junk.mp4"] == ("2", [f"error: junk.mp4: {NOT_A_VIDEO}"]), proc.stderr
    assert blocks["head.avi"] == ("2", [f"error: head.avi: {NOT_A_VIDEO}"]), proc.stderr
    assert not (tmp_path / "o.csv").exists()


NOT_A_VIDEO = (
    "not an image Pillow knows and not a video OpenCV can open (corrupt, or an unsupported container/codec)"
)


def test_every_input_skipped_is_an_error_and_writes_nothing(cli, media, tmp_path, monkeypatch):
    huge = tmp_path / "huge.png"
    cv2.imwrite(str(huge), np.zeros((300, 300), np.uint8))
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    r = cli("predict", media["model"], text, "--out", "o.csv")
    assert r.code == 2 and "nothing could be read" in r.err and "unreadable image" in r.err
    with monkeypatch.context() as env:
        env.setenv("AUTOML_MAX_IMAGE_PIXELS", "1000")
        r = cli("predict", media["model"], huge, "--out", "o.csv")
    assert r.code == 2 and "exceeds the limit" in r.err
    assert not (tmp_path / "o.csv").exists()
    r = cli("predict", media["model"], text, media["photo"], "--out", "o.csv")  # one readable: a warning
    assert r.code == 0 and "WARNING: skipped" in r.err and "1 input(s) skipped" in r.out
