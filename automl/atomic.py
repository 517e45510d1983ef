"""One way to write a file so that a crash leaves the old file or the new one, never half of one.

Every artifact the product writes (checkpoints, exports, search state, synthetic data, caches,
previews, bench reports, index manifests) goes through :func:`atomic_write`:

1. a temporary file with a unique name in the *same directory* (a rename across file systems is
   not atomic, and a fixed temp name lets two writers clobber each other's half-written file);
2. the bytes, then ``flush`` + ``fsync`` (a rename can reach the disk before the data does);
3. the permission bits a plain ``open()`` would have given it (``0o666`` minus the umask --
   ``mkstemp`` alone makes every file ``0600``, which breaks sharing runs inside a team);
4. ``os.replace`` over the target, then ``fsync`` of the directory so the rename itself is durable;
5. on any failure (including Ctrl-C) the temporary file is removed.

Failures a user can cause (a missing or read-only directory, a path that is a directory) become
:class:`ArtifactWriteError`, a :class:`~automl.errors.UserError` naming the path, so the CLI prints
one line and exits 2 with nothing half-written. Temporary names are ``.<name>.<random>.tmp``;
:func:`remove_orphan_temps` deletes those a killed writer left behind.

Pure standard library: :mod:`hashing` and the data writers use it without importing torch.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from automl.errors import UserError

TEMP_SUFFIX = ".tmp"


class ArtifactWriteError(UserError):
    """A file could not be written (the directory is missing or read-only, the disk is full...)."""


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux ``/proc``).

    ``os.umask`` can only be read by setting it, which is racy with other threads creating files;
    ``/proc/self/status`` reports it directly.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def default_file_mode() -> int:
    """The mode ``open(path, "w")`` would create a file with: ``0o666`` minus the umask."""
    return 0o666 & ~current_umask()


def _describe(exc: OSError) -> str:
    reasons = {
        errno.ENOENT: "the directory does not exist",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "the file system is read-only",
        errno.ENOSPC: "no space left on the device",
        errno.EISDIR: "it is a directory",
        errno.ENOTDIR: "a parent of it is not a directory",
        errno.EDQUOT: "the disk quota is exceeded",
    }
    return reasons.get(exc.errno or 0, exc.strerror or type(exc).__name__)


def _fsync_directory(directory: Path) -> None:
    # Durability of the rename; not supported everywhere (some network file systems): best effort.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb", *, encoding: str | None = None) -> Iterator[IO[Any]]:
    """Open a temporary file to write; on a clean exit it replaces ``path`` atomically.

    ``mode`` is ``"wb"`` or ``"w"`` (text, ``encoding`` defaults to UTF-8). The parent directory
    is created when missing. Raises :class:`ArtifactWriteError` when the file cannot be created or
    replaced; the target is then untouched.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode must be 'wb' or 'w', not {mode!r}")
    path = Path(path)
    try:
        # inside the try: a parent without search permission makes even is_dir() raise EACCES
        if path.is_dir():
            raise ArtifactWriteError(f"cannot write {path}: it is a directory; give a file name")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise ArtifactWriteError(f"cannot write {path}: {_describe(exc)}") from None
    tmp = Path(tmp_name)
    try:
        kwargs: dict[str, Any] = {} if mode == "wb" else {"encoding": encoding or "utf-8", "newline": ""}
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, ArtifactWriteError):
            raise ArtifactWriteError(f"cannot write {path}: {_describe(exc)}") from None
        raise
    _fsync_directory(path.parent)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Replace ``path`` with UTF-8 ``text`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, payload: Any, *, default: Any = str) -> None:
    """Replace ``path`` with ``payload`` as indented JSON (``default`` turns odd values to text)."""
    atomic_write_text(path, json.dumps(payload, indent=2, default=default) + "\n")


def check_writable(path: str | Path) -> Path:
    """Fail now, not after an hour of work, when ``path`` could not be written later.

    Creates the parent directory if needed and creates-then-removes a probe temp file there.
    """
    path = Path(path)
    try:
        # inside the try: a parent without search permission makes even is_dir() raise EACCES
        if path.is_dir():
            raise ArtifactWriteError(f"cannot write {path}: it is a directory; give a file name")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise ArtifactWriteError(f"cannot write {path}: {_describe(exc)}") from None
    os.close(fd)
    Path(probe).unlink(missing_ok=True)
    return path


def is_temp_name(name: str) -> bool:
    """Whether ``name`` looks like one of :func:`atomic_write`'s temporary files."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def remove_orphan_temps(directory: str | Path, *, older_than_s: float = 0.0) -> list[Path]:
    """Delete temporary files a killed writer left in ``directory``; the paths removed.

    Call it while holding the directory's writer lock (a live writer's temp file is not an
    orphan), or with ``older_than_s`` large enough that no live writer can own the file.
    """
    directory = Path(directory)
    removed: list[Path] = []
    if not directory.is_dir():
        return removed
    now = time.time()
    for entry in directory.iterdir():
        if not is_temp_name(entry.name) or not entry.is_file():
            continue
        try:
            if now - entry.stat().st_mtime < older_than_s:
                continue
            entry.unlink()
            removed.append(entry)
        except OSError:
            continue
    return removed
