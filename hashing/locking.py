"""One writer at a time per index directory: an exclusive lock file, with who holds it.

:class:`DirectoryLock` takes ``<directory>/.lock`` with the ``filelock`` package (``flock`` on
POSIX, so the kernel lets go when the holder dies -- even of ``kill -9`` -- and a lock never goes
stale). While held, ``<directory>/.lock-owner.json`` says which process took it, on which host,
when and for what, so that a writer that gives up can say who it waited for.

The lock is re-entrant within one thread of one process: ``HashIndex.save`` takes it again inside
a caller's ``with HashIndex.locked(path):`` block without waiting for itself. Another thread of
the same process waits like another process would.

Readers take no lock: a saved index is changed only by replacing its manifest atomically.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import socket
import threading
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from automl.atomic import atomic_write_json, default_file_mode
from hashing.errors import HashingError, IndexLockedError

LOCK_NAME = ".lock"
OWNER_NAME = ".lock-owner.json"
DEFAULT_LOCK_TIMEOUT = 600.0  # seconds a second writer waits before giving up (10 minutes)

_held: dict[str, DirectoryLock] = {}  # resolved directory -> the lock this process holds on it
_held_guard = threading.Lock()


def lock_files() -> frozenset[str]:
    """Names the lock keeps in a directory (never data, never orphans)."""
    return frozenset({LOCK_NAME, OWNER_NAME})


def check_lock_timeout(timeout: float | None) -> float | None:
    """Seconds to wait for the lock: 0 (do not wait) or more, or None (forever)."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0:
        raise HashingError(
            f"lock_timeout must be 0 (do not wait) or more seconds, not {timeout!r}", param="lock_timeout"
        )
    return float(timeout)


def describe_owner(directory: str | os.PathLike[str]) -> str:
    """Who holds ``directory``'s lock, as far as its owner file says."""
    try:
        info = json.loads((Path(directory) / OWNER_NAME).read_text())
        return (
            f"process {int(info['pid'])} on {info['host']} ({info.get('purpose') or 'a writer'}, "
            f"since {info['since']})"
        )
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (it has not said who it is)"


class DirectoryLock:
    """Exclusive, re-entrant writer lock on a directory (use as a context manager).

    ``timeout``: seconds to wait for another holder (``None`` = forever, ``0`` = do not wait).
    ``create``: make the directory when missing (a first save); otherwise a missing directory is
    left alone and :class:`FileNotFoundError` is raised, so a typo never creates one.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        timeout: float | None = DEFAULT_LOCK_TIMEOUT,
        create: bool = False,
        purpose: str | None = None,
    ) -> None:
        check_lock_timeout(timeout)
        self.directory = Path(directory)
        self.timeout = timeout
        self.create = create
        self.purpose = purpose
        self._file_lock: FileLock | None = None
        self._owner_thread: int | None = None
        self._depth = 0
        self._outer: DirectoryLock | None = None  # the lock this process already held, if any

    def _key(self) -> str:
        return os.path.realpath(self.directory)

    def acquire(self) -> DirectoryLock:
        if self.create:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise HashingError(f"cannot create {self.directory}: {exc.strerror or exc}") from None
        elif not self.directory.is_dir():
            raise FileNotFoundError(f"{self.directory} is not a directory")
        key = self._key()
        with _held_guard:
            outer = _held.get(key)
            if outer is not None and outer._owner_thread == threading.get_ident():
                outer._depth += 1
                self._outer = outer
                return self
        wait = -1 if self.timeout is None else float(self.timeout)
        # filelock chmods the file to exactly this mode: what a plain open() would give it.
        lock = FileLock(str(self.directory / LOCK_NAME), timeout=wait, mode=default_file_mode())
        try:
            lock.acquire()
        except Timeout:  # (a TimeoutError, so before OSError)
            waited = "did not wait" if wait == 0 else f"waited {wait:g} s"
            raise IndexLockedError(
                f"{self.directory} is locked by {describe_owner(self.directory)}; {waited}. "
                "Retry when it is done, or wait longer with a larger lock_timeout",
                param="lock_timeout",
            ) from None
        except OSError as exc:  # a read-only or foreign directory, a file system without flock
            raise HashingError(
                f"cannot take the writer lock {self.directory / LOCK_NAME}: "
                f"{exc.strerror or type(exc).__name__}; writing an index needs a writable directory"
            ) from None
        self._file_lock = lock
        self._owner_thread = threading.get_ident()
        self._depth = 1
        try:
            atomic_write_json(self.directory / OWNER_NAME, self.owner_info())
        except BaseException:
            lock.release()
            self._file_lock = None
            raise
        with _held_guard:
            _held[key] = self
        return self

    def owner_info(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "purpose": self.purpose,
        }

    def release(self) -> None:
        if self._outer is not None:
            with _held_guard:
                self._outer._depth -= 1
            self._outer = None
            return
        if self._file_lock is None:
            return
        self._depth -= 1
        if self._depth > 0:
            return
        with _held_guard:
            _held.pop(self._key(), None)
        try:
            (self.directory / OWNER_NAME).unlink(missing_ok=True)
        except OSError:
            pass
        self._file_lock.release()
        self._file_lock = None
        self._owner_thread = None

    @property
    def is_held(self) -> bool:
        return self._outer is not None or self._file_lock is not None

    def __enter__(self) -> DirectoryLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def holds_lock(directory: str | os.PathLike[str]) -> bool:
    """Whether this thread holds ``directory``'s writer lock."""
    with _held_guard:
        held = _held.get(os.path.realpath(directory))
        return held is not None and held._owner_thread == threading.get_ident()
