"""Batched image augmentation as tensor ops, on whatever device the batch lives on.

No torchvision (it does not import beside the CPU torch wheel here), and per-sample Python loops
would dominate a GPU step, so every transform is one vectorised op over the batch: random crop
with zero padding, horizontal flip and small rotation are folded into a single affine
``grid_sample``; brightness/contrast are per-sample scalars; cutout is a broadcast mask.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from automl.config import AugmentSection, Config
    from automl.data.facedata import FaceData


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) -> floats in [0, 1] (torch's default dtype) on the same device."""
    dtype = torch.get_default_dtype()
    if x.dtype == torch.uint8:
        return x.to(dtype).div_(255.0)
    return x.to(dtype)


def occlude(x: torch.Tensor, part: Literal["none", "lower", "upper"] | str, fill: float | None = None):
    """Hide the lower or upper half of every face in a batch (occlusion robustness studies).

    Works on uint8 or float tensors (N, C, H, W) and numpy arrays of the same layout; returns a
    new array of the same type. ``fill`` defaults to mid grey (128 for uint8, 0.5 for floats) so
    the occluder carries no class information.
    """
    if part in (None, "none"):
        return x
    if part not in ("lower", "upper"):
        raise ValueError(f"occlusion part must be 'none', 'lower' or 'upper', not {part!r}")
    h = x.shape[-2]
    out = x.clone() if isinstance(x, torch.Tensor) else x.copy()
    integer = (out.dtype == torch.uint8) if isinstance(out, torch.Tensor) else out.dtype.kind in "ui"
    value = fill if fill is not None else (128 if integer else 0.5)
    if part == "lower":
        out[..., h // 2 :, :] = value
    else:
        out[..., : h // 2, :] = value
    return out


class Augment:
    """Random training augmentation; ``Augment()`` (all off) is just :func:`to_float`.

    Parameters: ``crop_padding`` pixels of zero padding for random crops; ``flip`` random
    horizontal flips (AU labels are bilateral, FER labels are flip-invariant); ``rotate_deg``
    maximum absolute rotation; ``brightness`` / ``contrast`` maximum relative change; ``cutout``
    side of a square zeroed at a random place. ``None`` or 0 turns a transform off.
    """

    def __init__(
        self,
        crop_padding: int | None = None,
        flip: bool | None = False,
        rotate_deg: float | None = None,
        brightness: float | None = None,
        contrast: float | None = None,
        cutout: int | None = None,
    ) -> None:
        self.crop_padding = int(crop_padding or 0)
        self.flip = bool(flip)
        self.rotate_deg = float(rotate_deg or 0.0)
        self.brightness = float(brightness or 0.0)
        self.contrast = float(contrast or 0.0)
        self.cutout = int(cutout or 0)

    @classmethod
    def default(cls, image_size: int = 32, hflip_ok: bool = True) -> Augment:
        """The ``[augment]`` defaults at ``image_size``: flips only (see :func:`build_augment`)."""
        from automl.config import AugmentSection

        return build_augment(AugmentSection(), image_size=image_size, hflip_ok=hflip_ok)

    @classmethod
    def full(cls, image_size: int = 32) -> Augment:
        """Every transform on, at the sizes of the old fixed default scaled to the side (crop 1/8,
        flip, 10 degrees, +-20 % brightness / contrast, cutout 1/4): the heaviest policy, for
        throughput benchmarks and as a starting point for long trainings on real data."""
        return cls(
            crop_padding=scaled_pixels(1 / 8, image_size),
            flip=True,
            rotate_deg=10,
            brightness=0.2,
            contrast=0.2,
            cutout=scaled_pixels(1 / 4, image_size),
        )

    @property
    def active(self) -> bool:
        return bool(
            self.crop_padding
            or self.flip
            or self.rotate_deg
            or self.brightness
            or self.contrast
            or self.cutout
        )

    def settings(self) -> dict[str, int | float | bool]:
        """The pixel-level settings, for run summaries and checkpoint descriptions."""
        return {
            "crop_padding": self.crop_padding,
            "flip": self.flip,
            "rotate_deg": self.rotate_deg,
            "brightness": self.brightness,
            "contrast": self.contrast,
            "cutout": self.cutout,
        }

    def __repr__(self) -> str:
        return (
            f"Augment(crop_padding={self.crop_padding}, flip={self.flip}, rotate_deg={self.rotate_deg}, "
            f"brightness={self.brightness}, contrast={self.contrast}, cutout={self.cutout})"
        )

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment a batch (N, C, H, W), uint8 or float; returns float32 in [0, 1], same device."""
        x = to_float(x)
        if not self.active or x.shape[0] == 0:
            return x
        n, _, h, w = x.shape
        dev = x.device

        def rand(*shape: int) -> torch.Tensor:
            return torch.rand(*shape, generator=generator, device="cpu").to(dev)

        if self.crop_padding or self.flip or self.rotate_deg:
            theta = torch.zeros(n, 2, 3, device=dev)
            ang = (rand(n) * 2 - 1) * math.radians(self.rotate_deg)
            cos, sin = torch.cos(ang), torch.sin(ang)
            sx = torch.where(rand(n) < 0.5, -1.0, 1.0) if self.flip else torch.ones(n, device=dev)
            theta[:, 0, 0] = cos * sx
            theta[:, 0, 1] = -sin
            theta[:, 1, 0] = sin * sx
            theta[:, 1, 1] = cos
            if self.crop_padding:
                # integer pixel shifts, as a padded random crop would give (normalised coords)
                p = self.crop_padding
                shift = torch.floor(rand(n, 2) * (2 * p + 1)) - p
                theta[:, 0, 2] = shift[:, 0] * 2.0 / w
                theta[:, 1, 2] = shift[:, 1] * 2.0 / h
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if self.brightness or self.contrast:
            b = 1.0 + (rand(n, 1, 1, 1) * 2 - 1) * self.brightness
            c = 1.0 + (rand(n, 1, 1, 1) * 2 - 1) * self.contrast
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = ((x - mean) * c + mean) * b
        if self.cutout:
            cy = torch.floor(rand(n) * h).view(n, 1, 1)
            cx = torch.floor(rand(n) * w).view(n, 1, 1)
            ys = torch.arange(h, device=dev).view(1, h, 1)
            xs = torch.arange(w, device=dev).view(1, 1, w)
            half = self.cutout / 2.0
            hole = ((ys - cy).abs() < half) & ((xs - cx).abs() < half)
            x = x.masked_fill(hole.unsqueeze(1), 0.0)
        return x.clamp_(0.0, 1.0)


def scaled_pixels(fraction: float, image_size: int) -> int:
    """``fraction`` of the side in whole pixels (rounded down), at least 1 unless it is 0."""
    if fraction <= 0:
        return 0
    return max(1, int(fraction * image_size + 1e-6))  # floor: 1/8 of the side is size // 8


def resolve_flip(flip: bool | str, hflip_ok: bool) -> bool:
    """``augment.flip``: ``"auto"`` follows the data set (:attr:`FaceData.hflip_ok`)."""
    return bool(hflip_ok) if flip == "auto" else bool(flip)


def build_augment(
    section: AugmentSection,
    *,
    image_size: int,
    hflip_ok: bool = True,
    purpose: Literal["train", "search"] = "train",
) -> Augment:
    """The :class:`Augment` of an ``[augment]`` section for images of ``image_size`` pixels.

    Padding and cutout are fractions of the side (``crop_fraction = 0.125`` is 4 px at 32 px and
    2 px at 16 px), because the old fixed 4 px / 8 px were most of a 16 px image. The flip follows
    ``hflip_ok`` (the data set's say) unless ``section.flip`` is true or false. ``purpose="search"``
    keeps only the crop and the flip, as the supernet search always had.

    Why the default is flips only. ``automl train`` of the face genotype (16 channels x 6 layers,
    lr 0.025, batch 96, 10 epochs, 1 CPU thread), test accuracy:

    * ``synth:fer`` at 32 px, 3,000 faces (seeds 0 / 1): the old default (crop 1/8 = 4 px, flip,
      10 degrees, +-0.2 brightness / contrast, cutout 1/4 = 8 px; the same pixels as before at
      32 px) 0.393 / 0.479; none 0.608 / 0.653; **flip only 0.709 / 0.685**; flip + colour 0.669;
      flip + rotation 0.636; flip + 2 px crop 0.539; flip + 4 px crop 0.484; old minus cutout
      0.478. The faces are aligned, and shifting them (even 2 px) costs more than it regularises.
    * MNIST digits through ``folder:`` at 16 px (5,000, 80/20 split): the old fixed-pixel default
      0.906, the same minus the flip 0.967, scaled to the side without the flip 0.976, scaled
      with the flip 0.944, none 0.971 (a user's run with another network: 0.768, 0.920, -, -,
      0.952). The default there (no flip for ``folder:``, nothing else) is exactly "none".
    """
    size = int(image_size)
    crop = scaled_pixels(section.crop_fraction, size)
    flip = resolve_flip(section.flip, hflip_ok)
    if purpose == "search":
        return Augment(crop_padding=crop, flip=flip)
    return Augment(
        crop_padding=crop,
        flip=flip,
        rotate_deg=section.rotate_deg,
        brightness=section.brightness,
        contrast=section.contrast,
        cutout=scaled_pixels(section.cutout_fraction, size),
    )


def augment_for(
    cfg: Config, data: FaceData, *, purpose: Literal["train", "search"] = "train"
) -> Augment | None:
    """The augmentation a whole :class:`automl.config.Config` asks for on ``data`` (a FaceData),
    or None when it is switched off (``train.augment`` for training, ``data.augment`` for the
    search); the flip follows ``data.hflip_ok`` unless ``augment.flip`` says otherwise."""
    enabled = cfg.train.augment if purpose == "train" else cfg.data.augment
    if not enabled:
        return None
    return build_augment(
        cfg.augment,
        image_size=int(data.image_size),
        hflip_ok=bool(getattr(data, "hflip_ok", True)),
        purpose=purpose,
    )
