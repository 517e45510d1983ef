"""Where the HPO page finds Optuna studies: an RDB storage (SQL, paginated) or a journal file.

``automl hpo`` keeps its study in the store's database by default (Optuna's tables beside the
``automl_`` ones), or in ``--storage`` (another SQLAlchemy URL, or ``journal:PATH``). For an RDB
the trial table is paginated in SQL (:mod:`dashboard.queries`); a journal file has no query
language, so its trials are loaded through Optuna's storage API and paginated in Python. Both
sources only read: a missing journal file is reported, never created.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import optuna
from optuna.trial import FrozenTrial
from sqlalchemy import Engine

from automl.store.engine import normalize_url
from dashboard import queries

JOURNAL_PREFIX = "journal:"


def is_journal(url: str) -> bool:
    return url.startswith(JOURNAL_PREFIX)


def journal_file(url: str) -> Path:
    return Path(url[len(JOURNAL_PREFIX) :]).expanduser()


def open_optuna_storage(url: str) -> optuna.storages.BaseStorage:
    """A storage that will not create tables or files (the caller checked the file exists)."""
    if is_journal(url):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(str(journal_file(url))))
    return optuna.storages.RDBStorage(
        normalize_url(url), skip_table_creation=True, skip_compatibility_check=True
    )


def close_storage(storage: optuna.storages.BaseStorage) -> None:
    engine = getattr(storage, "engine", None)
    if engine is not None:
        engine.dispose()


def load_study_trials(url: str, study_name: str) -> tuple[list[str], list[FrozenTrial]]:
    """Directions (``minimize``/``maximize``) and every trial of one study."""
    storage = open_optuna_storage(url)
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
        return [d.name.lower() for d in study.directions], study.get_trials(deepcopy=False)
    finally:
        close_storage(storage)


# The plots that draw running trials too (intermediate values, timeline bars); the others draw the
# values of finished trials only, so a running trial's reports leave them unchanged.
LIVE_PLOTS = ("intermediate", "timeline")
ACTIVE_STATES = ("RUNNING", "WAITING")


class StudyVersion(NamedTuple):
    """A study's version: ``counts`` (per state), ``reports`` (what running trials change: the
    intermediate values recorded) and ``finished`` (what only a trial's end changes: the
    objective values recorded). For a journal both are the file's size and time."""

    counts: tuple[tuple[str, int], ...]
    reports: tuple[int, ...]
    finished: tuple[int, ...]

    @property
    def key(self) -> tuple:
        """Changes with anything: keys the trials and the plot study."""
        return (*self.counts, *self.reports, *self.finished)

    def for_plot(self, kind: str) -> tuple:
        """Keys one figure: everything for the live plots, the finished trials for the others."""
        if kind in LIVE_PLOTS:
            return self.key
        return (*(c for c in self.counts if c[0] not in ACTIVE_STATES), *self.finished)


@dataclass
class StudySource:
    """The studies of one storage; ``engine`` is set for RDB storages (SQL pagination)."""

    url: str
    engine: Engine | None

    def studies(self) -> list[dict[str, Any]]:
        if self.engine is not None:
            return queries.optuna_studies(self.engine)
        storage = open_optuna_storage(self.url)
        try:
            out = []
            for i, summary in enumerate(storage.get_all_studies()):
                trials = storage.get_all_trials(summary._study_id, deepcopy=False)
                counts: dict[str, int] = {}
                for t in trials:
                    counts[t.state.name] = counts.get(t.state.name, 0) + 1
                out.append({"study_id": summary._study_id, "name": summary.study_name,
                            "directions": [d.name for d in summary.directions], "counts": counts,
                            "n_trials": len(trials), "order": i})  # fmt: skip
            return out
        finally:
            close_storage(storage)

    def trials(self, study: dict[str, Any]) -> tuple[list[str], list[FrozenTrial]]:
        """Directions (``minimize``/``maximize``) and every trial: plain SQL for an RDB storage
        (:func:`dashboard.queries.study_trials`, 4-5x faster than Optuna's ORM), Optuna's
        journal reader otherwise."""
        if self.engine is not None:
            directions = [str(d).lower() for d in study["directions"]]
            return directions, queries.study_trials(self.engine, study["study_id"])
        return load_study_trials(self.url, study["name"])

    def attributes(self, study: dict[str, Any]) -> dict[str, Any]:
        """The study's user attributes and ``metric_names`` (see :func:`objective_names`)."""
        if self.engine is not None:
            return queries.study_attributes(self.engine, study["study_id"])
        storage = open_optuna_storage(self.url)
        try:
            names = storage.get_study_system_attrs(study["study_id"]).get("study:metric_names")
            return {"user_attrs": storage.get_study_user_attrs(study["study_id"]), "metric_names": names}
        finally:
            close_storage(storage)

    def version(self, study: dict[str, Any]) -> StudyVersion:
        """What changes whenever a trial starts, ends or reports (the caches' key): the trial
        counts per state plus the values recorded (RDB), or the journal file's size and time."""
        counts = tuple(sorted(study["counts"].items()))
        if self.engine is not None:
            reports, values = queries.study_version(self.engine, study["study_id"])
            return StudyVersion(counts, (reports,), (values,))
        stat = journal_file(self.url).stat()
        return StudyVersion(counts, (stat.st_size, stat.st_mtime_ns), (stat.st_size, stat.st_mtime_ns))

    def count_trials(self, study: dict[str, Any], states: Sequence[str], trials: list[FrozenTrial]) -> int:
        if self.engine is not None:
            return queries.count_trials(self.engine, study["study_id"], states) if states else 0
        return sum(t.state.name in states for t in trials)

    def trials_page(
        self,
        study: dict[str, Any],
        states: Sequence[str],
        trials: list[FrozenTrial],
        *,
        limit: int,
        offset: int,
        descending: bool,
    ) -> list[dict[str, Any]]:
        if self.engine is not None:
            return queries.trials_page(self.engine, study["study_id"], states, limit=limit, offset=offset,
                                       descending=descending)  # fmt: skip
        kept = sorted(
            (t for t in trials if t.state.name in states), key=lambda t: t.number, reverse=descending
        )
        return [trial_row(t) for t in kept[offset : offset + limit]]


