"""Decode image files with Pillow into uint8 arrays of one size and channel count.

Why a helper: every file-based reader (RAF-DB, AffectNet, BP4D, DISFA, folder) needs the same
decode -> optional face crop -> centre square -> resize -> grey/RGB path and the same policy for
broken files (skip with a warning and a count, fail past a threshold).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from automl.errors import UserError

MAX_BAD_FRACTION = 0.05


class DataWarning(UserWarning):
    """Something in a data set was skipped (corrupt image, unlabelled rows)."""


def to_array(
    img: Image.Image, size: int, channels: int, box: tuple[float, float, float, float] | None = None
) -> np.ndarray:
    """One Pillow image -> uint8 (C, size, size): crop to ``box`` (x, y, w, h) if given, else the
    centre square, then resize with bilinear filtering."""
    mode = "L" if channels == 1 else "RGB"
    if img.mode != mode:
        img = img.convert(mode)
    w, h = img.size
    if box is not None:
        x, y, bw, bh = box
        left, top = max(0, int(round(x))), max(0, int(round(y)))
        right, bottom = min(w, int(round(x + bw))), min(h, int(round(y + bh)))
        if right - left >= 2 and bottom - top >= 2:
            img = img.crop((left, top, right, bottom))
            w, h = img.size
    if w != h:
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        img = img.crop((left, top, left + s, top + s))
    if img.size != (size, size):
        img = img.resize((size, size), Image.BILINEAR)
    arr = np.asarray(img, dtype=np.uint8)
    return arr[None] if channels == 1 else arr.transpose(2, 0, 1)


def decode_file(path: str, size: int, channels: int, box=None) -> np.ndarray | None:
    """Decode one file; ``None`` when it is missing, truncated or not an image.

    Its header is checked first (:func:`hashing.image_limits.open_image`): an image of more pixels
    than the limit (40 megapixels, ``$AUTOML_MAX_IMAGE_PIXELS``) is a :class:`UserError` naming
    the file, before any pixel is decoded.
    """
    from hashing.errors import HashingError  # lazy: the hashing package imports scipy
    from hashing.image_limits import open_image

    try:
        with open_image(path, str(path)) as img:
            img.draft("L" if channels == 1 else "RGB", (size, size))  # JPEG: decode at reduced scale
            img.load()
            return to_array(img, size, channels, box)
    except HashingError as exc:  # ImageTooLargeError, or a malformed $AUTOML_MAX_IMAGE_PIXELS
        raise UserError(str(exc)) from None
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        return None


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
