"""The store's repository API: one method per logical change, one transaction per method.

Callers never see sessions or ORM objects: methods take and return plain dicts, so the CLI, the
search loop and the dashboard depend on this small surface rather than on the schema.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from automl.errors import UserError
from automl.redact import redact, safe_url
from automl.store import migrations_api
from automl.store.engine import make_engine, normalize_url, sqlite_path
from automl.store.models import (
    Architecture,
    Checkpoint,
    Distribution,
    Epoch,
    IndexRecord,
    Run,
    StoreMeta,
    utcnow,
)

RUN_STATES = ("created", "running", "completed", "failed", "interrupted", "pruned")
FINISHED_STATES = ("completed", "failed", "interrupted", "pruned")
EPOCH_FIELDS = (
    "phase",
    "round",
    "sample",
    "train_loss",
    "train_metric",
    "val_loss",
    "val_metric",
    "lr",
    "wall_time",
)

if TYPE_CHECKING:
    from automl.store.lifecycle import RunHandle


def genotype_hash(genotype: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(genotype, sort_keys=True).encode()).hexdigest()


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _jsonable(value: Any) -> Any:
    """Numpy scalars/arrays and tuples to plain JSON types (the JSON column must round-trip)."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _row(obj: Any, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    out = {c.key: getattr(obj, c.key) for c in obj.__table__.columns if c.key not in exclude}
    for key, value in out.items():
        if hasattr(value, "isoformat"):
            out[key] = value.isoformat()
    return out


