"""SQLAlchemy 2 models of the run store.

Every table is prefixed ``automl_`` so the store can live in the same database as Optuna's RDB
storage (which owns ``studies``, ``trials``, ``alembic_version``...). Large tensors never go in
the database: checkpoints and indexes are files, referenced by path + sha256.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Run(Base):
    """One search, training or HPO job and its resolved configuration."""

    __tablename__ = "automl_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True, default="created")
    space: Mapped[str | None] = mapped_column(String(64))
    task: Mapped[str | None] = mapped_column(String(16))
    strategy: Mapped[str | None] = mapped_column(String(32))
    data: Mapped[str | None] = mapped_column(String(512))
    seed: Mapped[int | None] = mapped_column(Integer)
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer)
    parent_run_id: Mapped[int | None] = mapped_column(ForeignKey("automl_runs.id", ondelete="SET NULL"))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    artifact_dir: Mapped[str | None] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Written every few seconds by the process that owns a running run (automl.store.lifecycle):
    # a reader tells a live run from one whose process is gone by its age.
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    epochs: Mapped[list[Epoch]] = relationship(back_populates="run", cascade="all, delete-orphan")


class StoreMeta(Base):
    """Facts about the store itself; ``store_id`` (a random UUID, made once) keys its artifacts.

    Two stores in one folder (``a.db`` and ``b.db``) both have a run 1: their artifact folders
    and resume states must never be the same files.
    """

    __tablename__ = "automl_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class Epoch(Base):
    """Per-epoch metrics and, for single-path strategies, the architecture sampled that epoch."""

    __tablename__ = "automl_epochs"
    __table_args__ = (UniqueConstraint("run_id", "epoch", name="uq_automl_epochs_run_epoch"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("automl_runs.id", ondelete="CASCADE"), index=True)
    epoch: Mapped[int] = mapped_column(Integer)
    phase: Mapped[str | None] = mapped_column(String(16))
    round: Mapped[int | None] = mapped_column(Integer)
    sample: Mapped[list[Any] | None] = mapped_column(JSON)
    train_loss: Mapped[float | None] = mapped_column(Float)
    train_metric: Mapped[float | None] = mapped_column(Float)
    val_loss: Mapped[float | None] = mapped_column(Float)
    val_metric: Mapped[float | None] = mapped_column(Float)
    lr: Mapped[float | None] = mapped_column(Float)
    wall_time: Mapped[float | None] = mapped_column(Float)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    run: Mapped[Run] = relationship(back_populates="epochs")


class Distribution(Base):
    """The DDPNAS theta (or DARTS softmax(alpha)) and the surviving ops after one update."""

    __tablename__ = "automl_distributions"
    __table_args__ = (UniqueConstraint("run_id", "update_index", name="uq_automl_distributions_run_update"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("automl_runs.id", ondelete="CASCADE"), index=True)
    update_index: Mapped[int] = mapped_column(Integer)
    epoch: Mapped[int] = mapped_column(Integer)
    theta: Mapped[list[Any]] = mapped_column(JSON)
    alive: Mapped[list[Any]] = mapped_column(JSON)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Architecture(Base):
    """A genotype with its cost; ``role`` says why it was stored (final, skip_cap_3, candidate...)."""

    __tablename__ = "automl_architectures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("automl_runs.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(32), default="final")
    genotype: Mapped[dict[str, Any]] = mapped_column(JSON)
    genotype_hash: Mapped[str] = mapped_column(String(64), index=True)
    params: Mapped[float | None] = mapped_column(Float)
    mflops: Mapped[float | None] = mapped_column(Float)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Checkpoint(Base):
    """Weights on disk (safetensors), referenced by path and content hash."""

    __tablename__ = "automl_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("automl_runs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32), default="weights")
    path: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str] = mapped_column(String(64))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class IndexRecord(Base):
    """A saved retrieval index directory (its manifest's hash, code length and size)."""

    __tablename__ = "automl_indexes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(String(1024), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    bits: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("automl_runs.id", ondelete="SET NULL"))
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
