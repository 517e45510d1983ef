"""Is a ``running`` run really running? What any reader (CLI, dashboard) shows for it.

A run's state is written by the process that owns it; a process killed with SIGKILL, a machine
that lost power or a scheduler's hard kill never gets to write ``interrupted``. So the owner also
writes ``heartbeat_at`` every :data:`HEARTBEAT_INTERVAL_S` seconds
(:mod:`automl.store.lifecycle`), and a reader judges a ``running`` (or never started ``created``)
run by two facts:

* ``dead``: the run's host is this machine and no process with its pid exists;
* ``stale``: its last heartbeat (or, for rows written before heartbeats existed, its last update)
  is older than :data:`STALE_AFTER_S` -- the owner is gone, hung, or on a host we cannot see;
* ``live`` otherwise.

Finished runs (completed, failed, interrupted, pruned) have no liveness (``None``). Pure
functions of a run row: no database access, so the dashboard and ``runs list`` share them.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from typing import Any

HEARTBEAT_INTERVAL_S = 10.0
STALE_AFTER_S = 60.0
ACTIVE_STATES = ("created", "running")
LIVE, STALE, DEAD = "live", "stale", "dead"


def _as_datetime(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=None) if value.tzinfo else value
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists on this machine (signal 0 probes without killing)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def last_sign_of_life(run: dict[str, Any]) -> datetime | None:
    """The heartbeat, else the row's last update, else its start or creation time (UTC, naive)."""
    for key in ("heartbeat_at", "updated_at", "started_at", "created_at"):
        stamp = _as_datetime(run.get(key))
        if stamp is not None:
            return stamp
    return None


def run_liveness(
    run: dict[str, Any], *, now: datetime | None = None, this_host: str | None = None
) -> str | None:
    """``"live"``, ``"stale"`` or ``"dead"`` for an active run; ``None`` for a finished one."""
    if run.get("state") not in ACTIVE_STATES:
        return None
    host = this_host if this_host is not None else socket.gethostname()
    pid = run.get("pid")
    if run.get("host") == host and isinstance(pid, int) and not pid_alive(pid):
        return DEAD
    seen = last_sign_of_life(run)
    now = now or datetime.now(UTC).replace(tzinfo=None)
    if seen is None or (now - seen).total_seconds() > STALE_AFTER_S:
        return STALE
    return LIVE


def seconds_since_heartbeat(run: dict[str, Any], *, now: datetime | None = None) -> float | None:
    seen = last_sign_of_life(run)
    if seen is None:
        return None
    now = now or datetime.now(UTC).replace(tzinfo=None)
    return (now - seen).total_seconds()


def shown_state(run: dict[str, Any], *, now: datetime | None = None) -> str:
    """The state a reader should print: ``running`` becomes ``running (dead)`` / ``(stale)``."""
    state = str(run.get("state") or "")
    alive = run_liveness(run, now=now)
    return f"{state} ({alive})" if alive in (STALE, DEAD) else state
