"""The split fingerprint an index records for its synthetic faces, and the dashboard checks."""

from __future__ import annotations

import numpy as np
import pytest

from automl.data import load_data
from automl.data.synth_source import pixels_digest


def test_the_digest_is_that_of_the_concatenated_split() -> None:
    ds = load_data("synth:fer", image_size=12, channels=1, n=30, seed=2)
    train, test = ds.train_x.numpy(), ds.test_x.numpy()
    whole = np.concatenate([train, test])
    assert pixels_digest([train, test]) == pixels_digest([whole])  # "all" = train then test
    again = load_data("synth:fer", image_size=12, channels=1, n=30, seed=2)
    assert pixels_digest([again.test_x.numpy()]) == pixels_digest([test])  # deterministic


def test_any_other_faces_give_another_digest() -> None:
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (6, 1, 8, 8), dtype=np.uint8)
    base = pixels_digest([faces])
    one_pixel = faces.copy()
    one_pixel[3, 0, 4, 4] ^= 1
    assert pixels_digest([one_pixel]) != base
    assert pixels_digest([faces[::-1]]) != base  # the order matters: rows are looked up by index
    assert pixels_digest([faces.reshape(6, 1, 4, 16)]) != base  # same bytes, other faces
    assert pixels_digest([faces[:5]]) != base


def test_what_is_not_a_split_of_faces_is_refused() -> None:
    with pytest.raises(ValueError, match="no faces"):
        pixels_digest([])
    with pytest.raises(ValueError, match="uint8"):
        pixels_digest([np.zeros((2, 1, 4, 4), np.float32)])
    with pytest.raises(ValueError, match="after faces of"):
        pixels_digest([np.zeros((2, 1, 4, 4), np.uint8), np.zeros((2, 3, 4, 4), np.uint8)])
