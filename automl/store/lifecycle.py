"""One run lifecycle for every job that writes the store (search, train, hpo and its trials).

``with store.run(kind="search", config=...) as run:`` (or :func:`tracked_run`) owns everything
between "a row exists" and "the row says how it ended":

* **create or claim.** A new run is inserted; ``resume=ID`` claims an existing one instead, and
  refuses (:class:`LiveRunError`) a run whose owner is still alive -- two processes training one
  run interleave their epochs and double its architecture rows. The claim is one locked
  read-check-write, so two resumers racing for one run cannot both win.
* **running + heartbeat.** The state becomes ``running`` with this host and pid, and a daemon
  thread writes ``heartbeat_at`` every few seconds (:mod:`automl.store.liveness` tells readers a
  run whose process is gone).
* **signals.** SIGTERM (what SLURM, Kubernetes and ``kill`` send) and SIGHUP (a closed terminal)
  raise :class:`RunInterrupted` in the main thread, exactly like Ctrl-C does; a process started
  with SIGINT ignored (``cmd &`` in a non-interactive shell, nohup) gets Ctrl-C back. Strategies
  already save their state per epoch, so an interrupted run resumes where it stopped. Previous
  handlers are restored on exit.
* **the end.** A clean exit is ``completed``; :class:`RunPruned` or Optuna's ``TrialPruned`` is
  ``pruned`` (an HPO decision, not a failure and not a Ctrl-C); an interrupt is ``interrupted``
  (resumable); a :class:`~automl.errors.UserError` or any other exception is ``failed`` with one
  line of error text (``Type: message`` for unexpected errors), passwords redacted. The exception
  always propagates.
* **wall time.** Each process's stretch is a segment in ``summary["segments"]``; ``wall_time`` is
  their sum, so a resumed run reports all of its time.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from automl.errors import UserError
from automl.store.liveness import HEARTBEAT_INTERVAL_S, LIVE, run_liveness, seconds_since_heartbeat

if TYPE_CHECKING:
    from automl.store.repository import Store

FINAL_STATES = ("completed", "failed", "interrupted", "pruned")
HANDLED_SIGNALS = ("SIGTERM", "SIGHUP")


class RunInterrupted(KeyboardInterrupt):
    """The process was asked to stop (SIGTERM, SIGHUP): handled like Ctrl-C."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        super().__init__(f"stopped by {self.signal_name}")


class RunPruned(Exception):
    """Raised inside a run to end it as ``pruned`` (an early stop decided by a tuner)."""


class LiveRunError(UserError):
    """A run to resume is still owned by a live process."""


class RunRestartWarning(UserWarning):
    """A resumed run found no state to continue from and starts again from the beginning."""


def _is_pruned(exc: BaseException) -> bool:
    if isinstance(exc, RunPruned):
        return True
    optuna = sys.modules.get("optuna")  # never import optuna just to ask
    pruned = getattr(getattr(optuna, "exceptions", None), "TrialPruned", None)
    return pruned is not None and isinstance(exc, pruned)


def error_text(exc: BaseException) -> str:
    """The one line stored in ``automl_runs.error``: a user error's own message, else ``Type: message``."""
    if isinstance(exc, UserError):
        text = str(exc)
    elif isinstance(exc, RunInterrupted):
        text = f"interrupted by {exc.signal_name}"
    elif isinstance(exc, KeyboardInterrupt):
        text = "interrupted by the user (Ctrl-C)"
    else:
        message = " ".join(str(exc).split())
        text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text[:2000]


def final_state(exc: BaseException | None) -> str:
    if exc is None:
        return "completed"
    if _is_pruned(exc):
        return "pruned"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return "failed"


@contextmanager
def interrupt_on_signals(signals: tuple[str, ...] = HANDLED_SIGNALS) -> Iterator[None]:
    """Turn SIGTERM / SIGHUP into :class:`RunInterrupted` (and re-enable an ignored SIGINT).

    Only the main thread may install handlers; elsewhere this is a no-op. The first signal raises;
    further ones while the run records how it ended are ignored, so the ending is written whole.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def _raise(signum: int, _frame: FrameType | None) -> None:
        if fired:
            return
        fired.append(signum)
        raise RunInterrupted(signum)

    previous: dict[int, Any] = {}
    for name in signals:
        signum = getattr(signal, name, None)
        if signum is not None:
            previous[signum] = signal.signal(signum, _raise)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # A background job inherits SIGINT ignored; a run should still stop on Ctrl-C / kill -INT.
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class _Heartbeat:
    """A daemon thread writing the run's ``heartbeat_at`` until stopped."""

    def __init__(self, store: Store, run_id: int, interval_s: float) -> None:
        self._store, self._run_id, self._interval = store, run_id, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"automl-heartbeat-{run_id}", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._store.heartbeat(self._run_id)
            except Exception:  # a busy or briefly unreachable store: the next beat tries again
                continue

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)


