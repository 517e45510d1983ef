"""Optuna storages and trial workers that share one study: locally (``--workers K``) or across machines.

Three guarantees the plain ``study.optimize(n_trials=...)`` loop does not give, and why:

* **Exactly N trials.** ``n_trials`` is per process, and ``MaxTrialsCallback`` only stops a worker
  *after* its trial, so K workers overshoot by up to K-1. Here every worker takes a study-wide
  lock, counts the trials already taken (finished or running, not counting trials that were
  retried) and asks for a new trial only while that count is below N. The lock is a file lock
  beside the SQLite / journal file (one machine) or a PostgreSQL advisory lock (many machines).
* **A killed worker's trial is re-run.** A worker that dies with SIGKILL leaves its trial RUNNING
  forever. Two detectors turn it into FAIL and enqueue a copy of its parameters (Optuna's
  :class:`~optuna.storages.RetryHeartbeatStaleTrialCallback`, the Optuna 5 replacement for the
  deprecated ``RetryFailedTrialCallback``): on the RDB storages the heartbeat (``heartbeat_interval``
  / ``grace_period``), which works across machines; and, on the worker's own host, the recorded
  process id being gone, which also works for the journal storage (it has no heartbeat) and needs
  no grace period.
* **No idle exit while a trial may still come back.** A worker that finds the budget taken waits
  while other trials are RUNNING: if their worker died, the retry lands in the queue and is run.

Storage URLs: any SQLAlchemy URL (``sqlite:///x.db``, ``postgresql://...``) is Optuna's RDB storage;
``journal:PATH`` is ``JournalStorage(JournalFileBackend(PATH))``. Which one to use for K local
workers was decided by ``automl bench hpo`` (BENCHMARKS_HPO.md): see :func:`choose_storage`.
"""

from __future__ import annotations

import contextlib
import fcntl
import multiprocessing as mp
import os
import signal
import socket
import sys
import threading
import time
import types
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from automl.errors import UserError
from automl.hpo_registry import create_pruner, create_sampler
from automl.redact import safe_url
from automl.store.engine import normalize_url, sqlite_path

JOURNAL_PREFIX = "journal:"
WORKER_ATTR = "worker"
DEFAULT_HEARTBEAT_S = 10
SQLITE_TIMEOUT_S = 60

ObjectiveFn = Callable[[optuna.Trial], Any]


# ------------------------------------------------------------------------------------- storages


def storage_kind(url: str) -> str:
    """``journal``, ``sqlite``, ``postgresql`` or the SQLAlchemy backend name of another URL."""
    if url.startswith(JOURNAL_PREFIX):
        return "journal"
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(normalize_url(url)).get_backend_name()
    except ArgumentError:
        raise UserError(
            f"invalid storage URL '{safe_url(url)}' "
            "(expected sqlite:///x.db, postgresql://user@host/db or journal:PATH)"
        ) from None


def journal_path(url: str) -> Path:
    path = Path(url[len(JOURNAL_PREFIX) :]).expanduser()
    if not str(path) or str(path) == ".":
        raise UserError("journal storage needs a file path, e.g. journal:./hpo.journal", argument="storage")
    return path


def choose_storage(store_url: str, workers: int) -> str:
    """The Optuna storage for a study whose run lives in the store at ``store_url``: the store's own DB.

    Measured with ``automl bench hpo`` (BENCHMARKS_HPO.md, 2-core CPU): on a cheap objective the
    journal file is 3-7x faster than the SQLite RDB (about 10 vs 36-69 ms of storage work per trial
    for 1-4 workers), and PostgreSQL is slower still on one machine. But a trial here trains a
    network for tens of seconds at the very least, so even the slowest figure is well under 1% of a
    trial, while the RDB keeps the study in the same file as the store (one thing to back up, one
    thing for the dashboard to read) and has heartbeats for workers on other machines. So the
    store's database is used for any K; ``--storage journal:PATH`` remains for studies of many very
    cheap trials. PostgreSQL URLs are used as they are.
    """
    del workers  # the measured choice does not depend on K for K <= 4 (see above)
    return store_url


