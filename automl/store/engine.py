"""Engines for the store's URLs.

SQLite is the default and must survive several processes writing at once (parallel HPO workers,
a search writing while the dashboard reads): WAL journal, a generous busy timeout, and write
transactions opened with ``BEGIN IMMEDIATE`` so two writers never deadlock upgrading a read lock
(pysqlite's deferred BEGIN would fail one of them with "database is locked" at once). PostgreSQL
URLs are routed to psycopg 3.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError

from automl.errors import UserError
from automl.redact import safe_url

SQLITE_BUSY_TIMEOUT_MS = 60_000


def normalize_url(url: str) -> str:
    """Route bare ``postgresql://`` / ``postgres://`` URLs to psycopg 3 (the driver we ship)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL (None for in-memory or other back ends)."""
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def make_engine(url: str, *, readonly: bool = False) -> Engine:
    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UserError(
            f"invalid database URL '{safe_url(url)}' (expected e.g. sqlite:///automl.db or "
            "postgresql://user@host/db)"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        path = sqlite_path(url)
        if path is not None and not path.parent.exists():
            raise UserError(f"cannot open the store {safe_url(url)}: directory {path.parent} does not exist")
        if path is not None:
            _check_sqlite_file(path, url)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine, url, readonly=readonly)
        _report_readonly(engine, url)
        return engine
    try:
        return create_engine(url, pool_pre_ping=True)
    except ModuleNotFoundError as exc:
        raise UserError(
            f"no database driver for {backend} ({exc.name} missing): install the extra, "
            "e.g. pip install 'face-automl[postgres]'"
        ) from None


SQLITE_HEADER = b"SQLite format 3\x00"
"""The first 16 bytes of every SQLite 3 database file."""


def _check_sqlite_file(path: Path, url: str) -> None:
    """Refuse a store path that cannot be a SQLite database (a folder, or under a file) before
    SQLite fails on it with a traceback. Only ``stat`` calls: opening and closing the database
    file from Python would drop the POSIX locks every SQLite connection of this process holds on
    it (closing *any* descriptor of a file releases them), which lets another process corrupt the
    store (sqlite.org/howtocorrupt.html, section 2.2). A file that is not a database is reported
    by SQLite itself when it is first read (:func:`_not_a_database`)."""
    if not path.parent.is_dir():
        raise UserError(f"cannot open the store {safe_url(url)}: {path.parent} is a file, not a directory")
    if path.is_dir():
        raise UserError(f"cannot open the store {safe_url(url)}: {path} is a directory, not a database file")


def _not_a_database(url: str) -> UserError:
    path = sqlite_path(url)
    return UserError(
        f"cannot open the store {safe_url(url)}: {path} is not a SQLite database "
        "(give the path of an automl store, or of a file that does not exist yet)"
    )


def _report_readonly(engine: Engine, url: str) -> None:
    """A write to a database file the user cannot write (no write permission, ``chattr +i``) is one
    line naming the store, raised by the statement that tried (its transaction rolls back)."""

    @event.listens_for(engine, "handle_error")
    def _on_error(context) -> None:  # type: ignore[no-untyped-def]
        error = context.original_exception
        if isinstance(error, sqlite3.DatabaseError) and "file is not a database" in str(error):
            raise _not_a_database(url)
        if isinstance(error, sqlite3.OperationalError) and "readonly database" in str(error):
            raise UserError(
                f"the store {safe_url(url)} is read-only ({error}): this command writes to it, so it "
                "needs write access to the database file and its folder (or use another store)"
            )


def _configure_sqlite(engine: Engine, url: str, *, readonly: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Let SQLAlchemy's "begin" event own transactions (pysqlite would BEGIN on its own).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            if not readonly:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as exc:
            if "file is not a database" in str(exc):
                raise _not_a_database(url) from None
            raise
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:  # type: ignore[no-untyped-def]
        connection.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")
