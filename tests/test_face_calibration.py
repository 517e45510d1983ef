"""Where the detector's box falls on training images, and the crop ``predict`` takes from it."""

from __future__ import annotations

import numpy as np
import pytest

from automl.face_calibration import calibrated_box, check_face_crop, crop_calibration
from automl.face_stream import crop_face
from hashing import image_io

cv2 = pytest.importorskip("cv2")


def test_synthetic_tiles_calibrate_the_same_at_every_size():
    from automl.data.synthface.generate import synth_expressions

    got = []
    for size in (24, 64):
        tiles = synth_expressions(120, size=size, channels=1, seed=1).images
        crop = crop_calibration(tiles, sample=120)
        assert crop is not None and crop["found"] >= 12 and crop["sampled"] == 120
        assert 1.0 < crop["scale"] < 1.5 and abs(crop["dx"]) < 0.3 and abs(crop["dy"]) < 0.3
        got.append(crop)
    assert abs(got[0]["scale"] - got[1]["scale"]) < 0.1  # a property of the framing, not the size


def test_images_without_faces_give_no_calibration():
    noise = np.random.default_rng(0).integers(0, 255, (40, 1, 24, 24), dtype=np.uint8)
    assert crop_calibration(noise) is None
    assert crop_calibration(np.zeros((0, 1, 24, 24), np.uint8)) is None


def test_the_calibrated_crop_is_the_training_frame_around_the_box():
    crop = {"dx": -0.1, "dy": 0.05, "scale": 1.2}
    assert calibrated_box((100.0, 50.0, 80.0, 80.0), crop) == pytest.approx((92.0, 54.0, 96.0, 96.0))
    bgr = np.random.default_rng(1).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    got = crop_face(bgr, (100, 50, 80, 80), 32, 3, face_crop=crop)
    want = image_io.fit(np.ascontiguousarray(bgr[:, :, ::-1]), 32, 3, (92.0, 54.0, 96.0, 96.0))
    assert np.abs(got - want.astype(np.float32) / 255.0).max() < 1e-6


@pytest.mark.parametrize(
    "bad", [None, "x", {"dx": 0}, {"dx": "a", "dy": 0, "scale": 1}, {"dx": 0, "dy": 0, "scale": 0},
            {"dx": float("nan"), "dy": 0, "scale": 1}]  # fmt: skip
)
def test_a_malformed_face_crop_is_ignored(bad):
    assert check_face_crop(bad) is None


def test_predict_crops_with_the_sidecars_face_crop(tmp_path):
    from automl.prediction import predict
    from tests.face_media import two_faces_photo, write_tiny_model

    photo = tmp_path / "pair.png"
    cv2.imwrite(str(photo), two_faces_photo())
    plain = write_tiny_model(tmp_path / "plain.pt")
    wide = {"face_crop": {"dx": -0.3, "dy": -0.3, "scale": 1.6}}
    framed = write_tiny_model(tmp_path / "framed.pt", extra=wide)
    a = predict(plain, photo, out=tmp_path / "a.csv", device="cpu")
    b = predict(framed, photo, out=tmp_path / "b.csv", device="cpu")
    assert a.settings["crop"] == "box + 10% margin" and b.settings["crop"].startswith("training framing")
    pa, pb = (tmp_path / "a.csv").read_text(), (tmp_path / "b.csv").read_text()
    assert pa.splitlines()[1].split(",")[:11] == pb.splitlines()[1].split(",")[:11]  # same faces
    assert pa != pb  # other crops, other predictions


def test_bench_crops_reports_every_crop_rule(tmp_path):
    from automl.bench_crops import crop_bench, crop_table
    from automl.data.synthface.facs import FER7
    from automl.errors import UserError
    from tests.face_media import write_tiny_model

    model = write_tiny_model(tmp_path / "m.pt", image_size=24, class_names=FER7,
                             extra={"face_crop": {"dx": -0.1, "dy": 0.0, "scale": 1.2}})  # fmt: skip
    report = crop_bench(model, n=40, tile=96)
    crops = [r["crop"] for r in report["rows"]]
    assert crops[:3] == ["bare tiles (--no-detect: the training framing)", "detector box + 10% margin",
                         "training framing, from the sidecar"]  # fmt: skip
    assert 0 < report["detected"] <= 40 and 0 < report["chance"] <= 1
    assert all(0 <= r["accuracy"] <= 1 for r in report["rows"])
    assert crop_table(report)[1] == ["crop", "faces", "accuracy"]
    with pytest.raises(UserError, match="7 or 8 classes"):
        crop_bench(write_tiny_model(tmp_path / "three.pt"), n=10)