def trial_row(t: FrozenTrial) -> dict[str, Any]:
    """The trial table's row for a trial loaded through the storage API (same columns as SQL)."""
    start, end = t.datetime_start, t.datetime_complete
    row: dict[str, Any] = {
        "number": t.number,
        "state": t.state.name,
        "duration_s": (end - start).total_seconds() if start and end else None,
        "start": start,
    }
    for i, v in enumerate(t.values or []):
        row[f"value_{i}"] = v
    for name, value in t.params.items():
        row[f"param: {name}"] = value
    for key, value in t.user_attrs.items():
        row[f"attr: {key}"] = value
    return row


# -- what the page shows of a study ------------------------------------------------------------
OBJECTIVE_LABELS = {"accuracy": "val accuracy", "mean_f1": "val mean F1", "latency": "latency (ms)",
                    "params": "params (M)"}  # fmt: skip
SHOWN_ATTRS = {"train_run_id": "train run", "latency_ms": "latency (ms)", "params_m": "params (M)",
               "mflops": "MFLOPs", "epochs": "epochs", "signal": "signal", "error": "error"}  # fmt: skip


def stored_objective_names(attributes: dict[str, Any], n_objectives: int) -> list[str] | None:
    """The names the study keeps for its objectives: Optuna's ``metric_names`` when set, else the
    ``objectives`` user attribute ``automl hpo`` writes; None when it has none (or a wrong count)."""
    names = attributes.get("metric_names") or (attributes.get("user_attrs") or {}).get("objectives")
    if not isinstance(names, list) or len(names) != n_objectives:
        return None
    return [str(n) for n in names]


def primary_metric(trials: Sequence[FrozenTrial]) -> str | None:
    """The task metric automl's trials were scored on (their ``metric`` attribute): its
    ``accuracy`` objective is the task's primary metric, which is mean F1 for an AU task."""
    return next((str(t.user_attrs["metric"]) for t in trials if "metric" in t.user_attrs), None)


def objective_names(
    directions: Sequence[str], attributes: dict[str, Any], metric: str | None = None
) -> list[str]:
    """A label per objective: the study's own names (:func:`stored_objective_names`; automl's
    ``accuracy`` objective shown as the metric it is, ``val accuracy`` or ``val mean F1``: trials
    score the HPO validation split), else ``objective i``."""
    names = stored_objective_names(attributes, len(directions))
    if names is None:
        return [f"objective {i}" for i in range(len(directions))]
    shown = [metric if n == "accuracy" and metric else n for n in names]
    return [OBJECTIVE_LABELS.get(n, n) for n in shown]


def log_params(trials: Sequence[FrozenTrial]) -> frozenset[str]:
    """The params sampled on a log scale (a learning rate, a weight decay), shown in e-notation."""
    return frozenset(name for t in trials for name, d in t.distributions.items() if getattr(d, "log", False))


def fmt_hparam(name: str, value: Any, log: frozenset[str]) -> str:
    """A hyper-parameter as the tables show it: 3 significant digits in e-notation on a log scale
    (``3.16e-03``, every row of the column alike), else :func:`dashboard.ui.fmt_param`."""
    from dashboard.ui import fmt_param

    if name in log and isinstance(value, float) and math.isfinite(value):
        return f"{value:.2e}"
    return fmt_param(value)


def table_rows(
    rows: Sequence[dict[str, Any]], names: Sequence[str], log: frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    """Trial rows as the table shows them: objectives under their names, the train run as a
    ``run?run=N`` link (an empty cell when none is recorded), the learning checks' flag, params
    and numbers at readable precision, durations in words, the bookkeeping attributes (worker,
    hashes, ids) left out."""
    from automl.learning_checks import signal_flag
    from dashboard.ui import fmt_number, fmt_seconds

    out = []
    for row in rows:
        shown: dict[str, Any] = {"trial": row["number"], "state": row["state"]}
        for i, name in enumerate(names):
            value = row.get(f"value_{i}")
            shown[name] = fmt_number(value) if value is not None else "-"
        for key, label in SHOWN_ATTRS.items():
            value = row.get(f"attr: {key}")
            if key == "train_run_id":
                shown[label] = f"run?run={value}" if isinstance(value, int) else ""
            elif key == "signal":
                shown[label] = signal_flag(value if isinstance(value, dict) else None)
            elif value is not None:
                shown[label] = fmt_number(value) if isinstance(value, float) else str(value)
        for key, value in row.items():
            if key.startswith("param: "):
                name = key.removeprefix("param: ")
                shown[name] = fmt_hparam(name, value, log)
        shown["duration"] = fmt_seconds(row.get("duration_s"))
        out.append(shown)
    return out
