"""How far a run is and when it should end: the Runs table's progress column and the Run page's bar.

A run's plan says how many epochs it will take: a search writes ``summary["plan"]["search_epochs"]``
when it starts (DDPNAS's schedule length is known in advance: warm-up plus one round of sampled
paths per update), a training its ``epochs``, an HPO study its trial budget. The estimate of the
time left is the median of the last few epochs' own durations (the ``wall_time`` each epoch row
carries) times the epochs still to go: the median, not the mean, so one slow epoch (a checkpoint,
a validation pass on a busy machine) does not swing the ETA, and only the recent epochs, because
warm-up epochs and search epochs of a pruned supernet take different times.

Pure functions of plain rows (no Streamlit, no SQL) so they are tested directly.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

RECENT_EPOCHS = 5  # epochs whose median duration predicts the next ones
PLAN_KEYS = ("search_epochs", "total_epochs", "epochs")  # in the order a search / training writes them
CONFIG_KEYS = ("epochs", "trials")


@dataclass(frozen=True)
class RunProgress:
    """``done`` of ``total`` units (epochs, or trials for an HPO run) and the estimated time left."""

    done: int
    total: int | None
    unit: str = "epochs"
    seconds_per_unit: float | None = None
    eta_s: float | None = None

    @property
    def fraction(self) -> float | None:
        """Share done in [0, 1] (None when the plan gives no total)."""
        if not self.total:
            return None
        return min(1.0, max(0.0, self.done / self.total))

    def label(self) -> str:
        """``16 / 27 epochs`` (``16 epochs`` when the total is unknown)."""
        return f"{self.done} / {self.total} {self.unit}" if self.total else f"{self.done} {self.unit}"


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value <= 0:
        return None
    return int(value)


def planned_units(run: Mapping[str, Any]) -> tuple[int | None, str]:
    """The run's planned total and its unit: epochs of a search or training, trials of a study.

    A search's plan is the authority (it is the schedule the engine runs); a training with no
    plan falls back to its resolved config's ``epochs``; an HPO run counts trials.
    """
    summary = run.get("summary") or {}
    config = run.get("config") or {}
    if run.get("kind") == "hpo":  # automl hpo keeps its settings under config["hpo"]
        hpo = config.get("hpo") if isinstance(config.get("hpo"), dict) else {}
        return _positive_int(hpo.get("trials") or config.get("trials") or summary.get("trials")), "trials"
    plan = summary.get("plan") or {}
    for key in PLAN_KEYS:
        total = _positive_int(plan.get(key))
        if total:
            return total, "epochs"
    train = config.get("train") if isinstance(config.get("train"), dict) else {}
    return _positive_int(config.get("epochs") or train.get("epochs")), "epochs"


def units_done(run: Mapping[str, Any], epochs: int) -> int:
    """Epochs recorded, or for an HPO run its finished trials (the study's state counts, which
    ``automl hpo`` keeps in the run's summary)."""
    if run.get("kind") != "hpo":
        return int(epochs)
    counts = (run.get("summary") or {}).get("counts") or {}
    return sum(int(n) for state, n in counts.items() if str(state).lower() not in ("running", "waiting"))


def epoch_seconds(durations: Sequence[float | None]) -> float | None:
    """Median duration of the last :data:`RECENT_EPOCHS` epochs that recorded one."""
    known = [float(d) for d in durations if isinstance(d, int | float) and math.isfinite(d) and d > 0]
    if not known:
        return None
    return statistics.median(known[-RECENT_EPOCHS:])


def run_progress(
    run: Mapping[str, Any], done: int, durations: Sequence[float | None] = (), *, live: bool | None = None
) -> RunProgress:
    """Progress of a run with ``done`` units recorded; ``durations`` are its epochs' seconds in
    order. An ETA is given only for a live run (a finished, dead or stale one has no future)."""
    total, unit = planned_units(run)
    is_live = run.get("liveness") == "live" if live is None else live
    per_unit = epoch_seconds(durations) if unit == "epochs" else None
    eta = None
    if is_live and total is not None and per_unit is not None:
        eta = max(0, total - done) * per_unit
    return RunProgress(done=done, total=total, unit=unit, seconds_per_unit=per_unit, eta_s=eta)
