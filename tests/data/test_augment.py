"""Batched tensor augmentation: dtype/device/range, each transform, reproducibility."""

from __future__ import annotations

import torch

from automl.data import Augment, to_float


def _batch(n=16, c=1, s=32):
    return torch.randint(0, 256, (n, c, s, s), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)


def test_off_is_to_float():
    x = _batch()
    y = Augment()(x)
    assert y.dtype == torch.float32 and torch.allclose(y, x.float() / 255)
    assert torch.equal(to_float(x), y)
    assert not Augment(None, None, None, None, None, None).active


def test_default_output_shape_range_and_reproducible():
    x = _batch(c=3)
    aug = Augment.full()
    a = aug(x, generator=torch.Generator().manual_seed(1))
    b = aug(x, generator=torch.Generator().manual_seed(1))
    c = aug(x, generator=torch.Generator().manual_seed(2))
    assert a.shape == x.shape and a.dtype == torch.float32 and a.device == x.device
    assert a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_flip_only_mirrors_or_keeps_each_image():
    x = _batch(n=32)
    y = Augment(flip=True)(x, generator=torch.Generator().manual_seed(0))
    xf = x.float() / 255
    same = (y - xf).abs().amax(dim=(1, 2, 3)) < 1e-5
    mirrored = (y - xf.flip(-1)).abs().amax(dim=(1, 2, 3)) < 1e-5
    assert (same | mirrored).all() and same.any() and mirrored.any()


def test_crop_padding_is_an_integer_shift_with_zero_fill():
    x = torch.full((8, 1, 16, 16), 200, dtype=torch.uint8)
    y = Augment(crop_padding=3)(x, generator=torch.Generator().manual_seed(0))
    vals = set(torch.unique((y * 255).round()).tolist())
    assert vals <= {0.0, 200.0}  # no interpolation blur: whole-pixel shifts
    assert (y == 0).any()


def test_cutout_and_brightness():
    x = torch.full((8, 1, 24, 24), 128, dtype=torch.uint8)
    y = Augment(cutout=6)(x, generator=torch.Generator().manual_seed(0))
    holes = (y == 0).sum(dim=(1, 2, 3))
    assert (holes > 0).all() and (holes <= 36).all()
    z = Augment(brightness=0.3)(x, generator=torch.Generator().manual_seed(0))
    means = z.mean(dim=(1, 2, 3))
    assert means.std() > 0.01 and ((means - 128 / 255).abs() <= 0.3 * 128 / 255 + 1e-4).all()


def test_rotation_keeps_centre():
    x = torch.zeros(4, 1, 33, 33, dtype=torch.uint8)
    x[:, :, 14:19, 14:19] = 255
    y = Augment(rotate_deg=30)(x, generator=torch.Generator().manual_seed(0))
    assert (y[:, 0, 16, 16] > 0.9).all()
