"""automl.face_tracking: IoU, greedy matching and the tracker's ids, with a scripted detector."""

from __future__ import annotations

import numpy as np
import pytest

from automl.errors import UserError
from automl.face_tracking import (
    FaceTracker,
    TrackedFace,
    check_tracking,
    greedy_match,
    iou,
    photo_faces,
    suppress_nested,
)

BLANK = np.zeros((10, 10, 3), np.uint8)


class ScriptedDetector:
    """``scored_boxes`` returns the next scripted list of boxes (score 0.9, or given as a 5th value)."""

    def __init__(self, script):
        self.script = list(script)
        self.calls: list[int] = []  # the 0-based frame index of every call (from the frame's pixel)
        self.sides: list[int | None] = []

    def scored_boxes(self, bgr, max_side):
        self.calls.append(int(bgr[0, 0, 0]))
        self.sides.append(max_side)
        boxes = self.script.pop(0) if self.script else []
        arr = np.asarray([b[:4] for b in boxes], np.float64).reshape(-1, 4)
        scores = np.asarray([b[4] if len(b) > 4 else 0.9 for b in boxes], np.float64)
        return arr, scores


def frame(i: int) -> np.ndarray:
    f = BLANK.copy()
    f[0, 0, 0] = i
    return f


def run(tracker: FaceTracker, n: int) -> list[list[TrackedFace]]:
    return [tracker.update(frame(i)) for i in range(n)]


def ids_at(faces: list[TrackedFace]) -> dict[int, float]:
    """face_id -> the box's x."""
    return {f.face_id: f.box[0] for f in faces}


# -- iou ---------------------------------------------------------------------------------------
def test_iou_of_hand_computed_boxes():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([
        [0, 0, 10, 10],    # the same box: 1
        [5, 0, 10, 10],    # half of each: 50 / 150
        [5, 5, 10, 10],    # a quarter: 25 / 175
        [0, 0, 5, 5],      # inside: 25 / 100
        [10, 0, 10, 10],   # touching edges: 0
        [20, 20, 4, 4],    # apart: 0
        [-5, -5, 30, 30],  # containing: 100 / 900
    ])  # fmt: skip
    got = iou(a, b)
    assert got.shape == (1, 7)
    assert got[0] == pytest.approx([1.0, 1 / 3, 1 / 7, 0.25, 0.0, 0.0, 1 / 9])


def test_iou_is_symmetric_and_shaped_n_by_m():
    a = np.array([[0, 0, 10, 10], [5, 5, 10, 10], [100, 100, 2, 3]])
    b = np.array([[5, 0, 10, 10], [0, 0, 20, 20]])
    assert iou(a, b).shape == (3, 2)
    np.testing.assert_allclose(iou(a, b), iou(b, a).T)
    assert iou(a, b)[1, 1] == pytest.approx(100 / 400)
    assert iou(np.zeros((0, 4)), b).shape == (0, 2) and iou(a, np.zeros((0, 4))).shape == (3, 0)
    assert iou([[0, 0, 0, 0]], [[0, 0, 0, 0]])[0, 0] == 0.0  # empty boxes: no overlap, no nan
    assert iou([1, 2, 3, 4], [1, 2, 3, 4])[0, 0] == pytest.approx(1.0)  # one box, not (N, 4)


# -- greedy_match ----------------------------------------------------------------------------------
def test_greedy_match_takes_the_largest_overlap_first():
    overlap = np.array([[0.9, 0.8], [0.85, 0.1]])
    # (0, 0) first; then row 0 and column 0 are used, so (1, 1) is the only pair left
    assert greedy_match(overlap, 0.05) == [(0, 0), (1, 1)]
    assert greedy_match(overlap, 0.3) == [(0, 0)]  # 0.1 is below the threshold
    overlap = np.array([[0.2, 0.7, 0.0], [0.6, 0.65, 0.0], [0.0, 0.0, 0.5]])
    assert greedy_match(overlap, 0.3) == [(0, 1), (1, 0), (2, 2)]


def test_greedy_match_threshold_is_inclusive_and_empty_inputs_match_nothing():
    assert greedy_match(np.array([[0.3]]), 0.3) == [(0, 0)]
    assert greedy_match(np.array([[0.29]]), 0.3) == []
    assert greedy_match(np.zeros((0, 3)), 0.3) == [] and greedy_match(np.zeros((2, 0)), 0.3) == []
    # more tracks than detections and the other way round: each used at most once
    assert greedy_match(np.array([[0.9], [0.8]]), 0.3) == [(0, 0)]
    assert greedy_match(np.array([[0.5, 0.9]]), 0.3) == [(0, 1)]