class Store:
    """Runs, epochs, distributions, architectures, checkpoints and indexes in one SQL database."""

    def __init__(self, url: str, *, readonly: bool = False, artifacts_root: str | Path | None = None) -> None:
        self.url = normalize_url(url)
        self.readonly = readonly
        self.engine = make_engine(self.url, readonly=readonly)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.artifacts_root = Path(artifacts_root) if artifacts_root else self._default_artifacts_root()

    # -- lifecycle -------------------------------------------------------------------------
    def _default_artifacts_root(self) -> Path:
        if os.environ.get("AUTOML_HOME"):
            return Path(os.environ["AUTOML_HOME"]).expanduser()
        db_file = sqlite_path(self.url)
        return db_file.resolve().parent if db_file is not None else Path.cwd()

    def migrate(self) -> None:
        try:
            migrations_api.upgrade(self.engine, self.url)
        except OperationalError as exc:
            raise UserError(f"cannot reach the store at {self.safe_url}: {_first_line(exc)}") from None

    def ping(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except (SQLAlchemyError, OSError) as exc:
            raise UserError(f"cannot reach the store at {self.safe_url}: {_first_line(exc)}") from None

    @property
    def store_id(self) -> str:
        """This store's random id (made by the schema migration): it keys the runs' artifact folders."""
        if getattr(self, "_store_id", None) is None:
            with self._read() as s:
                row = s.get(StoreMeta, "store_id")
            if row is None:
                raise UserError(
                    f"the store at {self.safe_url} has no store id; open it once with write access"
                )
            self._store_id = row.value
        return self._store_id

    def artifacts_dir_for(self, run_id: int) -> Path:
        """``<artifacts root>/runs/<store id>/<run id>``: two stores in one folder never share files."""
        return self.artifacts_root / "runs" / self.store_id[:12] / str(run_id)

    @property
    def safe_url(self) -> str:
        return safe_url(self.url)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        if self.readonly:
            raise RuntimeError("this store was opened read-only")
        with self._sessions.begin() as session:
            yield session

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with self._sessions() as session:
            yield session

    # -- runs ------------------------------------------------------------------------------
    def create_run(
        self,
        *,
        kind: str,
        config: dict[str, Any] | None = None,
        seed: int | None = None,
        space: str | None = None,
        task: str | None = None,
        strategy: str | None = None,
        data: str | None = None,
        parent_run_id: int | None = None,
    ) -> int:
        # The store id keys the artifact folder: read (and cache) it before the write transaction,
        # since a read inside it would wait on SQLite's single writer -- this very transaction.
        _ = self.store_id
        with self._tx() as s:
            run = Run(
                kind=kind,
                state="created",
                config=_jsonable(config or {}),
                summary={},
                seed=seed,
                space=space,
                task=task,
                strategy=strategy,
                data=data,
                parent_run_id=parent_run_id,
                host=socket.gethostname(),
                pid=os.getpid(),
            )
            s.add(run)
            s.flush()
            folder = self.artifacts_dir_for(run.id)
            run.artifact_dir = str(folder)
            run_id = run.id
            try:  # inside the transaction: a folder that cannot be made leaves no run row behind
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UserError(
                    f"cannot create the run folder {folder}: {exc.strerror or exc}; make "
                    f"{self.artifacts_root} writable or set AUTOML_HOME to a writable folder"
                ) from None
        return run_id

    def run(
        self, *, kind: str, config: dict[str, Any] | None = None, resume: int | None = None, **kwargs: Any
    ) -> AbstractContextManager[RunHandle]:
        """``with store.run(kind=..., config=...) as run:`` -- :func:`automl.store.lifecycle.tracked_run`."""
        from automl.store.lifecycle import tracked_run

        return tracked_run(self, kind=kind, config=config, resume=resume, **kwargs)

    def claim_run(self, run_id: int, *, check: Any = None) -> str:
        """Make this process the run's owner (state running, host, pid, heartbeat) in one locked step.

        ``check(row)`` runs on the freshly locked row first and may raise to refuse the claim, so
        that two processes resuming one run at the same moment cannot both take it. Returns the
        claim's time (ISO 8601).
        """
        with self._tx() as s:
            run = self._get(s, run_id, lock=True)
            if check is not None:
                check(_row(run))
            now = utcnow()
            run.state, run.error = "running", None
            run.started_at = run.started_at or now
            run.finished_at = None
            run.heartbeat_at = now
            run.host, run.pid = socket.gethostname(), os.getpid()
        return now.isoformat()

    def heartbeat(self, run_id: int) -> None:
        """The owner's periodic sign of life (:mod:`automl.store.liveness`)."""
        with self._tx() as s:
            run = self._get(s, run_id)
            run.heartbeat_at = utcnow()

    def _get(self, s: Session, run_id: int, *, lock: bool = False) -> Run:
        # ``lock``: read-modify-write of the run row (summary merge, state change) must not lose a
        # concurrent writer's update on PostgreSQL (READ COMMITTED); SQLite's BEGIN IMMEDIATE
        # already serialises writers.
        run = s.get(Run, run_id, with_for_update=lock)
        if run is None:
            raise UserError(f"unknown run id {run_id} (list runs with `automl runs list`)")
        return run

    def get_run(self, run_id: int) -> dict[str, Any]:
        with self._read() as s:
            return _row(self._get(s, run_id))

    def run_dir(self, run_id: int) -> Path:
        run = self.get_run(run_id)
        path = Path(run["artifact_dir"] or self.artifacts_dir_for(run_id))
        path.mkdir(parents=True, exist_ok=True)
        return path

    def set_state(self, run_id: int, state: str, error: str | None = None) -> None:
        if state not in RUN_STATES:
            raise ValueError(f"unknown run state {state!r}")
        with self._tx() as s:
            run = self._get(s, run_id, lock=True)
            run.state = state
            now = utcnow()
            if state == "running":
                run.started_at = run.started_at or now
                run.host, run.pid, run.error = socket.gethostname(), os.getpid(), None
            if state in FINISHED_STATES:
                run.finished_at = now
            if error is not None:
                run.error = redact(error)  # an error may quote a URL: never store its password

    def set_summary(self, run_id: int, summary: dict[str, Any]) -> None:
        with self._tx() as s:
            run = self._get(s, run_id, lock=True)
            run.summary = {**(run.summary or {}), **_jsonable(summary)}

    def list_runs(
        self,
        *,
        kind: str | None = None,
        state: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        with self._read() as s:
            query = select(Run).order_by(Run.id.desc())
            if kind:
                query = query.where(Run.kind == kind)
            if state:
                query = query.where(Run.state == state)
            runs = s.scalars(query.limit(limit).offset(offset)).all()
            counts = dict(
                s.execute(
                    select(Epoch.run_id, func.count(Epoch.id))
                    .where(Epoch.run_id.in_([r.id for r in runs]))
                    .group_by(Epoch.run_id)
                ).all()
            )
            rows = []
            for run in runs:
                row = _row(run, exclude=("config",))
                row["epochs"] = counts.get(run.id, 0)
                rows.append(row)
            return rows

    def count_runs(self) -> int:
        with self._read() as s:
            return int(s.scalar(select(func.count(Run.id))) or 0)

    # -- epochs and distributions -----------------------------------------------------------
    def record_epoch(self, run_id: int, epoch: int, record: dict[str, Any]) -> None:
        """Insert or replace one epoch (idempotent: a resumed run may replay its last epoch)."""
        record = _jsonable(record)
        values = {k: record.get(k) for k in EPOCH_FIELDS}
        extra = {k: v for k, v in record.items() if k not in EPOCH_FIELDS}
        with self._tx() as s:
            self._get(s, run_id)
            row = s.scalar(select(Epoch).where(Epoch.run_id == run_id, Epoch.epoch == epoch))
            if row is None:
                s.add(Epoch(run_id=run_id, epoch=epoch, extra=extra, **values))
            else:
                for key, value in values.items():
                    setattr(row, key, value)
                row.extra = extra

    def record_distribution(
        self,
        run_id: int,
        update: int,
        epoch: int,
        theta: Any,
        alive: Any,
        extra: dict[str, Any] | None = None,
    ) -> None:
        with self._tx() as s:
            self._get(s, run_id)
            row = s.scalar(
                select(Distribution).where(Distribution.run_id == run_id, Distribution.update_index == update)
            )
            if row is None:
                row = Distribution(run_id=run_id, update_index=update, epoch=epoch, theta=[], alive=[])
                s.add(row)
            row.epoch = epoch
            row.theta = _jsonable(theta)
            row.alive = _jsonable(alive)
            row.extra = _jsonable(extra or {})

    def truncate_after(self, run_id: int, epoch: int) -> None:
        """Drop epochs and distributions recorded after ``epoch`` (resume from an older checkpoint)."""
        with self._tx() as s:
            s.execute(delete(Epoch).where(Epoch.run_id == run_id, Epoch.epoch > epoch))
            s.execute(delete(Distribution).where(Distribution.run_id == run_id, Distribution.epoch > epoch))

    def epochs(self, run_id: int) -> list[dict[str, Any]]:
        with self._read() as s:
            self._get(s, run_id)
            rows = s.scalars(select(Epoch).where(Epoch.run_id == run_id).order_by(Epoch.epoch)).all()
            out = []
            for row in rows:
                item = _row(row, exclude=("id", "run_id", "extra"))
                item.update(row.extra or {})
                out.append(item)
            return out

    def distributions(self, run_id: int) -> list[dict[str, Any]]:
        with self._read() as s:
            self._get(s, run_id)
            rows = s.scalars(
                select(Distribution).where(Distribution.run_id == run_id).order_by(Distribution.update_index)
            ).all()
            return [_row(r, exclude=("id", "run_id")) for r in rows]

    # -- architectures, checkpoints, indexes -----------------------------------------------
    def add_architecture(
        self,
        run_id: int | None,
        genotype: dict[str, Any],
        *,
        params: float | None = None,
        mflops: float | None = None,
        latency_ms: float | None = None,
        role: str = "final",
    ) -> int:
        genotype = _jsonable(genotype)
        with self._tx() as s:
            if run_id is not None:
                self._get(s, run_id)
            arch = Architecture(
                run_id=run_id,
                role=role,
                genotype=genotype,
                genotype_hash=genotype_hash(genotype),
                params=params,
                mflops=mflops,
                latency_ms=latency_ms,
            )
            s.add(arch)
            s.flush()
            return arch.id

    def list_architectures(self, run_id: int) -> list[dict[str, Any]]:
        with self._read() as s:
            rows = s.scalars(
                select(Architecture).where(Architecture.run_id == run_id).order_by(Architecture.id)
            ).all()
            return [_row(r) for r in rows]

    def final_architecture(self, run_id: int) -> dict[str, Any]:
        archs = [a for a in self.list_architectures(run_id) if a["role"] == "final"]
        if not archs:
            state = self.get_run(run_id)["state"]
            raise UserError(
                f"run {run_id} has no final architecture (state: {state}); "
                f"finish the search first, or resume search run {run_id}"
            )
        return archs[-1]

    def add_checkpoint(
        self,
        run_id: int,
        path: str | Path,
        *,
        sha256: str | None = None,
        kind: str = "weights",
        metrics: dict[str, Any] | None = None,
    ) -> int:
        path = Path(path).resolve()
        digest = sha256 or file_sha256(path)
        with self._tx() as s:
            self._get(s, run_id)
            ckpt = Checkpoint(
                run_id=run_id, path=str(path), sha256=digest, kind=kind, metrics=_jsonable(metrics or {})
            )
            s.add(ckpt)
            s.flush()
            return ckpt.id

    def list_checkpoints(self, run_id: int) -> list[dict[str, Any]]:
        with self._read() as s:
            rows = s.scalars(
                select(Checkpoint).where(Checkpoint.run_id == run_id).order_by(Checkpoint.id)
            ).all()
            return [_row(r) for r in rows]

    def add_index(
        self,
        path: str | Path,
        *,
        sha256: str,
        bits: int,
        size: int,
        run_id: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> int:
        with self._tx() as s:
            rec = IndexRecord(
                path=str(Path(path).resolve()),
                sha256=sha256,
                bits=bits,
                size=size,
                run_id=run_id,
                extra=_jsonable(extra or {}),
            )
            s.add(rec)
            s.flush()
            return rec.id

    def list_indexes(self) -> list[dict[str, Any]]:
        with self._read() as s:
            return [_row(r) for r in s.scalars(select(IndexRecord).order_by(IndexRecord.id.desc())).all()]

    # -- whole-run view ----------------------------------------------------------------------
    def run_report(self, run_id: int) -> dict[str, Any]:
        """Everything about one run: what ``automl runs show --json`` prints."""
        report = self.get_run(run_id)
        report["epochs"] = self.epochs(run_id)
        report["distributions"] = self.distributions(run_id)
        report["architectures"] = self.list_architectures(run_id)
        report["checkpoints"] = self.list_checkpoints(run_id)
        finals = [a for a in report["architectures"] if a["role"] == "final"]
        report["genotype"] = finals[-1]["genotype"] if finals else None
        return report


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def open_store(url: str, *, readonly: bool = False, migrate: bool = True) -> Store:
    """Open (and by default create or migrate) the store at ``url``."""
    store = Store(url, readonly=readonly)
    if migrate and not readonly:
        store.migrate()
    else:
        store.ping()
    return store
