"""automl.media: finding photos and videos, checking them before anything is written, and reading
their frames (1-based, timestamps from the fps, ``step``)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from automl.errors import UserError
from automl.media import (
    Frame,
    MediaError,
    MediaInput,
    check_media,
    check_video,
    discover_media,
    iter_frames,
)
from hashing.image_limits import ImageTooLargeError
from tests.face_media import FPS, empty_video, frame_number, numbered_frames, write_video


@pytest.fixture
def numbered(tmp_path: Path) -> Path:
    return write_video(tmp_path / "numbered.avi", numbered_frames(20))


def _png(path: Path, size: int = 32, value: int = 128) -> Path:
    assert cv2.imwrite(str(path.with_suffix(".png")), np.full((size, size, 3), value, np.uint8))
    if path.suffix != ".png":
        path.with_suffix(".png").rename(path)
    return path


# -- discovery -----------------------------------------------------------------------------------
def test_media_error_is_a_user_error():
    assert issubclass(MediaError, UserError)


def test_a_file_is_one_input_by_its_content(tmp_path, numbered):
    photo = _png(tmp_path / "a.png")
    assert discover_media([photo]) == [MediaInput(photo, "photo")]
    assert discover_media([numbered]) == [MediaInput(numbered, "video")]
    assert discover_media([str(photo), numbered]) == [
        MediaInput(photo, "photo"),
        MediaInput(numbered, "video"),
    ]


def test_a_folder_is_searched_recursively_and_sorted(tmp_path, numbered):
    root = tmp_path / "media"
    (root / "sub" / "deeper").mkdir(parents=True)
    _png(root / "c.png")
    _png(root / "sub" / "b.JPG")  # any case of a known extension; the content is a PNG
    _png(root / "sub" / "deeper" / "a.png")
    (root / "clip.avi").write_bytes(numbered.read_bytes())
    (root / "notes.txt").write_text("not media")
    (root / "sub" / "labels.csv").write_text("file,label\n")
    got = discover_media([root])
    assert [str(m.path.relative_to(root)) for m in got] == [
        "c.png",
        "clip.avi",
        "sub/b.JPG",
        "sub/deeper/a.png",
    ]
    assert [m.kind for m in got] == ["photo", "video", "photo", "photo"]


def test_missing_paths_and_empty_folders_are_media_errors(tmp_path):
    with pytest.raises(MediaError, match="does not exist"):
        discover_media([tmp_path / "nope.mp4"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(MediaError, match="no photos or videos under"):
        discover_media([tmp_path / "empty"])
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "readme.txt").write_text("hi")
    with pytest.raises(MediaError, match="no photos or videos under"):
        discover_media([tmp_path / "text"])
    with pytest.raises(MediaError, match="at least one"):
        discover_media([])
    # one bad path among good ones is still an error (nothing is silently dropped)
    with pytest.raises(MediaError, match="nope.png"):
        discover_media([_png(tmp_path / "ok.png"), tmp_path / "nope.png"])


def test_a_png_named_mp4_is_a_photo(tmp_path):
    clip = _png(tmp_path / "clip.mp4", value=90)
    (item,) = check_media(discover_media([clip]))
    assert item.kind == "photo"
    (frame,) = list(iter_frames(item))
    assert isinstance(frame, Frame) and (frame.frame, frame.timestamp, frame.source) == (1, 0.0, str(clip))
    assert frame.bgr.shape == (32, 32, 3) and frame.bgr.dtype == np.uint8
    assert abs(float(frame.bgr.mean()) - 90) < 1


def test_a_png_named_mp4_in_a_folder_is_a_photo_too(tmp_path):
    # A folder's entry named like a video but holding an image is a photo, as when given alone.
    (tmp_path / "f").mkdir()
    clip = _png(tmp_path / "f" / "clip.mp4")
    assert [m.kind for m in discover_media([tmp_path / "f"])] == ["photo"]
    assert [m.kind for m in discover_media([clip])] == ["photo"]


# -- checking videos before anything is written ----------------------------------------------------
def test_check_video_reads_count_fps_and_size(numbered):
    (item,) = check_media(discover_media([numbered]))
    assert (item.kind, item.frames, item.size) == ("video", 20, (64, 48))
    assert item.fps == pytest.approx(FPS)


def test_garbage_named_mp4_is_a_media_error(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x01garbage, not a video" * 64)
    (item,) = discover_media([bad])
    assert item.kind == "video"  # not an image, so it must open as a video...
    with pytest.raises(MediaError, match="broken.mp4: not an image Pillow knows and not a video") as info:
        check_media([item])  # ...and it does not
    assert "\n" not in str(info.value)


def test_a_video_of_zero_frames_is_a_media_error(tmp_path):
    empty = empty_video(tmp_path / "empty.avi")
    assert empty.stat().st_size > 0  # the container was written, without a frame
    with pytest.raises(MediaError, match="empty.avi: the video has no frames"):
        check_media(discover_media([empty]))


def test_frame_size_over_the_pixel_limit_is_refused_before_decoding(numbered, monkeypatch):
    import automl.media as media

    reads = []

    class Spy:
        def __init__(self, cap):
            self.cap = cap

        def read(self):
            reads.append(1)
            return self.cap.read()

        def __getattr__(self, name):
            return getattr(self.cap, name)

    real_open = media._open_capture
    monkeypatch.setattr(media, "_open_capture", lambda path: Spy(real_open(path)))
    monkeypatch.setenv("AUTOML_MAX_IMAGE_PIXELS", str(64 * 48 - 1))
    with pytest.raises(ImageTooLargeError, match=r"numbered.avi \(video frames\): image of 64x48 pixels"):
        check_video(MediaInput(numbered, "video"))
    assert reads == []  # refused from the header, no frame decoded
    monkeypatch.setenv("AUTOML_MAX_IMAGE_PIXELS", str(64 * 48))  # exactly at the limit: fine
    assert check_video(MediaInput(numbered, "video")).frames == 20
    assert reads == [1]


def test_photos_are_not_decoded_by_check_media(tmp_path):
    photo = _png(tmp_path / "p.png")
    assert check_media([MediaInput(photo, "photo")]) == [MediaInput(photo, "photo")]


# -- frames ----------------------------------------------------------------------------------------
def test_frames_are_one_based_with_timestamps_from_the_fps(numbered):
    (item,) = check_media(discover_media([numbered]))
    frames = list(iter_frames(item))
    assert [f.frame for f in frames] == list(range(1, 21))
    assert [f.timestamp for f in frames] == pytest.approx([(n - 1) / FPS for n in range(1, 21)])
    assert [frame_number(f.bgr) for f in frames] == list(range(1, 21))  # in order, none skipped
    assert all(f.bgr.shape == (48, 64, 3) and f.bgr.dtype == np.uint8 for f in frames)
    assert {f.source for f in frames} == {str(numbered)}


@pytest.mark.parametrize("step", [2, 3, 7, 20, 50])
def test_step_keeps_frames_1_then_every_step(numbered, step):
    (item,) = check_media(discover_media([numbered]))
    frames = list(iter_frames(item, step))
    want = list(range(1, 21, step))
    assert [f.frame for f in frames] == want
    assert [frame_number(f.bgr) for f in frames] == want  # the pixels are those of that frame
    assert [f.timestamp for f in frames] == pytest.approx([(n - 1) / FPS for n in want])


def test_an_unreadable_photo_gives_no_frame(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(_png(tmp_path / "ok.png").read_bytes()[:60])  # a PNG header, then nothing
    (item,) = discover_media([broken])
    assert item.kind == "photo" and list(iter_frames(item)) == []
