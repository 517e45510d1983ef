"""A :class:`~automl.nas.recorder.SearchRecorder` that writes to the store.

Each call is one transaction, so a search killed at any moment leaves whole epochs and whole
distribution snapshots, never half of one. The run's *state* (running, completed, failed,
interrupted) is not the recorder's business: :mod:`automl.store.lifecycle` owns it, so a
recorder writes what the search found and the lifecycle writes how the run ended.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from automl.store.repository import Store


class StoreRecorder:
    def __init__(self, store: Store, run_id: int) -> None:
        self.store = store
        self.run_id = run_id

    def on_start(self, plan: dict[str, Any]) -> None:
        self.store.set_summary(self.run_id, {"plan": plan})

    def on_epoch(self, epoch: int, record: dict[str, Any]) -> None:
        self.store.record_epoch(self.run_id, epoch, record)

    def on_distribution(
        self, update: int, epoch: int, theta: np.ndarray, alive: np.ndarray, extra: dict[str, Any]
    ) -> None:
        self.store.record_distribution(self.run_id, update, epoch, theta, alive, extra)

    def on_resume(self, last_completed_epoch: int) -> None:
        self.store.truncate_after(self.run_id, last_completed_epoch)

    def on_finish(self, genotype: dict[str, Any], summary: dict[str, Any]) -> None:
        cost = summary.get("cost", {}) if isinstance(summary.get("cost"), dict) else {}
        self.store.add_architecture(
            self.run_id,
            genotype,
            params=cost.get("params"),
            mflops=cost.get("mflops"),
            latency_ms=cost.get("latency_ms"),
            role="final",
        )
        for name, variant in (summary.get("variants") or {}).items():
            self.store.add_architecture(self.run_id, variant, role=str(name)[:32])
        self.store.set_summary(self.run_id, {k: v for k, v in summary.items() if k != "variants"})

    def on_fail(self, message: str) -> None:
        """Nothing to write: the run lifecycle records the failure and its error text."""
