"""Where a search reports what it did.

The search loop never talks to the database directly: it calls a :class:`SearchRecorder`. The
store-backed recorder (``automl.store.recorder.StoreRecorder``) writes each call in one
transaction; :class:`MemoryRecorder` keeps everything in lists for tests and benchmarks. Every
method is idempotent per key (epoch index, update index) so that a resumed search may replay the
last completed epoch without duplicating rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


class SearchRecorder(Protocol):
    def on_start(self, plan: dict[str, Any]) -> None:
        """Search is about to run (``plan`` holds search_epochs, decisions and candidates)."""

    def on_epoch(self, epoch: int, record: dict[str, Any]) -> None:
        """One completed epoch. ``record`` keys: phase ('warmup'|'search'|...), round, sample
        (list[int] per decision, or None for mixed-op epochs), train_loss, train_metric,
        val_loss, val_metric, lr, wall_time (seconds of this epoch), plus strategy extras."""

    def on_distribution(
        self, update: int, epoch: int, theta: np.ndarray, alive: np.ndarray, extra: dict[str, Any]
    ) -> None:
        """The distribution after update number ``update`` (theta: decisions x candidates,
        alive: boolean mask of unpruned candidates; DARTS: softmax(alpha) with all alive)."""

    def on_resume(self, last_completed_epoch: int) -> None:
        """Forget anything recorded after ``last_completed_epoch`` (the checkpoint is older)."""

    def on_finish(self, genotype: dict[str, Any], summary: dict[str, Any]) -> None:
        """The final genotype (plus skip-capped variants etc. in ``summary``)."""

    def on_fail(self, message: str) -> None:
        """The search stopped with an error."""


@dataclass
class MemoryRecorder:
    """Keeps every report in memory (tests, benchmarks, dry runs)."""

    plan: dict[str, Any] | None = None
    epochs: dict[int, dict[str, Any]] = field(default_factory=dict)
    distributions: dict[int, dict[str, Any]] = field(default_factory=dict)
    genotype: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    failure: str | None = None

    def on_start(self, plan: dict[str, Any]) -> None:
        self.plan = plan

    def on_epoch(self, epoch: int, record: dict[str, Any]) -> None:
        self.epochs[epoch] = dict(record)

    def on_distribution(
        self, update: int, epoch: int, theta: np.ndarray, alive: np.ndarray, extra: dict[str, Any]
    ) -> None:
        self.distributions[update] = {
            "epoch": epoch,
            "theta": np.array(theta, dtype=float),
            "alive": np.array(alive, dtype=bool),
            **extra,
        }

    def on_resume(self, last_completed_epoch: int) -> None:
        self.epochs = {e: r for e, r in self.epochs.items() if e <= last_completed_epoch}
        self.distributions = {
            u: d for u, d in self.distributions.items() if d["epoch"] <= last_completed_epoch
        }

    def on_finish(self, genotype: dict[str, Any], summary: dict[str, Any]) -> None:
        self.genotype = genotype
        self.summary = summary

    def on_fail(self, message: str) -> None:
        self.failure = message
