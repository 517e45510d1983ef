"""Media in, batches of face crops out, as a stream: the shared path of ``predict`` and the index.

One producer thread decodes frames (:mod:`automl.media`), finds and tracks faces
(:mod:`automl.face_tracking`) and crops each face the way the model's inputs were made (the
detector's box plus a 10% margin, its centre square, bilinear resize to the sidecar's
``image_size`` and channels: :func:`hashing.image_io.fit`, the data readers' rule). The caller's
thread takes the crops from a bounded queue, batches them *across frames and inputs*
(``batch_size``) and runs the network while the producer works on the next frames: OpenCV, Pillow
and torch release the GIL, so decoding and detection overlap the forward pass. The queue holds at
most a few batches, so memory is the same for a 1-minute and a 10-minute video
(BENCHMARKS.md, "predict").

Every frame comes out in order, a frame with no face as one :class:`FaceCrop` with ``x=None``
(``success`` 0 in OpenFace's CSVs), so a per-frame timeline has no holes.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from automl.face_tracking import FaceTracker, TrackedFace, check_tracking, photo_faces, whole_number
from automl.media import MediaInput, iter_frames

STAGES = ("decode", "detect", "crop", "forward")
DEFAULT_MARGIN = 0.1
PHOTO_DETECT_SIDE = 2048
"""Photos are searched shrunk to this longer side: faces down to ~24 px at that scale (47 px in a
4000x3000 photo) are found, and a photo allowed past the pixel limit does not cost gigabytes (an
81-megapixel one at full size took 5 GB and 34 s)."""


@dataclass(frozen=True)
class StreamSettings:
    """How faces are found and batched (every field is a flag of ``automl predict``)."""

    batch_size: int = 64
    detect: bool = True
    detect_every: int = 1
    detect_side: int | None = 640
    forget_after: int = 30
    min_iou: float = 0.3
    margin: float = DEFAULT_MARGIN  # around the detector's box, a fraction of its size
    face_crop: dict[str, Any] | None = None  # the model's training framing (automl.face_calibration)
    frame_step: int = 1  # videos: every Nth frame only (an index needs no 25 near-copies a second)
    queue_batches: int = 4

    def check(self) -> StreamSettings:
        if self.detect_side == 0:  # the CLI's "full frames"
            object.__setattr__(self, "detect_side", None)
        whole_number(self.batch_size, "batch_size", 1, label="batch size")
        check_tracking(self.detect_every, self.detect_side, self.forget_after, self.min_iou)
        whole_number(self.frame_step, "frame_step", 1, label="frame step")
        return self


@dataclass
class FaceCrop:
    """One face of one frame (``x`` its model input), or a frame without a face (``face`` None)."""

    source: str
    frame: int
    timestamp: float
    face: TrackedFace | None
    x: np.ndarray | None = None


@dataclass
class StreamStats:
    """What the stream read, skipped and spent (seconds per stage, summed over the threads)."""

    inputs: int = 0
    frames: int = 0
    faces: int = 0
    empty_frames: int = 0
    detections: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    truncated: list[tuple[str, int, int]] = field(
        default_factory=list
    )  # (video, frames read, header's count)
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs,
            "frames": self.frames,
            "faces": self.faces,
            "empty_frames": self.empty_frames,
            "detections": self.detections,
            "skipped": [{"source": s, "reason": r} for s, r in self.skipped],
            "truncated": [
                {"source": s, "frames_read": n, "frames_in_header": m} for s, n, m in self.truncated
            ],
            "seconds": {k: round(v, 4) for k, v in self.seconds.items()},
        }


def crop_face(
    bgr: np.ndarray, box: tuple[float, float, float, float] | None, size: int, channels: int,
    margin: float = DEFAULT_MARGIN,
    face_crop: dict[str, Any] | None = None,
) -> np.ndarray:
    """float32 ``(C, S, S)`` in [0, 1] of one face: the training images' framing around the box
    when ``face_crop`` (:mod:`automl.face_calibration`) is given, else the box plus ``margin``;
    then its centre square
    (the whole frame's centre square for ``box=None``), bilinear to ``size``. Only the face's
    square is converted, not the frame (the result equals :func:`hashing.image_io.fit` of the
    whole frame with that box)."""
    from automl.face_calibration import calibrated_box
    from hashing.image_io import crop_rect, fit
    from hashing.stream import rgb_of, with_margin

    h, w = bgr.shape[:2]
    if box is None:
        margin_box = None
    elif face_crop is not None:
        margin_box = calibrated_box(box, face_crop)  # type: ignore[assignment]
    else:
        margin_box = with_margin(tuple(int(v) for v in box), bgr.shape, margin)  # type: ignore[arg-type]
    left, top, right, bottom = crop_rect(w, h, margin_box)
    square = rgb_of(bgr[top:bottom, left:right])
    return fit(square, size, channels).astype(np.float32) / 255.0


_DONE = object()


@dataclass
class _Failed:
    error: BaseException


def _whole_frame(bgr: np.ndarray) -> list[TrackedFace]:
    """``--no-detect``: the frame's centre square (what the model sees), not found by a detector."""
    from hashing.image_io import crop_rect

    left, top, right, bottom = crop_rect(bgr.shape[1], bgr.shape[0])
    return [TrackedFace(0, (float(left), float(top), float(right - left), float(bottom - top)), 1.0, False)]


class _Producer:
    """The decode -> detect -> crop thread; everything it makes goes through ``out``."""

    def __init__(self, media: Sequence[MediaInput], settings: StreamSettings, size: int, channels: int,
                 stats: StreamStats, out: queue.Queue) -> None:  # fmt: skip
        self.media, self.settings, self.size, self.channels = media, settings, size, channels
        self.stats, self.out = stats, out
        self.stop = threading.Event()
        self.detector: Any = None
        if settings.detect:
            from hashing.stream import FaceDetector

            self.detector = FaceDetector()

    def put(self, item: object) -> bool:
        while not self.stop.is_set():
            try:
                self.out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run(self) -> None:
        try:
            for item in self.media:
                if not self._one(item):
                    return
        except BaseException as exc:  # handed to the consumer, which raises it in its own thread
            self.put(_Failed(exc))
        finally:
            self.put(_DONE)

    def _faces(self, item: MediaInput, bgr: np.ndarray, tracker: FaceTracker | None) -> list[TrackedFace]:
        if self.detector is None:
            return _whole_frame(bgr)
        before = time.perf_counter()
        if tracker is not None:
            faces = tracker.update(bgr)
        else:
            # a photo at up to PHOTO_DETECT_SIDE (the small faces of a group photo are found too;
            # detect_side is for the frames of videos), not beyond: memory stays bounded
            faces = photo_faces(self.detector, bgr, PHOTO_DETECT_SIDE)
            self.stats.detections += 1
        self.stats.seconds["detect"] += time.perf_counter() - before
        return faces

    def _one(self, item: MediaInput) -> bool:
        from hashing.image_limits import ImageTooLargeError

        s = self.settings
        tracker = None
        if self.detector is not None and item.kind == "video":
            tracker = FaceTracker(self.detector, detect_every=s.detect_every, detect_side=s.detect_side,
                                  forget_after=s.forget_after, min_iou=s.min_iou)  # fmt: skip
        self.stats.inputs += 1
        frames = iter_frames(item, self.settings.frame_step)
        read = 0
        while True:
            before = time.perf_counter()
            try:
                frame = next(frames, None)
            except ImageTooLargeError as exc:
                self.stats.skipped.append((str(item.path), str(exc).split(": ", 1)[-1]))
                return True
            self.stats.seconds["decode"] += time.perf_counter() - before
            if frame is None:
                break
            read += 1
            self.stats.frames += 1
            faces = self._faces(item, frame.bgr, tracker)
            if not faces:
                self.stats.empty_frames += 1
                if not self.put(FaceCrop(frame.source, frame.frame, frame.timestamp, None)):
                    return False
            for face in faces:
                before = time.perf_counter()
                box = None if self.detector is None else face.box
                x = crop_face(frame.bgr, box, self.size, self.channels, s.margin, s.face_crop)
                self.stats.seconds["crop"] += time.perf_counter() - before
                self.stats.faces += 1
                if not self.put(FaceCrop(frame.source, frame.frame, frame.timestamp, face, x)):
                    return False
        if tracker is not None:
            self.stats.detections += tracker.detections
        if item.kind == "photo" and read == 0:
            self.stats.skipped.append((str(item.path), "unreadable image"))
        if item.kind == "video" and item.frames and read < (item.frames - 1) // s.frame_step:
            # the header's count is an estimate for some containers; one frame short is not a loss
            self.stats.truncated.append((str(item.path), read, int(item.frames)))
        return True


def face_batches(
    media: Sequence[MediaInput],
    run: Callable[[np.ndarray], np.ndarray],
    *,
    image_size: int,
    channels: int,
    settings: StreamSettings | None = None,
    stats: StreamStats | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[tuple[list[FaceCrop], np.ndarray]]:
    """``(crops, outputs)`` in reading order: ``outputs[i]`` is ``run``'s row for the i-th crop
    that has a face (``x`` set); crops without a face are frames with none. ``run`` maps float32
    ``(N, C, S, S)`` to ``(N, K)`` (a model's logits or embeddings). ``progress(n)``: frames done.

    Closing the generator early (or an error in either thread) stops the producer; nothing is
    left running."""
    settings = (settings or StreamSettings()).check()
    stats = stats if stats is not None else StreamStats()
    out: queue.Queue = queue.Queue(maxsize=max(2, settings.queue_batches * settings.batch_size))
    producer = _Producer(media, settings, image_size, channels, stats, out)
    thread = threading.Thread(target=producer.run, name="automl-face-stream", daemon=True)
    thread.start()
    pending: list[FaceCrop] = []
    n_faces = 0
    last_frame: list[tuple[str, int] | None] = [None]

    def flush() -> tuple[list[FaceCrop], np.ndarray]:
        xs = [c.x for c in pending if c.x is not None]
        before = time.perf_counter()
        result = run(np.stack(xs)) if xs else np.zeros((0, 0), np.float32)
        stats.seconds["forward"] += time.perf_counter() - before
        if progress is not None:
            new = 0
            for c in pending:  # frames begun in this batch (a frame's faces may span two)
                if (c.source, c.frame) != last_frame[0]:
                    new, last_frame[0] = new + 1, (c.source, c.frame)
            progress(new)
        return list(pending), result

    try:
        while True:
            got = out.get()
            if got is _DONE:
                break
            if isinstance(got, _Failed):
                raise got.error
            pending.append(got)
            n_faces += got.x is not None
            if n_faces >= settings.batch_size:
                yield flush()
                pending, n_faces = [], 0
        if pending:
            yield flush()
    finally:
        producer.stop.set()
        thread.join(timeout=30)