def open_storage(
    url: str,
    *,
    heartbeat_interval: int | None = DEFAULT_HEARTBEAT_S,
    grace_period: int | None = None,
    max_retry: int | None = 3,
) -> BaseStorage:
    """Optuna storage for ``url`` with heartbeats and retry of stale trials where the back end has them."""
    kind = storage_kind(url)
    retry = _retry_callback(max_retry)
    if kind == "journal":
        path = journal_path(url)
        if not path.parent.exists():
            raise UserError(f"cannot create the journal {path}: directory {path.parent} does not exist")
        return JournalStorage(JournalFileBackend(str(path)))
    url = normalize_url(url)
    engine_kwargs: dict[str, Any] = {}
    if kind == "sqlite":
        db = sqlite_path(url)
        if db is not None and not db.parent.exists():
            raise UserError(f"cannot open the storage {safe_url(url)}: directory {db.parent} does not exist")
        engine_kwargs["connect_args"] = {"timeout": SQLITE_TIMEOUT_S}
    else:
        engine_kwargs["pool_pre_ping"] = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            storage = RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=retry if heartbeat_interval else None,
            )
        except ImportError as exc:
            raise UserError(f"no database driver for {url.split(':', 1)[0]}: {exc}") from None
        except Exception as exc:  # sqlalchemy.exc.OperationalError and friends: unreachable server
            if type(exc).__module__.startswith("sqlalchemy"):
                first = str(getattr(exc, "orig", exc)).strip().splitlines()
                raise UserError(
                    f"cannot open the Optuna storage {safe_url(url)}: {first[0] if first else exc}"
                ) from None
            raise
    if kind == "sqlite":
        _sqlite_wal(storage)
    return storage


def _sqlite_wal(storage: RDBStorage) -> None:
    """WAL + ``synchronous=NORMAL`` on every connection of Optuna's engine.

    WAL lets readers (the dashboard, other workers' budget polls) proceed beside one writer.
    ``BEGIN IMMEDIATE`` takes the write lock up front, so concurrent workers queue on the busy
    timeout instead of failing. ``synchronous=NORMAL`` drops the fsync from every commit (a trial
    is about a dozen commits); in WAL mode that can lose the last commits on a power cut but never
    corrupts the file, and a killed process loses nothing. Profiling: fsync was ~40% of a cheap trial.
    """
    from sqlalchemy import event

    @event.listens_for(storage.engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # transactions are begun by the listener below
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(storage.engine, "begin")
    def _on_begin(connection) -> None:  # type: ignore[no-untyped-def]
        # As the store's engine: a deferred BEGIN that later writes can fail at once with
        # "database is locked" when two workers upgrade their read locks together.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    storage.engine.dispose()  # connections opened while creating the tables lack the settings


def _retry_callback(max_retry: int | None) -> RetryHeartbeatStaleTrialCallback:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RetryHeartbeatStaleTrialCallback(max_retry=max_retry)


# -------------------------------------------------------------------------------- the study lock


class StudyLock:
    """Mutual exclusion among every worker of one study (held only while counting and asking)."""

    def __init__(self, url: str, study_name: str) -> None:
        kind = storage_kind(url)
        self._fd: int | None = None
        self._path: Path | None = None
        self._conn: Any = None
        self._key = zlib.crc32(study_name.encode()) - (1 << 31)
        if kind == "journal":
            self._path = Path(str(journal_path(url)) + ".automl-lock")
        elif kind == "sqlite":
            db = sqlite_path(normalize_url(url))
            self._path = Path(str(db) + ".automl-lock") if db is not None else None
        elif kind == "postgresql":
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool

            self._engine = create_engine(normalize_url(url), poolclass=NullPool)
            self._conn = self._engine.connect()
            self._conn.commit()

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        if self._path is not None:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
        elif self._conn is not None:
            # Session-level advisory lock: released by the server if this worker dies holding it.
            self._conn.exec_driver_sql(f"SELECT pg_advisory_lock({self._key})")
            self._conn.commit()
            try:
                yield
            finally:
                self._conn.exec_driver_sql(f"SELECT pg_advisory_unlock({self._key})")
                self._conn.commit()
        else:  # other RDBs: no lock (the budget may overshoot by a trial per racing worker)
            yield

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._engine.dispose()
            self._conn = None


# ---------------------------------------------------------------------------- liveness of workers


def _process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (guards against a recycled pid); None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def worker_identity() -> dict[str, Any]:
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "start": _process_start(pid)}


