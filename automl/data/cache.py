"""uint8 image caches: decode once, then memory-map.

Decoding tens of thousands of JPEGs takes minutes; a cached ``.npy`` opens instantly and is
paged in lazily by ``np.load(mmap_mode=...)``, so a 100k-frame BP4D set need not fit in RAM. The
cache lives in ``.automl_cache/`` beside the data when that is writable, else in ``$AUTOML_CACHE``
(default ``~/.cache/automl``). The key hashes the source files' names, sizes and mtimes and the
requested size/channels, so edited data is re-decoded. Files are written with
:func:`automl.atomic.atomic_write`, so a killed process never leaves a half-written cache behind.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from automl.atomic import atomic_write

CACHE_VERSION = 1


def cache_dir(data_root: str | os.PathLike) -> Path:
    """``<root>/.automl_cache`` if we can write there, else the user cache directory."""
    root = Path(data_root)
    root = root if root.is_dir() else root.parent
    local = root / ".automl_cache"
    try:
        local.mkdir(exist_ok=True)
        probe = local / f".probe{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        return local
    except OSError:
        return user_cache_dir()


def user_cache_dir() -> Path:
    """``$AUTOML_CACHE`` or ``~/.cache/automl``: for data that has no folder of its own."""
    path = Path(os.environ.get("AUTOML_CACHE", Path.home() / ".cache" / "automl"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_key(parts: dict, files: Iterable[str | os.PathLike] = ()) -> str:
    """A hash of the request (``parts``) and of each source file's path, size and mtime."""
    h = hashlib.sha1(json.dumps({**parts, "v": CACHE_VERSION}, sort_keys=True, default=str).encode())
    for f in files:
        try:
            st = os.stat(f)
            h.update(f"{f}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{f}|missing\n".encode())
    return h.hexdigest()[:20]


def save_atomic(path: Path, array: np.ndarray) -> None:
    """``np.save`` through :func:`automl.atomic.atomic_write`."""
    with atomic_write(path) as fh:
        np.save(fh, array, allow_pickle=False)


_NPY_HEADER_BYTES = 256  # fixed, so the header can be rewritten in place with a smaller shape


def _npy_header(shape: tuple[int, ...]) -> bytes:
    """A ``.npy`` version 1.0 header for C-ordered uint8 ``shape``, padded to a fixed length."""
    text = repr({"descr": "|u1", "fortran_order": False, "shape": tuple(shape)})
    prefix = np.lib.format.magic(1, 0)
    body = text.ljust(_NPY_HEADER_BYTES - len(prefix) - 2 - 1) + "\n"
    return prefix + len(body).to_bytes(2, "little") + body.encode("latin1")


def open_mmap(path: Path) -> np.ndarray:
    """Memory-map a cached array copy-on-write: pages load lazily, and torch can wrap it without
    a read-only warning; writes (never intended) would stay private to the process."""
    return np.load(path, mmap_mode="c", allow_pickle=False)


def build_images(
    path: Path,
    n: int,
    shape: tuple[int, ...],
    fill: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Create (or reuse) a cached uint8 array of ``n`` rows of ``shape``.

    ``fill(out)`` writes the rows into a temporary memmap and returns the bool mask of good rows;
    only good rows are kept. Returns ``(images memmap, ok mask)``; the mask is cached beside the
    images (``*.ok.npy``) so warnings about bad files can be repeated on a cache hit.
    """
    ok_path = path.with_suffix(".ok.npy")
    if path.exists() and ok_path.exists():
        return open_mmap(path), np.load(ok_path, allow_pickle=False)
    with atomic_write(path) as fh:
        # The rows are decoded straight into the temporary file, mapped behind a .npy header.
        fh.write(_npy_header((n, *shape)))
        fh.flush()
        out = np.memmap(fh, dtype=np.uint8, mode="r+", offset=_NPY_HEADER_BYTES, shape=(n, *shape))
        ok = fill(out)
        good = np.flatnonzero(ok)
        if len(good) < n:
            # Compact in place: row good[j] >= j, so copying in ascending order never reads a row
            # that an earlier chunk overwrote. Then shrink the file and its header's shape.
            for s in range(0, len(good), 4096):
                out[s : s + len(good[s : s + 4096])] = out[good[s : s + 4096]]
        out.flush()
        del out
        fh.seek(0)
        fh.write(_npy_header((len(good), *shape)))
        fh.truncate(_NPY_HEADER_BYTES + len(good) * int(np.prod(shape, dtype=np.int64)))
        save_atomic(ok_path, ok)
    return open_mmap(path), ok
