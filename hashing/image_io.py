"""One way from an image file (or encoded bytes) to model input, shared by ``automl`` and ``hashing``.

The data readers (:mod:`automl.data.images`: ``folder:``, RAF-DB, AffectNet, BP4D, DISFA) and the
retrieval side (:mod:`hashing.stream`: ``automl index build|add|query --images``, the dashboard's
upload) all go through this module, so the same file gives the same uint8 array on every path:

1. **Pixel limit first.** The header is read lazily (:func:`hashing.image_limits.open_image`) and
   an image of more pixels than the limit raises
   :class:`~hashing.image_limits.ImageTooLargeError` before a pixel is decoded.
2. **Decode** with Pillow. For a JPEG whose crop is at least twice the requested size, Pillow's
   ``draft`` decodes at 1/2, 1/4 or 1/8 scale in the DCT domain (the largest reduction that
   still leaves the crop at least ``size`` pixels on a side): 2-3 times faster (256x256 JPEGs to
   48x48 grey: 1,590 against 690 images/s; 1024x768: 300 against 150). A grey target then takes
   the JPEG's luma plane directly. :func:`model_input` is the only
   function that drafts, and every file-to-model-input path without face detection calls it.
3. **EXIF orientation** (tag 0x0112, values 2..8) is applied, so phone photos come out upright.
   Boxes (a data set's face box, the face detector's box) are in upright pixel coordinates.
4. **8 bits by scaling, never clipping.** 16-bit grey (``I;16*``, and ``I`` with values in
   0..65535): ``round(v * 255 / 65535)``. Other 32-bit integer and float images: values in [0, 1]
   are scaled by 255, anything else is stretched from the image's min..max to 0..255. 16-bit
   *colour* files are delivered by Pillow as 8-bit by their high byte (``v >> 8``, within one
   level of the scaled value). Palette, CMYK, YCbCr and 1-bit images are converted to RGB / grey.
5. **Alpha** (LA, RGBA, PA, palette or grey/RGB with a transparent colour) is composited over
   white, as a page shows a transparent image, whatever colour the transparent pixels store.
6. **Channels**: grey ``L`` (Pillow's ITU-R 601 luma, ``(19595 R + 38470 G + 7471 B + 32768) >>
   16``) or RGB, converted at full resolution before cropping.
7. **Crop**: to the box ``(x, y, w, h)`` when given (rounded, clipped to the image; ignored when
   under 2 pixels), then the centre square of that (the ends of the longer side are dropped; an
   image is never stretched).
8. **Resize** the square to ``size x size`` with Pillow's ``BILINEAR`` filter: plain bilinear
   interpolation when enlarging, and when shrinking a triangle filter widened to the reduction
   (each output pixel averages its whole footprint, so fine detail aliases little). One rule in
   both directions, in a core dependency (OpenCV is optional); against an ideal band-limited
   resample it is as close as OpenCV's ``INTER_AREA``/``INTER_LINEAR`` pair or closer. It is also
   what the ``folder:`` reader always used, so a plain 8-bit image without EXIF rotation gives
   the pixels it gave before (a model trained on it sees the same data).

:func:`decode` gives the full-resolution upright 8-bit image (no draft) for face detection;
:func:`fit` then crops and resizes it by steps 6-8. This module imports neither torch nor OpenCV.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from hashing.errors import HashingError
from hashing.image_limits import open_image

DECODE_VERSION = 2
"""Bumped whenever a rule here changes the pixels a file gives (caches of decoded images key on it).
1: the old Pillow reader (no EXIF orientation, 16-bit clipped); 2: this module."""

Box = tuple[float, float, float, float]
"""``(x, y, width, height)`` in pixels of the upright image."""

Source = str | Path | bytes | bytearray | memoryview | BinaryIO

ORIENTATION_TAG = 0x0112
SWAPS_AXES = {5, 6, 7, 8}
"""EXIF orientations whose upright image is the stored one turned by 90 degrees."""

BACKGROUND = (255, 255, 255, 255)
"""What transparent pixels are composited over: white."""

DECODE_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, SyntaxError, EOFError)
"""What Pillow raises for a file that is truncated, corrupt or not an image it knows
(``UnidentifiedImageError`` is an ``OSError``); the decoders here return ``None`` for them, but
re-raise :class:`~hashing.errors.HashingError` (a ``ValueError``: the pixel limit)."""

_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
_ALPHA = ("LA", "La", "PA", "RGBA", "RGBa")


def _mode(channels: int) -> str:
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), not {channels}")
    return "L" if channels == 1 else "RGB"


def orientation(img: Image.Image) -> int:
    """The EXIF orientation of ``img`` (1..8; 1, upright, when missing or malformed)."""
    try:
        value = int(img.getexif().get(ORIENTATION_TAG, 1))
    except Exception:  # malformed EXIF of any kind: keep the stored orientation
        return 1
    return value if 1 <= value <= 8 else 1


def _transpose_method(value: int):
    t = Image.Transpose
    return {
        2: t.FLIP_LEFT_RIGHT,
        3: t.ROTATE_180,
        4: t.FLIP_TOP_BOTTOM,
        5: t.TRANSPOSE,
        6: t.ROTATE_270,
        7: t.TRANSVERSE,
        8: t.ROTATE_90,
    }.get(value)


def _scaled_to_8bit(a: np.ndarray, sixteen_bit: bool) -> np.ndarray:
    """uint8 of a 16-bit, 32-bit integer or float array, by scaling (see the module docstring)."""
    if sixteen_bit:
        return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    f = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = (float(f.min()), float(f.max())) if f.size else (0.0, 0.0)
    if lo >= 0.0 and hi <= 1.0:
        scaled = f * 255.0
    elif hi > lo:
        scaled = (f - lo) * (255.0 / (hi - lo))
    else:
        scaled = np.zeros_like(f)
    return np.floor(scaled + 0.5).clip(0, 255).astype(np.uint8)


def to_8bit(img: Image.Image, mode: str = "RGB") -> Image.Image:
    """A loaded Pillow image as 8-bit ``mode`` (``"L"`` or ``"RGB"``): 16-bit and float images
    scaled, alpha composited over white, other modes converted."""
    m = img.mode
    if m in _SIXTEEN_BIT or m in ("I", "F"):
        a = np.asarray(img)
        sixteen = m in _SIXTEEN_BIT or (m == "I" and a.size > 0 and a.min() >= 0 and a.max() <= 65535)
        img = Image.fromarray(_scaled_to_8bit(a, sixteen), "L")
    elif m in _ALPHA or (m in ("P", "L", "RGB") and "transparency" in img.info):
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, BACKGROUND), rgba).convert("RGB")
    elif m == "1":
        img = img.convert("L")
    elif m not in ("L", "RGB"):  # P, CMYK, YCbCr, LAB, HSV, ...
        img = img.convert("RGB")
    return img if img.mode == mode else img.convert(mode)


def upright_8bit(img: Image.Image, mode: str = "RGB") -> Image.Image:
    """A loaded Pillow image as upright (EXIF orientation applied) 8-bit ``mode``."""
    method = _transpose_method(orientation(img))
    out = to_8bit(img, mode)
    return out if method is None else out.transpose(method)


def crop_rect(width: int, height: int, box: Box | None = None) -> tuple[int, int, int, int]:
    """``(left, top, right, bottom)`` of the square that :func:`fit` keeps of a ``width x height``
    image: the box (rounded, clipped; ignored under 2 pixels) if given, then its centre square."""
    left, top, right, bottom = 0, 0, width, height
    if box is not None:
        x, y, bw, bh = (float(v) for v in box)
        bl, bt = max(0, int(round(x))), max(0, int(round(y)))
        br, bb = min(width, int(round(x + bw))), min(height, int(round(y + bh)))
        if br - bl >= 2 and bb - bt >= 2:
            left, top, right, bottom = bl, bt, br, bb
    w, h = right - left, bottom - top
    s = min(w, h)
    left, top = left + (w - s) // 2, top + (h - s) // 2
    return left, top, left + s, top + s


def fit_image(img: Image.Image, size: int, box: Box | None = None) -> Image.Image:
    """An 8-bit Pillow image cropped (:func:`crop_rect`) and resized to ``size x size`` (bilinear;
    antialiased when shrinking)."""
    rect = crop_rect(*img.size, box)
    if rect != (0, 0, *img.size):
        img = img.crop(rect)
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR)
    return img


def _pil(pixels: np.ndarray) -> Image.Image:
    a = np.asarray(pixels)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.dtype != np.uint8 or a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] != 3):
        raise ValueError(f"pixels must be uint8 (H, W) grey or (H, W, 3) RGB, got {a.dtype} {a.shape}")
    return Image.fromarray(np.ascontiguousarray(a), "L" if a.ndim == 2 else "RGB")


def to_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """uint8 (H, W) grey or (H, W, 3) RGB pixels as ``channels`` (1: grey (H, W), 3: RGB)."""
    return np.asarray(_pil(pixels).convert(_mode(channels)))


def chw(img: Image.Image) -> np.ndarray:
    """uint8 (C, H, W) of an 8-bit grey or RGB Pillow image."""
    arr = np.asarray(img, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def fit(pixels: np.ndarray, size: int, channels: int, box: Box | None = None) -> np.ndarray:
    """uint8 (C, size, size) of already decoded uint8 (H, W) grey or (H, W, 3) RGB pixels: converted
    to ``channels`` at full size, cropped to ``box`` (else the centre square) and resized."""
    return chw(fit_image(_pil(pixels).convert(_mode(channels)), size, box))


def decode(source: Source, name: str | None = None, *, channels: int = 3) -> np.ndarray | None:
    """Full-resolution upright 8-bit pixels of an image file, bytes or binary file: uint8 (H, W)
    grey for ``channels=1``, (H, W, 3) RGB for 3; ``None`` when it cannot be decoded. Too many
    pixels -> :class:`~hashing.image_limits.ImageTooLargeError`, before anything is decoded."""
    mode = _mode(channels)
    source = bytes(source) if isinstance(source, bytearray | memoryview) else source
    try:
        with open_image(source, name) as img:
            img.load()
            return np.asarray(upright_8bit(img, mode))
    except HashingError:  # a ValueError too: too many pixels, or a malformed limit
        raise
    except DECODE_ERRORS:
        return None


def _draft(img: Image.Image, mode: str, size: int, box: Box | None) -> tuple[float, float]:
    """Ask a JPEG to decode at the largest 1/2, 1/4, 1/8 reduction that keeps the crop at least
    ``size`` pixels on a side; returns the upright (x, y) scale of the pixels it will give."""
    stored = img.size
    swap = orientation(img) in SWAPS_AXES
    uw, uh = (stored[1], stored[0]) if swap else stored
    left, top, right, bottom = crop_rect(uw, uh, box)
    side = max(1, right - left)
    want = (math.ceil(uw * size / side), math.ceil(uh * size / side))
    img.draft(mode, (want[1], want[0]) if swap else want)
    if img.size == stored:
        return 1.0, 1.0
    dw, dh = (img.size[1], img.size[0]) if swap else img.size
    return dw / uw, dh / uh


def model_input(
    source: Source, size: int, channels: int, box: Box | None = None, name: str | None = None
) -> np.ndarray | None:
    """uint8 (C, size, size) model input of an image file, bytes or binary file; ``None`` when it
    cannot be decoded. The one path from an encoded image to model input without face
    detection (data readers, ``--no-detect`` queries, uploads): pixel limit, JPEG draft, EXIF
    orientation, 8 bits, channels, crop to ``box`` (upright full-resolution pixels) or the centre
    square, bilinear resize. Too many pixels -> ``ImageTooLargeError``, nothing decoded."""
    mode = _mode(channels)
    source = bytes(source) if isinstance(source, bytearray | memoryview) else source
    try:
        with open_image(source, name) as img:
            sx = sy = 1.0
            if img.format in ("JPEG", "MPO"):  # MPO: a phone's JPEG with a second picture
                sx, sy = _draft(img, mode, size, box)
            img.load()
            if box is not None and (sx, sy) != (1.0, 1.0):
                x, y, bw, bh = (float(v) for v in box)
                box = (x * sx, y * sy, bw * sx, bh * sy)
            return chw(fit_image(upright_8bit(img, mode), size, box))
    except HashingError:  # a ValueError too: too many pixels, or a malformed limit
        raise
    except DECODE_ERRORS:
        return None