def _is_dead_local(worker: Any) -> bool:
    if not isinstance(worker, dict) or worker.get("host") != socket.gethostname():
        return False
    pid = worker.get("pid")
    if not isinstance(pid, int):
        return False
    if not Path("/proc").is_dir():  # no procfs: fall back to signal 0
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    start = _process_start(pid)
    return start is None or (worker.get("start") is not None and start != worker["start"])


def reap_dead_local_trials(study: optuna.Study, retry: RetryHeartbeatStaleTrialCallback) -> list[int]:
    """Fail RUNNING trials whose worker process on this host is gone, and enqueue their retries."""
    storage = study._storage
    reaped = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not _is_dead_local(trial.user_attrs.get(WORKER_ATTR)):
            continue
        try:
            storage.set_trial_system_attr(trial._trial_id, "fail_reason", "worker process died")
            if not storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
        retry(study, storage.get_trial(trial._trial_id))
        reaped.append(trial.number)
    return reaped


def fail_stale(study: optuna.Study) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


# ---------------------------------------------------------------------------------- the budget


@dataclass
class BudgetCount:
    taken: int  # finished or running trials that count towards N
    running: int
    waiting: int
    retried: int


def count_budget(trials: list[FrozenTrial]) -> BudgetCount:
    """Trials that use up the budget: everything except queued trials and failures that were retried."""
    retried: set[int] = set()
    for t in trials:
        retried.update(int(n) for n in t.system_attrs.get("retry_history", []))
    waiting = sum(t.state == TrialState.WAITING for t in trials)
    running = sum(t.state == TrialState.RUNNING for t in trials)
    taken = sum(t.state != TrialState.WAITING and t.number not in retried for t in trials)
    return BudgetCount(taken=taken, running=running, waiting=waiting, retried=len(retried))


# --------------------------------------------------------------------------------- the worker


@dataclass
class StudySpec:
    """Everything a worker process needs to join a study (picklable)."""

    storage_url: str
    study_name: str
    n_trials: int
    sampler: Any = "tpe"  # a name of automl.hpo_registry or an Optuna sampler (picklable)
    pruner: Any = "median"  # likewise
    seed: int | None = 0
    heartbeat_interval: int | None = DEFAULT_HEARTBEAT_S
    grace_period: int | None = None
    max_retry: int | None = 3
    poll_interval: float = 0.5
    reap_local: bool = True


@dataclass
class WorkerReport:
    worker: int
    trials: list[int] = field(default_factory=list)
    reaped: list[int] = field(default_factory=list)


def load_worker_study(spec: StudySpec, worker_index: int = 0) -> optuna.Study:
    storage = open_storage(
        spec.storage_url,
        heartbeat_interval=spec.heartbeat_interval,
        grace_period=spec.grace_period,
        max_retry=spec.max_retry,
    )
    try:
        study = optuna.load_study(study_name=spec.study_name, storage=storage)
    except KeyError:
        raise UserError(f"no study '{spec.study_name}' in {safe_url(spec.storage_url)}") from None
    seed = None if spec.seed is None else spec.seed + worker_index
    if seed is not None and study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        # Another process (say, the same command on another machine) is already working on this
        # study: the same seed would replay its random start-up suggestions, so make this one differ.
        seed += zlib.crc32(f"{socket.gethostname()}:{os.getpid()}".encode()) % 1_000_003
    study.sampler = create_sampler(spec.sampler, seed=seed)
    study.pruner = create_pruner(spec.pruner)
    return study


