"""uint8 image caches: decode once, then memory-map.

Decoding tens of thousands of JPEGs takes minutes; a cached ``.npy`` opens instantly and is
paged in lazily by ``np.load(mmap_mode=...)``, so a 100k-frame BP4D set need not fit in RAM. The
cache lives in ``.automl_cache/`` beside the data when that is writable, else in ``$AUTOML_CACHE``
(default ``~/.cache/automl``). The key hashes the source files' names, sizes and mtimes and the
requested size/channels, so edited data is re-decoded. Files are written under a temporary name
and renamed into place, so a killed process never leaves a half-written cache behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

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
    """``np.save`` to a temp file in the same directory, then ``os.replace``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, array, allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, *shape))
        ok = fill(out)
        if not ok.all():
            good = np.flatnonzero(ok)
            fd2, tmp2 = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
            os.close(fd2)
            compact = np.lib.format.open_memmap(tmp2, mode="w+", dtype=np.uint8, shape=(len(good), *shape))
            for s in range(0, len(good), 4096):
                compact[s : s + 4096] = out[good[s : s + 4096]]
            compact.flush()
            del out, compact
            os.replace(tmp2, tmp)
        else:
            out.flush()
            del out
        save_atomic(ok_path, ok)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return open_mmap(path), ok
