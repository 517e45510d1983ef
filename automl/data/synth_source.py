"""A fingerprint of the faces an index embedded from a data spec, so they can be shown again.

Items embedded from a spec with no files behind it (``synth:fer#test:17``) have nothing to open;
the dashboard renders the split again from the load options the index recorded. The generator's
source hash catches a changed renderer, but not a change elsewhere (the split rule, the default
count, resizing): :func:`pixels_digest` of the split, taken when it was embedded and again when it
is rendered, makes sure a face is only ever shown if it is, pixel for pixel, the one indexed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np


def pixels_digest(parts: Iterable[np.ndarray]) -> str:
    """sha1 of uint8 ``(N, C, H, W)`` arrays as if concatenated along N (a split, or train then
    test for ``all``), their per-item shape included: equal digests mean equal faces in the same
    order. An empty iterable or mismatched shapes -> ValueError (nothing meaningful to compare)."""
    h = hashlib.sha1()
    shape: tuple[int, ...] | None = None
    for part in parts:
        arr = np.ascontiguousarray(part)
        if arr.dtype != np.uint8 or arr.ndim != 4:
            raise ValueError(f"expected uint8 (N, C, H, W) faces, not {arr.dtype} {arr.shape}")
        if shape is None:
            shape = arr.shape[1:]
            h.update("x".join(map(str, shape)).encode())
        elif arr.shape[1:] != shape:
            raise ValueError(f"faces of {arr.shape[1:]} after faces of {shape}")
        h.update(memoryview(arr).cast("B"))
    if shape is None:
        raise ValueError("no faces to fingerprint")
    return h.hexdigest()
