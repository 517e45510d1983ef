"""A user's media, frame by frame: photos, folders and videos, decoded as they are read.

``automl predict`` and ``automl index add --video`` take what users have: photo files, folders of
them, and video files. This module finds them (:func:`discover_media`), checks every one *before*
anything is written (:func:`check_media`: a corrupt video, a video of zero frames, a frame size
over the pixel limit are one-line :class:`MediaError`\\ s), and streams their frames
(:func:`iter_frames`): a video is read by OpenCV's ``VideoCapture`` one frame at a time, so memory
does not grow with its length.

What a file is follows its *content*, not only its name: a file Pillow recognises as an image is a
photo even when it is called ``clip.mp4`` (one frame, ``frame`` 1, ``timestamp`` 0), and anything
else must open as a video. Photos go through :mod:`hashing.image_io` (the one decode path: pixel
limit from the header, EXIF orientation, 16-bit scaling, alpha over white); a video's frame size is
checked against the same limit from its header before its first frame is decoded.

Frame numbers are 1-based and timestamps ``(frame - 1) / fps`` seconds, as in OpenFace's CSVs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from automl.errors import UserError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".tif", ".tiff", ".webp"})
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ogv"}
)
MediaKind = Literal["photo", "video"]


class MediaError(UserError):
    """An input that cannot be read as a photo or a video (one line: which file and why)."""


@dataclass(frozen=True)
class MediaInput:
    """One input file and what it is; ``frames``/``fps``/``size`` are known for videos once checked."""

    path: Path
    kind: MediaKind
    frames: int | None = None
    fps: float | None = None
    size: tuple[int, int] | None = None  # (width, height)


@dataclass
class Frame:
    """One decoded frame (a photo is a one-frame input): BGR uint8 ``(H, W, 3)``."""

    source: str
    frame: int
    timestamp: float
    bgr: np.ndarray


def _cv2():
    try:
        import cv2
    except ImportError:  # the 'faces' extra
        raise MediaError(
            "reading videos and detecting faces needs OpenCV: pip install -e '.[faces]'"
        ) from None
    return cv2


def is_image_file(path: Path) -> bool:
    """True when Pillow recognises the file's header as an image (nothing is decoded)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path):
            return True
    except (UnidentifiedImageError, OSError, ValueError):
        return False
    except Image.DecompressionBombError:  # an image, and too large: the photo path says so
        return True


def discover_media(inputs: Sequence[str | Path]) -> list[MediaInput]:
    """Every input as photos and videos: a file is one input (a photo when its content is an image,
    else a video); a folder gives its photo and video files (by extension, recursive, sorted).
    A missing path or a folder with no media is a :class:`MediaError`."""
    if not inputs:
        raise MediaError("give at least one photo, folder or video")
    found: list[MediaInput] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_file():  # an image's name or content makes a photo (an unreadable one is skipped)
            photo = p.suffix.lower() in IMAGE_EXTENSIONS or is_image_file(p)
            found.append(MediaInput(p, "photo" if photo else "video"))
        elif p.is_dir():
            files = sorted(
                f for f in p.rglob("*")
                if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS
            )  # fmt: skip
            if not files:
                raise MediaError(
                    f"no photos or videos under {p} (photos: {', '.join(sorted(IMAGE_EXTENSIONS))}; "
                    f"videos: {', '.join(sorted(VIDEO_EXTENSIONS))})"
                )
            # by name, but a "video" whose content is an image is a photo, as for a file given alone
            for f in files:
                video = f.suffix.lower() in VIDEO_EXTENSIONS and not is_image_file(f)
                found.append(MediaInput(f, "video" if video else "photo"))
        else:
            raise MediaError(f"{p} does not exist (give photo files, folders or video files)")
    return found


def _open_capture(path: Path):
    # FFmpeg's own log lines ("moov atom not found") would precede our one-line error: OpenCV
    # reads this before its first capture opens; a user's own setting wins.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    cv2 = _cv2()
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise MediaError(
            f"{path}: not an image Pillow knows and not a video OpenCV can open (corrupt, or an "
            "unsupported container/codec)"
        )
    return cap


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """File descriptor 2 sent to /dev/null for a block: OpenCV's built-in readers print their
    parse errors there themselves ("Unexpected element..."), around our own one-line error.
    Only for short calls on the main thread, before any worker thread writes to stderr."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real stderr (embedded interpreters)
        yield
        return
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def check_video(item: MediaInput) -> MediaInput:
    """Open a video, check its frame size against the pixel limit and decode its first frame;
    returns the input with its frame count, fps and size. Zero frames or an undecodable first
    frame is a :class:`MediaError`, before anything is written."""
    from hashing.image_limits import check_pixels

    cv2 = _cv2()
    with native_stderr_silenced():
        cap = _open_capture(item.path)
    try:
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if width > 0 and height > 0:
            check_pixels(width, height, f"{item.path} (video frames)")
        with native_stderr_silenced():
            ok, first = cap.read()
        if not ok or first is None or first.size == 0:
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            why = "has no frames" if count <= 0 else "has frames OpenCV cannot decode (corrupt?)"
            raise MediaError(f"{item.path}: the video {why}")
        height, width = first.shape[:2]
        check_pixels(width, height, f"{item.path} (video frames)")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        frames = max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 1)
    finally:
        cap.release()
    return MediaInput(
        item.path, "video", frames, fps if np.isfinite(fps) and fps > 0 else None, (width, height)
    )


def check_media(items: Sequence[MediaInput]) -> list[MediaInput]:
    """Every video checked (:func:`check_video`); photos are checked as they are read (an
    unreadable photo is skipped and reported, as ``automl index`` does)."""
    return [check_video(m) if m.kind == "video" else m for m in items]


def read_photo(path: Path) -> np.ndarray | None:
    """Full-resolution upright BGR uint8 of a photo, None when it cannot be decoded; too many
    pixels raises :class:`~hashing.image_limits.ImageTooLargeError` before decoding."""
    from hashing.stream import read_image

    return read_image(path)


def iter_frames(item: MediaInput, step: int = 1) -> Iterator[Frame]:
    """The frames of one input, decoded one at a time (a photo: one frame; an unreadable photo:
    none); ``step`` > 1 keeps every ``step``-th video frame (1, 1 + step, ...), the others are
    only demuxed (``grab``), not decoded to pixels. A video that stops before the frame count
    its header gave simply ends; the caller compares :attr:`Frame.frame` with
    :attr:`MediaInput.frames` to report it."""
    source = str(item.path)
    if item.kind == "photo":
        bgr = read_photo(item.path)
        if bgr is not None:
            yield Frame(source, 1, 0.0, bgr)
        return
    cv2 = _cv2()
    cap = _open_capture(item.path)
    fps = item.fps
    try:
        n = 0
        while True:
            if n % step:
                n += 1
                if not cap.grab():
                    return
                continue
            ok, bgr = cap.read()
            if not ok or bgr is None:
                return
            n += 1
            if bgr.ndim == 2:
                bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
            t = (n - 1) / fps if fps else float(cap.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0
            yield Frame(source, n, round(t, 6), bgr)
    finally:
        cap.release()