# -- the tracker -----------------------------------------------------------------------------------
def test_ids_stay_with_moving_faces_and_new_faces_get_the_next_id():
    script = [
        [(10, 10, 40, 40)],
        [(14, 10, 40, 40)],
        [(18, 11, 40, 40), (200, 10, 40, 40)],   # a second face comes in
        [(204, 12, 40, 40), (22, 12, 40, 40)],   # detector order is not reading order
        [(26, 12, 40, 40)],                      # the second one is missed once
        [(30, 12, 40, 40), (212, 12, 40, 40), (400, 50, 30, 30)],  # and a third one comes in
    ]  # fmt: skip
    tracker = FaceTracker(ScriptedDetector(script), detect_side=None)
    got = [ids_at(f) for f in run(tracker, len(script))]
    assert got == [{0: 10}, {0: 14}, {0: 18, 1: 200}, {0: 22, 1: 204}, {0: 26}, {0: 30, 1: 212, 2: 400}]
    assert tracker.detections == 6


def test_new_faces_in_one_frame_get_ids_in_reading_order():
    script = [[(300, 10, 40, 40), (10, 200, 40, 40), (10, 10, 40, 40)]]
    (faces,) = run(FaceTracker(ScriptedDetector(script)), 1)
    assert [(f.face_id, f.box[:2]) for f in faces] == [(0, (10, 10)), (1, (10, 200)), (2, (300, 10))]
    assert all(f.detected and f.confidence == pytest.approx(0.9) for f in faces)


def test_two_faces_side_by_side_never_swap_ids():
    # two faces walk towards each other (never overlapping); the detector lists them in a random order
    rng = np.random.default_rng(0)
    script = []
    for i in range(25):
        boxes = [(10 + 3 * i, 20, 50, 50, 0.8), (200 - 3 * i, 22, 50, 50, 0.7)]
        script.append([boxes[k] for k in rng.permutation(2)])
    tracker = FaceTracker(ScriptedDetector(script))
    for i, faces in enumerate(run(tracker, 25)):
        assert ids_at(faces) == {0: 10 + 3 * i, 1: 200 - 3 * i}
        assert [f.confidence for f in faces] == pytest.approx([0.8, 0.7])


def test_a_track_unseen_for_more_than_forget_after_frames_is_dropped():
    a, b = (10, 10, 40, 40), (100, 10, 40, 40)
    # face A at frame 0, gone at 1 and 2, back at 3 (3 frames later: more than forget_after=2)
    tracker = FaceTracker(ScriptedDetector([[a, b], [b], [b], [a, b]]), forget_after=2)
    got = [ids_at(f) for f in run(tracker, 4)]
    assert got == [{0: 10, 1: 100}, {1: 100}, {1: 100}, {1: 100, 2: 10}]
    # back after exactly forget_after frames: still the same track
    tracker = FaceTracker(ScriptedDetector([[a, b], [b], [a, b]]), forget_after=2)
    assert [ids_at(f) for f in run(tracker, 3)] == [{0: 10, 1: 100}, {1: 100}, {0: 10, 1: 100}]


def test_a_face_that_jumps_is_a_new_face():
    # no overlap with the old box: a new id (the tracker does not re-identify)
    tracker = FaceTracker(ScriptedDetector([[(10, 10, 40, 40)], [(300, 10, 40, 40)]]))
    assert [ids_at(f) for f in run(tracker, 2)] == [{0: 10}, {1: 300}]
    # min_iou decides: IoU of these two boxes is 20*40 / (2*1600 - 800) = 1/3
    script = [[(0, 0, 40, 40)], [(20, 0, 40, 40)]]
    assert [ids_at(f) for f in run(FaceTracker(ScriptedDetector(script), min_iou=0.3), 2)][1] == {0: 20}
    assert [ids_at(f) for f in run(FaceTracker(ScriptedDetector(script), min_iou=0.4), 2)][1] == {1: 20}


def test_detect_every_3_detects_on_frames_0_3_6_and_holds_faces_in_between():
    a = [(10 + 5 * k, 10, 40, 40) for k in range(3)]
    det = ScriptedDetector([[a[0]], [a[1]], [a[2]]])
    tracker = FaceTracker(det, detect_every=3, detect_side=320)
    got = run(tracker, 8)
    assert det.calls == [0, 3, 6] and tracker.detections == 3
    assert det.sides == [320, 320, 320]
    assert [[(f.face_id, f.box[0], f.detected) for f in faces] for faces in got] == [
        [(0, 10, True)], [(0, 10, False)], [(0, 10, False)],
        [(0, 15, True)], [(0, 15, False)], [(0, 15, False)],
        [(0, 20, True)], [(0, 20, False)],
    ]  # fmt: skip