def heartbeat_interval(storage: BaseStorage) -> int | None:
    """The storage's heartbeat interval; None where it has none (journal) or it is off.

    Studies wrap an RDB storage in Optuna's cache layer, which forwards the heartbeat API, so this
    asks the object rather than testing for ``RDBStorage``.
    """
    getter = getattr(storage, "get_heartbeat_interval", None)
    return getter() if callable(getter) else None


class _Heartbeat:
    """Records the trial's heartbeat every ``interval`` seconds in a thread (RDB storages only)."""

    def __init__(self, storage: BaseStorage, trial_id: int) -> None:
        self._interval = heartbeat_interval(storage)
        self._storage = storage
        self._trial_id = trial_id
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> _Heartbeat:
        if self._interval:
            self._thread = threading.Thread(target=self._beat, daemon=True)
            self._thread.start()
        return self

    def _beat(self) -> None:
        assert self._interval is not None
        while not self._stop.wait(self._interval):
            with contextlib.suppress(Exception):  # a missed beat is retried on the next tick
                self._storage.record_heartbeat(self._trial_id)  # type: ignore[attr-defined]

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def _ask_within_budget(
    study: optuna.Study, spec: StudySpec, retry: RetryHeartbeatStaleTrialCallback, report: WorkerReport
) -> tuple[optuna.Trial | None, BudgetCount]:
    if spec.reap_local:
        report.reaped += reap_dead_local_trials(study, retry)
    fail_stale(study)
    count = count_budget(study.get_trials(deepcopy=False))
    if count.taken >= spec.n_trials:
        return None, count
    with warnings.catch_warnings():
        # Optuna warns that heartbeats are meant for Study.optimize; this loop beats them itself.
        warnings.filterwarnings("ignore", message="Heartbeat of storage")
        trial = study.ask()
    trial.set_user_attr(WORKER_ATTR, worker_identity())
    storage = study._storage
    if heartbeat_interval(storage):
        storage.record_heartbeat(trial._trial_id)  # type: ignore[attr-defined]  # (no beat: never stale)
    return trial, count


def run_worker(
    spec: StudySpec,
    objective: ObjectiveFn,
    *,
    worker_index: int = 0,
    study: optuna.Study | None = None,
    on_trial: Callable[[FrozenTrial], None] | None = None,
) -> WorkerReport:
    """Run trials of ``spec``'s study until N are taken and none can come back for a retry."""
    study = study or load_worker_study(spec, worker_index)
    retry = _retry_callback(spec.max_retry)
    lock = StudyLock(spec.storage_url, spec.study_name)
    report = WorkerReport(worker=worker_index)
    try:
        while True:
            with lock.hold():
                trial, count = _ask_within_budget(study, spec, retry, report)
            if trial is None:
                if count.running == 0:
                    return report
                time.sleep(spec.poll_interval)  # a running trial's worker may die: stay to re-run it
                continue
            report.trials.append(trial.number)
            frozen = _run_one(study, trial, objective)
            if on_trial is not None:
                on_trial(frozen)
    finally:
        lock.close()


def _run_one(study: optuna.Study, trial: optuna.Trial, objective: ObjectiveFn) -> FrozenTrial:
    with _Heartbeat(study._storage, trial._trial_id):
        try:
            values = objective(trial)
        except optuna.TrialPruned:
            return study.tell(trial, state=TrialState.PRUNED)
        except Exception as exc:  # a broken trial must not stop the study: record why, go on
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:500])
            return study.tell(trial, state=TrialState.FAIL)
    return study.tell(trial, values)


# ------------------------------------------------------------------------------ local processes