@dataclass
class RunHandle:
    """The run a ``with store.run(...)`` block works on."""

    store: Store
    id: int
    kind: str
    dir: Path
    resumed: bool = False
    state: str | None = None  # how it ended, set on exit
    _notes: list[str] = field(default_factory=list)

    def set_summary(self, summary: dict[str, Any]) -> None:
        self.store.set_summary(self.id, summary)

    def note_restart(self, reason: str) -> None:
        """Record (and warn) that a resumed run starts again from the beginning."""
        restarts = list((self.store.get_run(self.id).get("summary") or {}).get("restarts") or [])
        restarts.append({"at": datetime.now(UTC).isoformat(timespec="seconds"), "reason": reason})
        self.store.set_summary(self.id, {"restarts": restarts})
        warnings.warn(f"run {self.id}: {reason}", RunRestartWarning, stacklevel=2)


def check_resumable(run: dict[str, Any], kind: str) -> None:
    """Refuse to resume a run of another kind, a completed one, or one whose owner is alive."""
    run_id = run["id"]
    if run.get("kind") != kind:
        raise UserError(f"run {run_id} is a {run.get('kind')} run, not a {kind} run")
    if run.get("state") == "completed":
        raise UserError(f"{kind} run {run_id} is already completed (nothing to resume)")
    if run_liveness(run) == LIVE and run.get("state") == "running":
        ago = seconds_since_heartbeat(run)
        raise LiveRunError(
            f"{kind} run {run_id} is still running (pid {run.get('pid')} on {run.get('host')}, last "
            f"heartbeat {ago:.0f} s ago); stop that process first, or wait a minute if it was killed"
        )


@contextmanager
def tracked_run(
    store: Store,
    *,
    kind: str,
    config: dict[str, Any] | None = None,
    resume: int | None = None,
    handle_signals: bool = True,
    heartbeat_interval_s: float = HEARTBEAT_INTERVAL_S,
    **columns: Any,
) -> Iterator[RunHandle]:
    """Create (or, with ``resume``, claim) a run and own its state until the block ends.

    ``columns`` are the run row's descriptive columns (seed, space, task, strategy, data,
    parent_run_id). See the module docstring for what each way out of the block records.
    """
    if resume is None:
        run_id = store.create_run(kind=kind, config=config, **columns)
    else:
        check_resumable(store.get_run(resume), kind)
        run_id = resume
    recheck = (lambda row: check_resumable(row, kind)) if resume is not None else None
    claimed = store.claim_run(run_id, check=recheck)
    handle = RunHandle(
        store=store, id=run_id, kind=kind, dir=store.run_dir(run_id), resumed=resume is not None
    )
    beat = _Heartbeat(store, run_id, heartbeat_interval_s)
    started_wall, started_at = time.perf_counter(), claimed
    signals = interrupt_on_signals() if handle_signals else nullcontext()
    exc_seen: BaseException | None = None
    beat.start()
    try:
        with signals:
            try:
                yield handle
            except BaseException as exc:
                exc_seen = exc
                if isinstance(exc, KeyboardInterrupt):  # the CLI names the run in its resume hint
                    exc.run_id, exc.run_kind = run_id, kind  # type: ignore[attr-defined]
                raise
            finally:
                handle.state = final_state(exc_seen)
                beat.stop()
                _finish(store, run_id, handle.state, exc_seen, started_at, time.perf_counter() - started_wall)
    finally:
        beat.stop()


def _finish(
    store: Store, run_id: int, state: str, exc: BaseException | None, started_at: str, seconds: float
) -> None:
    summary = store.get_run(run_id).get("summary") or {}
    segments = list(summary.get("segments") or [])
    segments.append({"started_at": started_at, "seconds": round(seconds, 3), "ended": state})
    store.set_summary(
        run_id,
        {"segments": segments, "wall_time": round(sum(float(s.get("seconds", 0.0)) for s in segments), 3)},
    )
    store.set_state(run_id, state, error=None if exc is None or state == "completed" else error_text(exc))