def test_detect_every_holds_only_the_faces_of_the_last_detection():
    a, b = (10, 10, 40, 40), (100, 10, 40, 40)
    det = ScriptedDetector([[a, b], [b]])
    got = run(FaceTracker(det, detect_every=2), 4)
    assert [sorted(ids_at(f)) for f in got] == [[0, 1], [0, 1], [1], [1]]
    assert [f.detected for f in got[3]] == [False]


def test_a_frame_without_faces_is_an_empty_list():
    det = ScriptedDetector([[], [(1, 1, 5, 5)], []])
    assert [len(f) for f in run(FaceTracker(det), 3)] == [0, 1, 0]


def test_photo_faces_are_numbered_in_reading_order():
    det = ScriptedDetector([[(200, 10, 30, 30, 0.6), (10, 10, 30, 30, 0.7)]])
    faces = photo_faces(det, frame(0), 640)
    assert [(f.face_id, f.box[0], f.confidence) for f in faces] == [(0, 10, 0.7), (1, 200, 0.6)]
    assert det.sides == [640]
    assert photo_faces(ScriptedDetector([[]]), frame(0), None) == []


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"detect_every": 0}, "detect_every"),
        ({"detect_every": -1}, "detect_every"),
        ({"detect_every": 2.5}, "detect_every"),
        ({"detect_every": True}, "detect_every"),
        ({"detect_side": 10}, "detect_side"),
        ({"detect_side": -5}, "detect_side"),
        ({"forget_after": 0}, "forget_after"),
        ({"forget_after": 1.5}, "forget_after"),
        ({"min_iou": 0.0}, "min_iou"),
        ({"min_iou": 1.5}, "min_iou"),
        ({"min_iou": -0.1}, "min_iou"),
    ],
)
def test_bad_settings_are_user_errors(kwargs, needle):
    with pytest.raises(UserError, match=needle) as info:
        FaceTracker(ScriptedDetector([]), **kwargs)
    assert info.value.argument == needle
    settings = {"detect_every": 1, "detect_side": 640, "forget_after": 30, "min_iou": 0.3, **kwargs}
    with pytest.raises(UserError, match=needle):
        check_tracking(**settings)


def test_good_settings_pass():
    check_tracking(1, None, 1, 1.0)
    check_tracking(10, 48, 100, 0.01)


# -- nested duplicates and stale tracks ---------------------------------------------------------------
def test_a_box_inside_a_better_one_is_dropped_and_separate_faces_are_kept():
    boxes = np.array([[100, 100, 120, 120], [90, 90, 150, 150], [400, 100, 120, 120]], np.float64)
    kept, scores = suppress_nested(boxes, np.array([0.95, 0.90, 0.8]))
    assert kept.tolist() == [[100, 100, 120, 120], [400, 100, 120, 120]] and scores.tolist() == [0.95, 0.8]
    kept, _ = suppress_nested(boxes, np.array([0.5, 0.90, 0.8]))  # the better-scored one stays
    assert kept.tolist() == [[90, 90, 150, 150], [400, 100, 120, 120]]
    side_by_side = np.array([[0, 0, 100, 100], [80, 0, 100, 100]], np.float64)  # 20% overlap
    assert len(suppress_nested(side_by_side, np.array([0.9, 0.9]))[0]) == 2


def test_a_duplicate_detection_makes_no_second_track():
    a, dup = (100, 100, 120, 120, 0.9), (92, 92, 136, 136, 0.95)
    tracker = FaceTracker(ScriptedDetector([[a], [a, dup], [a]]))
    assert [sorted(ids_at(f)) for f in run(tracker, 3)] == [[0], [0], [0]]


def test_a_face_keeps_its_recent_track_over_a_stale_one_it_overlaps():
    # track 0 was last seen at frame 0 where the face is now; track 1 followed the face since
    old, moved = (100, 100, 100, 100), (130, 100, 100, 100)
    script = [[old], [(400, 300, 100, 100)], [moved], [(115, 100, 100, 100)]]
    tracker = FaceTracker(ScriptedDetector(script), forget_after=10)
    ids = [ids_at(f) for f in run(tracker, 4)]
    assert ids[2] == {0: 130} and ids[3] == {0: 115}
