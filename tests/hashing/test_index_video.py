"""``automl index add --video``: every face of every Nth frame, labelled as one class, with
``path#frame=N&face=K`` sources; bad combinations are one line, exit 2, and leave the index as it was."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from automl.retrieval import embed_video, video_source
from hashing import HashingError
from hashing.index import HashIndex
from tests.face_media import draw_face, two_faces_frames, write_video
from tests.tiny_embedder import write_tiny_embedder

N_FRAMES = 8


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    return write_tiny_embedder(tmp_path_factory.mktemp("model"))


@pytest.fixture
def index_dir(cli, model_file, tmp_path) -> Path:
    """A one-photo index in ``tmp_path/idx`` plus ``v.avi`` (two faces a frame) and ``face.png``."""
    assert cv2.imwrite(str(tmp_path / "face.png"), draw_face(120))
    write_video(tmp_path / "v.avi", two_faces_frames(N_FRAMES))
    r = cli("index", "build", "--model", model_file, "--images", tmp_path / "face.png", "--no-detect",
            "--out", "idx", "--no-record")  # fmt: skip
    assert r.code == 0, r.err
    return tmp_path / "idx"


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _one_line_error(r) -> str:
    assert r.code == 2 and "Traceback" not in r.err, (r.code, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.err
    return lines[0]


def test_add_video_adds_every_face_of_every_second_frame(cli, index_dir, tmp_path):
    r = cli("index", "add", "idx", "--video", "v.avi", "--label", "alice", "--frame-step", "2", "--no-record")
    assert r.code == 0, r.err
    assert "added 8 item(s)" in r.out
    index = HashIndex.load(index_dir)
    video = str((tmp_path / "v.avi").resolve())
    want = [video_source(video, n, k) for n in range(1, N_FRAMES + 1, 2) for k in (0, 1)]
    assert want[0] == f"{video}#frame=1&face=0" and Path(video).is_absolute()
    assert index.sources[0] == str(tmp_path / "face.png") and index.sources[1:] == want
    assert [index.label_of(i) for i in range(len(index))] == [None] + ["alice"] * len(want)
    st = json.loads(cli("index", "stats", "idx", "--json").out)
    assert (st["items"], st["labelled_items"], st["extra"]["class_names"]) == (1 + len(want), len(want),
                                                                               ["alice"])  # fmt: skip


def test_add_video_without_a_label_only_encodes(cli, index_dir):
    r = cli(
        "index", "add", "idx", "--video", "v.avi", "--frame-step", "4", "--detect-every", "2", "--no-record"
    )
    assert r.code == 0, r.err
    index = HashIndex.load(index_dir)
    assert [s.split("#")[1] for s in index.sources[1:]] == [
        "frame=1&face=0", "frame=1&face=1", "frame=5&face=0", "frame=5&face=1"
    ]  # fmt: skip
    st = json.loads(cli("index", "stats", "idx", "--json").out)
    assert st["items"] == 5 and st["labelled_items"] == 0 and st["hash_updates"] == 0


def test_add_a_folder_of_videos(cli, index_dir, tmp_path):
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "b.avi").write_bytes((tmp_path / "v.avi").read_bytes())
    write_video(tmp_path / "clips" / "a.avi", two_faces_frames(2))
    r = cli("index", "add", "idx", "--video", "clips", "--label", "bob", "--no-record")
    assert r.code == 0, r.err
    names = [Path(s.split("#")[0]).name for s in HashIndex.load(index_dir).sources[1:]]
    assert names == ["a.avi"] * 4 + ["b.avi"] * 2 * N_FRAMES  # sorted, every frame


BAD = {
    "video with images": (["--video", "v.avi", "--images", "face.png"], "not both"),
    "video with labels": (["--video", "v.avi", "--labels", "labels.csv"], "--label"),
    "label with images": (["--images", "face.png", "--label", "alice"], "--label goes with --video"),
    "neither": ([], "give --images PATH or --video PATH"),
    "video on a photo": (["--video", "face.png"], "face.png is a photo, not a video"),
    "corrupt video": (["--video", "junk.mp4"], "not a video OpenCV can open"),
    "missing video": (["--video", "nope.avi"], "does not exist"),
    "blank label": (["--video", "v.avi", "--label", "  "], "non-empty class name"),
    "detect-every 0": (["--video", "v.avi", "--detect-every", "0"], "detect_every"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_video_adds_are_one_line_and_leave_the_index_unchanged(cli, index_dir, tmp_path, case):
    (tmp_path / "labels.csv").write_text("file,label\nface.png,alice\n")
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all" * 50)
    args, needle = BAD[case]
    before = _snapshot(index_dir)
    r = cli("index", "add", "idx", *args, "--no-record")
    assert needle in _one_line_error(r)
    assert _snapshot(index_dir) == before


def test_frame_step_0_is_one_line_and_leaves_the_index_unchanged(cli, index_dir):
    # Regression: the progress total divided by frame_step before the step was checked.
    before = _snapshot(index_dir)
    r = cli("index", "add", "idx", "--video", "v.avi", "--frame-step", "0", "--no-record")
    assert "frame step must be a whole number >= 1" in _one_line_error(r)
    assert _snapshot(index_dir) == before


def test_embed_video_api(model_file, tmp_path):
    from hashing.stream import load_model

    video = write_video(tmp_path / "v.avi", two_faces_frames(3))
    got = embed_video(load_model(model_file), video, label="carol")
    assert got.embeddings.shape == (6, 16) and got.embeddings.dtype == np.float32
    assert got.sources == [video_source(str(video.resolve()), n, k) for n in (1, 2, 3) for k in (0, 1)]
    assert got.labels.tolist() == [0] * 6 and got.class_names == ["carol"]
    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), draw_face(60))
    with pytest.raises(HashingError, match="is a photo, not a video"):
        embed_video(load_model(model_file), [video, photo])
