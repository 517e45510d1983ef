"""Faces in a frame, and the same face across frames: detection plus light IoU tracking.

OpenFace gives one face per video and no AUs for the others (its issue #379); here every face of
a frame is a row. A face keeps its ``face_id`` across frames by greedy intersection-over-union
matching of each frame's detections against the live tracks: the pair with the largest overlap
(at least ``min_iou``) is matched first, so two faces side by side never swap ids while they do
not overlap. A track not seen for ``forget_after`` frames is dropped; a face that comes back
later gets a new id (re-identification would need an identity model, which this is not).

Detection is OpenCV's Haar cascade (:class:`hashing.stream.FaceDetector`, the one the index
uses), on a copy of the frame shrunk to ``detect_side`` pixels on its longer side, and on every
``detect_every``-th frame: in between, each track is reported at its last detected box with
``detected=False``, which is what makes detection cost a fraction of the frames' count (see
BENCHMARKS.md, "predict").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from automl.errors import UserError

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class TrackedFace:
    """One face of one frame: ``box`` is the detector's ``(x, y, w, h)`` in frame pixels."""

    face_id: int
    box: Box
    confidence: float
    detected: bool = True


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every ``x, y, w, h`` box of ``a`` (N, 4) with every one of ``b``
    (M, 4): (N, M)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    w = np.clip(np.minimum(ax2[:, None], bx2[None]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(ay2[:, None], by2[None]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = w * h
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def suppress_nested(
    boxes: np.ndarray, scores: np.ndarray, overlap: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Drop a box when at least ``overlap`` of the smaller of it and a better-scored box lies in
    both: Haar's cascade often reports one face twice, at two scales one inside the other (IoU
    alone misses a small box inside a large one), and each would become a row and a track."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    if len(boxes) < 2:
        return boxes, scores
    order = np.argsort(-scores, kind="stable")
    x2, y2 = boxes[:, 0] + boxes[:, 2], boxes[:, 1] + boxes[:, 3]
    area = boxes[:, 2] * boxes[:, 3]
    kept: list[int] = []
    for i in order:
        ok = True
        for j in kept:
            w = min(x2[i], x2[j]) - max(boxes[i, 0], boxes[j, 0])
            h = min(y2[i], y2[j]) - max(boxes[i, 1], boxes[j, 1])
            if w > 0 and h > 0 and w * h >= overlap * min(area[i], area[j]):
                ok = False
                break
        if ok:
            kept.append(int(i))
    keep = np.asarray(sorted(kept))
    return boxes[keep], scores[keep]


def greedy_match(overlap: np.ndarray, min_iou: float) -> list[tuple[int, int]]:
    """``(row, col)`` pairs, largest overlap first, each row and column used once, overlap >= min_iou."""
    pairs: list[tuple[int, int]] = []
    if overlap.size == 0:
        return pairs
    used_r: set[int] = set()
    used_c: set[int] = set()
    order = np.argsort(-overlap, axis=None, kind="stable")
    for flat in order:
        r, c = divmod(int(flat), overlap.shape[1])
        if overlap[r, c] < min_iou:
            break
        if r in used_r or c in used_c:
            continue
        pairs.append((r, c))
        used_r.add(r)
        used_c.add(c)
    return pairs


@dataclass
class _Track:
    face_id: int
    box: np.ndarray
    confidence: float
    last_seen: int


def whole_number(value: object, name: str, minimum: int, *, label: str | None = None) -> int:
    """``value`` as an int >= ``minimum``; anything else (a bool, None, 2.5, "3") is a one-line
    :class:`UserError` about the parameter ``name`` (called ``label`` in the message)."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or int(value) != value or value < minimum:  # type: ignore[call-overload,operator]
        raise UserError(f"{label or name} must be a whole number >= {minimum}, not {value!r}", argument=name)
    return int(value)  # type: ignore[call-overload]


def check_tracking(detect_every: int, detect_side: int | None, forget_after: int, min_iou: float) -> None:
    """One-line errors for tracking settings a user can get wrong."""
    whole_number(detect_every, "detect_every", 1)
    if detect_side is not None and detect_side != 0:
        number = isinstance(detect_side, int | float) and not isinstance(detect_side, bool)
        if not number or int(detect_side) != detect_side or detect_side < 48:
            raise UserError(
                f"detect_side must be at least 48 pixels (or 0 / None: full frames), not {detect_side!r}",
                argument="detect_side",
            )
    whole_number(forget_after, "forget_after", 1, label="forget_after (frames)")
    if isinstance(min_iou, bool) or not isinstance(min_iou, int | float) or not 0.0 < float(min_iou) <= 1.0:
        raise UserError(f"min_iou must be in (0, 1], not {min_iou!r}", argument="min_iou")


class FaceTracker:
    """Detect (every ``detect_every``-th frame) and track the faces of one video.

    ``detector``: anything with ``scored_boxes(bgr, max_side) -> (boxes, scores)``
    (:class:`hashing.stream.FaceDetector` by default). One tracker per video: ids start at 0.
    """

    def __init__(
        self,
        detector: object | None = None,
        *,
        detect_every: int = 1,
        detect_side: int | None = 640,
        forget_after: int = 30,
        min_iou: float = 0.3,
    ) -> None:
        check_tracking(detect_every, detect_side, forget_after, min_iou)
        if detector is None:
            from hashing.stream import FaceDetector

            detector = FaceDetector()
        self.detector = detector
        self.detect_every, self.detect_side = int(detect_every), detect_side
        self.forget_after, self.min_iou = int(forget_after), float(min_iou)
        self._tracks: list[_Track] = []
        self._next_id = 0
        self._frame = -1
        self._last_detection = -1
        self.detections = 0  # frames searched by the detector (the cost that detect_every divides)

    def detect(self, bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.detections += 1
        return suppress_nested(*self.detector.scored_boxes(bgr, self.detect_side))  # type: ignore[attr-defined]

    def update(self, bgr: np.ndarray) -> list[TrackedFace]:
        """The faces of the next frame, by ``face_id``."""
        self._frame += 1
        if self._frame % self.detect_every:
            # between detections: every track at its last box (seen at the last detection frame)
            return [
                TrackedFace(t.face_id, tuple(float(v) for v in t.box), t.confidence, detected=False)  # type: ignore[arg-type]
                for t in self._tracks
                if t.last_seen == self._last_detection
            ]
        self._last_detection = self._frame
        boxes, scores = self.detect(bgr)
        self._tracks = [t for t in self._tracks if self._frame - t.last_seen <= self.forget_after]
        # tracks seen at the previous detection first, then older ones for what is left: a face
        # is matched to its own recent track rather than to a stale one it happens to overlap
        matched: set[int] = set()
        recent = max((t.last_seen for t in self._tracks), default=-1)
        for group in ([t for t in self._tracks if t.last_seen == recent],
                      [t for t in self._tracks if t.last_seen != recent]):  # fmt: skip
            free = [c for c in range(len(boxes)) if c not in matched]
            if not group or not free:
                continue
            old = np.stack([t.box for t in group])
            for r, c in greedy_match(iou(old, boxes[free]), self.min_iou):
                t, k = group[r], free[c]
                t.box, t.confidence, t.last_seen = boxes[k], float(scores[k]), self._frame
                matched.add(k)
        # new faces get ids in reading order (left to right, then top to bottom)
        for c in sorted(
            (c for c in range(len(boxes)) if c not in matched), key=lambda c: (boxes[c, 0], boxes[c, 1])
        ):
            self._tracks.append(_Track(self._next_id, boxes[c], float(scores[c]), self._frame))
            self._next_id += 1
        seen = sorted((t for t in self._tracks if t.last_seen == self._frame), key=lambda t: t.face_id)
        return [TrackedFace(t.face_id, tuple(float(v) for v in t.box), t.confidence) for t in seen]  # type: ignore[arg-type]


def photo_faces(detector: object, bgr: np.ndarray, detect_side: int | None) -> list[TrackedFace]:
    """The faces of one photo, ids 0.. in reading order (left to right, then top to bottom)."""
    boxes, scores = suppress_nested(*detector.scored_boxes(bgr, detect_side))  # type: ignore[attr-defined]
    order = sorted(range(len(boxes)), key=lambda i: (boxes[i, 0], boxes[i, 1]))
    return [TrackedFace(k, tuple(float(v) for v in boxes[i]), float(scores[i])) for k, i in enumerate(order)]  # type: ignore[arg-type]