def _worker_main(spec: StudySpec, objective: ObjectiveFn, index: int, threads: int) -> None:
    try:
        from automl.threads import apply_cpu_threads

        apply_cpu_threads("cpu", threads)  # this worker's share, from automl.threads.worker_threads
    except ImportError:  # no torch: nothing to set
        pass
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        run_worker(spec, objective, worker_index=index)
    except KeyboardInterrupt as exc:
        # SIGTERM from the parent (or Ctrl-C) mid-trial: the trial's run is already marked
        # interrupted by its lifecycle; exit like the signal would, without a traceback.
        sys.exit(128 + int(getattr(exc, "signum", signal.SIGINT)))


@dataclass
class PoolResult:
    exit_codes: list[int]
    counts: dict[str, int]
    wall_time: float


def run_local_workers(
    spec: StudySpec,
    objective: ObjectiveFn,
    workers: int,
    *,
    on_poll: Callable[[dict[str, int], BudgetCount], None] | None = None,
    poll_interval: float = 0.5,
    on_start: Callable[[list[Any]], None] | None = None,
    threads: int | None = None,
) -> PoolResult:
    """Start ``workers`` processes on one study and wait for them.

    Each process runs on ``threads`` torch threads (None: the cores split between the workers,
    :func:`automl.threads.worker_threads`), so K workers do not oversubscribe the machine.

    Processes come from a fork server (a clean process that imported the heavy modules once and
    never ran a torch op, so no OpenMP state is forked), or are spawned where there is none.

    ``objective`` must be picklable (a module-level function or an object of a module-level
    class). ``on_poll`` gets the study's state counts while the workers run (for a progress bar);
    ``on_start`` gets the process handles (tests use it to kill one).
    """
    if workers < 1:
        raise UserError(f"the number of workers must be at least 1 (got {workers})", argument="workers")
    ctx = _worker_context()
    threads = threads if threads is not None else max(1, (os.cpu_count() or 1) // workers)
    procs = [
        ctx.Process(target=_worker_main, args=(spec, objective, i, threads), daemon=False)
        for i in range(workers)
    ]
    start = time.perf_counter()
    with _children_skip_automl_main():
        for proc in procs:
            proc.start()
    if on_start is not None:
        on_start(procs)
    monitor = None
    try:
        while any(p.is_alive() for p in procs):
            if on_poll is not None:
                monitor = monitor or load_worker_study(spec)
                trials = monitor.get_trials(deepcopy=False)
                on_poll(count_states(trials), count_budget(trials))
            for p in procs:
                p.join(timeout=poll_interval / len(procs))
    except BaseException:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=10)
        raise
    monitor = monitor or load_worker_study(spec)
    trials = monitor.get_trials(deepcopy=False)
    if on_poll is not None:
        on_poll(count_states(trials), count_budget(trials))
    return PoolResult(
        exit_codes=[int(p.exitcode if p.exitcode is not None else -1) for p in procs],
        counts=count_states(trials),
        wall_time=time.perf_counter() - start,
    )


# Imported once by the fork server, then shared by every worker it forks (saves seconds of imports
# per worker; a test session or a long-lived process starts the server once).
FORKSERVER_PRELOAD = ["automl.hpo_workers", "automl.hpo", "automl.store", "automl.data", "automl.training"]


def _worker_context() -> Any:
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(FORKSERVER_PRELOAD)
    return ctx


@contextlib.contextmanager
def _children_skip_automl_main() -> Iterator[None]:
    """Under ``python -m automl`` a spawned child would re-import ``automl.__main__`` (it calls the
    CLI at import) as its main module; hide it while starting workers (their objective lives in an
    importable module, never in ``__main__``)."""
    main = sys.modules.get("__main__")
    if getattr(getattr(main, "__spec__", None), "name", None) != "automl.__main__":
        yield
        return
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main  # type: ignore[assignment]


def count_states(trials: list[FrozenTrial]) -> dict[str, int]:
    """Trials per state, every state present (``{"running": 0, "complete": 3, ...}``)."""
    counts = {s.name.lower(): 0 for s in TrialState}
    for t in trials:
        counts[t.state.name.lower()] += 1
    return counts
