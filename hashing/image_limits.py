"""One pixel limit for every image file decoded by ``hashing`` and ``automl`` (decompression bombs).

A small compressed file can claim a huge canvas: a 1.1 MB PNG of 30000 x 30000 grey pixels
decodes to 900 MB, and OpenCV's face detection over it asked for 23 GB. So every decoder reads
the image's *header* first -- Pillow's ``Image.open`` is lazy: it parses the header and gives the
size without decoding a pixel -- and refuses, before decoding anything, an image of more than
:func:`max_image_pixels` pixels (``DEFAULT_MAX_IMAGE_PIXELS``, 40 megapixels, or the
``AUTOML_MAX_IMAGE_PIXELS`` environment variable). The refusal is an :class:`ImageTooLargeError`
(a :class:`~hashing.errors.HashingError`: one line naming the file, its size and the limit), which
the CLI reports as ``error: ...`` and exit code 2.

This module lives in ``hashing`` (which never imports ``automl``) so that both packages share it:
``automl``'s Pillow readers (:mod:`automl.data.images`) use :func:`open_image` too.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from hashing.errors import HashingError

if TYPE_CHECKING:
    from PIL import Image

ENV_VAR = "AUTOML_MAX_IMAGE_PIXELS"
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000
"""40 megapixels: far above any face photo or data-set image, far below what a bomb asks for."""


class ImageTooLargeError(HashingError):
    """An image whose header claims more pixels than :func:`max_image_pixels` allows."""


def max_image_pixels() -> int:
    """The limit in pixels: ``$AUTOML_MAX_IMAGE_PIXELS`` when set (e.g. ``100000000`` or
    ``100e6``), else :data:`DEFAULT_MAX_IMAGE_PIXELS`."""
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw:
        return DEFAULT_MAX_IMAGE_PIXELS
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 1 <= value < float("inf"):  # also refuses nan
        raise HashingError(f"{ENV_VAR}={raw!r} must be a positive number of pixels (e.g. 40000000)")
    return int(value)


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} megapixels"


def check_pixels(width: int, height: int, name: str, limit: int | None = None) -> None:
    """Raise :class:`ImageTooLargeError` when ``width x height`` exceeds ``limit`` (default:
    :func:`max_image_pixels`)."""
    limit = max_image_pixels() if limit is None else int(limit)
    pixels = int(width) * int(height)
    if pixels > limit:
        raise ImageTooLargeError(
            f"{name}: image of {width}x{height} pixels ({_megapixels(pixels)}) exceeds the limit of "
            f"{limit} pixels ({_megapixels(limit)}); it is not decoded (set {ENV_VAR} to raise the limit)"
        )


@contextmanager
def open_image(
    source: str | Path | bytes | BinaryIO, name: str | None = None, *, limit: int | None = None
) -> Iterator[Image.Image]:
    """The Pillow image of ``source`` (a path, bytes or a binary file), opened lazily: only its
    header is read, its size checked against the limit, and no pixel decoded until the caller's
    ``load()`` / ``convert()``.

    Raises :class:`ImageTooLargeError` for too many pixels, and Pillow's own errors
    (``UnidentifiedImageError``, ``OSError``) for a file that is not an image it knows.
    """
    from PIL import Image

    label = name if name is not None else (str(source) if isinstance(source, str | Path) else "image")
    fp = io.BytesIO(source) if isinstance(source, bytes | bytearray | memoryview) else source
    limit = max_image_pixels() if limit is None else int(limit)
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb check (warning above Image.MAX_IMAGE_PIXELS) is superseded by ours.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(fp)
    except Image.DecompressionBombError as exc:  # more than twice Pillow's limit: no size given
        found = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = int(found.group(1)) if found else None
        size = _megapixels(pixels) if pixels is not None else "more pixels than Pillow allows"
        if pixels is not None and pixels <= limit:  # our limit was raised past Pillow's own
            raise ImageTooLargeError(
                f"{label}: image of {size} exceeds Pillow's own limit (2 x PIL.Image.MAX_IMAGE_PIXELS "
                f"= {2 * (Image.MAX_IMAGE_PIXELS or 0)} pixels); it is not decoded"
            ) from None
        raise ImageTooLargeError(
            f"{label}: image of {size} exceeds the limit of {limit} pixels ({_megapixels(limit)}); it "
            f"is not decoded (set {ENV_VAR} to raise the limit)"
        ) from None
    try:
        check_pixels(*img.size, label, limit)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield img
    finally:
        img.close()


def check_image(
    source: str | Path | bytes | BinaryIO, name: str | None = None, *, limit: int | None = None
) -> tuple[int, int] | None:
    """``(width, height)`` of an image within the limit, from its header alone; ``None`` when
    Pillow does not know the file as an image (so nothing can vouch for its size: do not decode
    it). Raises :class:`ImageTooLargeError` for too many pixels."""
    from PIL import UnidentifiedImageError

    try:
        with open_image(source, name, limit=limit) as img:
            return img.size
    except ImageTooLargeError:
        raise
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        return None
