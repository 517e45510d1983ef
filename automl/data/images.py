"""Decode image files into uint8 arrays of one size and channel count, for the file-based readers.

Every file-based reader (RAF-DB, AffectNet, BP4D, DISFA, folder) decodes through
:func:`hashing.image_io.model_input`, the same function the retrieval side (``automl index
--images``, queries, the dashboard's upload) uses, so a file gives the same array whether it is
read as a data set or as a query: pixel limit checked from the header, JPEG draft, EXIF
orientation applied, 16-bit and float images scaled (not clipped) to 8 bits, alpha composited over
white, grey or RGB, the face box (if the format gives one) then the centre square, bilinear
resize. This module adds the policy for broken files: skip with a warning and a count, fail
past a threshold.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from automl.errors import UserError

if TYPE_CHECKING:
    from PIL import Image

MAX_BAD_FRACTION = 0.05


class DataWarning(UserWarning):
    """Something in a data set was skipped (corrupt image, unlabelled rows)."""


def to_array(
    img: Image.Image, size: int, channels: int, box: tuple[float, float, float, float] | None = None
) -> np.ndarray:
    """One loaded Pillow image -> uint8 (C, size, size), by the shared rules of
    :mod:`hashing.image_io` (orientation, 8 bits, channels, crop to ``box`` (x, y, w, h) if
    given, else the centre square, bilinear resize)."""
    from hashing.image_io import chw, fit_image, upright_8bit

    return chw(fit_image(upright_8bit(img, "L" if channels == 1 else "RGB"), size, box))


def decode_file(path: str, size: int, channels: int, box=None) -> np.ndarray | None:
    """Decode one file (:func:`hashing.image_io.model_input`); ``None`` when it is missing,
    truncated or not an image.

    Its header is checked first (:func:`hashing.image_limits.open_image`): an image of more pixels
    than the limit (40 megapixels, ``$AUTOML_MAX_IMAGE_PIXELS``) is a :class:`UserError` naming
    the file, before any pixel is decoded.
    """
    from hashing.errors import HashingError  # lazy: the hashing package imports scipy
    from hashing.image_io import model_input

    try:
        return model_input(path, size, channels, box, str(path))
    except HashingError as exc:  # ImageTooLargeError, or a malformed $AUTOML_MAX_IMAGE_PIXELS
        raise UserError(str(exc)) from None


def decode_into(
    out: np.ndarray,
    paths: Sequence[str],
    size: int,
    channels: int,
    boxes: Sequence | None = None,
    progress=None,
) -> np.ndarray:
    """Decode ``paths`` into rows of ``out`` (may be a memmap); returns the bool mask of good rows.

    ``progress``: optional callable(n_done) for progress bars.
    """
    ok = np.zeros(len(paths), dtype=bool)
    for i, p in enumerate(paths):
        arr = decode_file(p, size, channels, None if boxes is None else boxes[i])
        if arr is not None:
            out[i] = arr
            ok[i] = True
        else:
            out[i] = 0
        if progress is not None and (i + 1) % 256 == 0:
            progress(i + 1)
    return ok


def check_bad(
    ok: np.ndarray, paths: Sequence[str], what: str, max_bad_fraction: float = MAX_BAD_FRACTION
) -> None:
    """Warn about skipped files; raise :class:`UserError` past ``max_bad_fraction`` bad ones."""
    bad = int((~ok).sum())
    if not bad:
        return
    first = paths[int(np.flatnonzero(~ok)[0])]
    if ok.sum() == 0 or bad > max_bad_fraction * len(ok):
        raise UserError(
            f"{what}: {bad} of {len(ok)} images could not be decoded (first: {first}); more than "
            f"{max_bad_fraction:.0%} are bad, so the data set looks damaged: re-extract it"
        )
    warnings.warn(
        f"{what}: skipped {bad} of {len(ok)} images that could not be decoded (first: {first})",
        DataWarning,
        stacklevel=3,
    )
