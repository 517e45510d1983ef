"""Read-only views of the runs for ``automl runs list|show``: nothing here writes to the store.

* :func:`open_existing` -- open a store that must already exist: a SQLite URL naming a file that
  is not there (a mistyped ``--db``) is a one-line :class:`~automl.errors.UserError`, and the file
  is not created (opening it would create an empty database).
* :func:`headlines` -- each run's headline metric, its name, split and best value, whatever the
  kind and strategy: a finished training's test metric, an HPO study's best validation value, a
  search's best validation metric over its epochs (DDPNAS and DARTS searches store no
  ``best_val_metric`` in their summary; a running search has no summary yet).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from automl.errors import UserError

if TYPE_CHECKING:
    from automl.store.repository import Store

SHORT_METRIC_NAMES = {"accuracy": "acc", "mean_f1": "F1"}
LONG_METRIC_NAMES = {"accuracy": "accuracy", "mean_f1": "mean F1", "icc": "ICC", "mean_icc": "mean ICC"}
# A run that has not stored its metric's name yet (a search still running with no epoch yet, an
# older store): the primary metric of its task (automl.data.tasks).
TASK_METRICS = {"fer": "accuracy", "au": "mean_f1"}


@dataclass(frozen=True)
class Headline:
    """``val acc 0.81``: the split (``val`` / ``test``), the metric's name and its best value."""

    split: str | None
    metric: str | None
    value: float | None

    def label(self, *, short: bool = True) -> str:
        """``val acc`` / ``test F1`` (``val accuracy`` / ``test mean F1`` with ``short=False``;
        ``-`` when nothing is known)."""
        names = SHORT_METRIC_NAMES if short else LONG_METRIC_NAMES
        metric = names.get(self.metric or "", self.metric)
        return " ".join(p for p in (self.split, metric) if p) or "-"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def open_existing(url: str) -> Store:
    """:func:`automl.store.open_store` for a store that must exist already (a reader's open)."""
    from automl.store import open_store
    from automl.store.engine import sqlite_path

    try:
        path = sqlite_path(url)
    except Exception:  # noqa: BLE001 - not a URL at all: open_store says so in its own words
        path = None
    if path is not None and not path.is_file():
        raise UserError(
            f"no store at {path}: the file does not exist (check the store URL; "
            "a store is created by a search, train or hpo run)",
            argument="db",
        )
    return open_store(url)


def store_file_missing(url: str) -> bool:
    """True for a SQLite URL whose database file does not exist (nothing has been recorded)."""
    from automl.store.engine import sqlite_path

    try:
        path = sqlite_path(url)
    except Exception:  # noqa: BLE001
        return False
    return path is not None and not path.is_file()


def _split(text: Any) -> str | None:
    if not isinstance(text, str) or not text:
        return None
    lowered = text.lower()
    if "val" in lowered:
        return "val"
    return "test" if "test" in lowered else lowered.split()[0]


def headline(
    run: dict[str, Any], epoch_best: float | None = None, epoch_metric: str | None = None
) -> Headline:
    """The headline of one ``list_runs`` row; ``epoch_best`` / ``epoch_metric``: the best
    ``val_metric`` over its epochs and the metric's name they recorded (:func:`epoch_bests`)."""
    summary = run.get("summary") or {}
    signal = summary.get("signal") if isinstance(summary.get("signal"), dict) else {}
    metric = (
        summary.get("metric_name")
        or summary.get("primary_metric")
        or epoch_metric
        or TASK_METRICS.get(str(run.get("task")))
    )
    if summary.get("test_metric") is not None:  # a finished training: its test split
        return Headline(_split(signal.get("split")) or "test", metric, float(summary["test_metric"]))
    if summary.get("best_val_metric") is not None:  # random WS, an HPO study or one of its trials
        return Headline("val", metric, float(summary["best_val_metric"]))
    if epoch_best is None:
        return Headline(None, metric, None)
    # Epochs' val_metric: a search's validation split; a training's evaluation split (test).
    split = "test" if run.get("kind") == "train" else "val"
    return Headline(_split(signal.get("split")) or split, metric, float(epoch_best))


def epoch_bests(store: Store, run_ids: list[int]) -> dict[int, tuple[float | None, str | None]]:
    """``{run id: (best val_metric over its epochs, the metric's name the epochs recorded)}``,
    in one grouped read-only query."""
    if not run_ids:
        return {}
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from automl.store.models import Epoch

    query = (
        select(Epoch.run_id, func.max(Epoch.val_metric), func.max(Epoch.extra["metric_name"].as_string()))
        .where(Epoch.run_id.in_(run_ids))
        .group_by(Epoch.run_id)
    )
    with Session(store.engine) as session:
        return {int(rid): (best, name) for rid, best, name in session.execute(query).all()}


def headlines(store: Store, rows: list[dict[str, Any]]) -> dict[int, Headline]:
    """:func:`headline` of every ``list_runs`` row, keyed by run id."""
    bests = epoch_bests(store, [int(r["id"]) for r in rows])
    return {int(r["id"]): headline(r, *bests.get(int(r["id"]), (None, None))) for r in rows}


# -- the runs as rows of text (``automl runs list|show``; a notebook's DataFrame) --------------------

RUN_COLUMNS = ("id", "kind", "state", "space", "strategy", "data", "ep", "best", "signal", "created")
EPOCH_COLUMNS = ("epoch", "phase", "round", "train_loss", "train_metric", "val_loss", "val_metric", "lr", "s")


def fmt(value: object, digits: int = 4) -> str:
    """A cell: ``-`` for None, a float to ``digits`` significant digits, anything else as text."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def short_time(stamp: str | None) -> str:
    """``2025-03-04T05:06:07.89`` -> ``03-04 05:06`` (the full time is in the run's report)."""
    return f"{stamp[5:10]} {stamp[11:16]}" if stamp and len(stamp) >= 16 else (stamp or "-")


def list_with_headlines(
    url: str, *, kind: str | None = None, state: str | None = None, limit: int = 50, missing_ok: bool = False
) -> tuple[str | None, list[dict[str, Any]], dict[int, Headline]]:
    """The store's safe URL, its newest ``limit`` runs (``list_runs`` rows) and their :func:`headlines`.

    ``missing_ok``: a SQLite URL whose file does not exist means no runs yet (and the file is not
    created), not an error; the URL is then None.
    """
    if missing_ok and store_file_missing(url):
        return None, [], {}
    store = open_existing(url)
    rows = store.list_runs(kind=kind, state=state, limit=limit)
    return store.safe_url, rows, headlines(store, rows)


def run_rows(rows: list[dict[str, Any]], best: dict[int, Headline]) -> list[list[str]]:
    """``list_runs`` rows as :data:`RUN_COLUMNS` cells; ``signal`` is the learning checks' verdict
    (``ok`` / ``weak`` / ``NO SIGNAL``, ``-`` unchecked: :func:`automl.learning_checks.signal_flag`)."""
    from automl.learning_checks import SIGNAL_KEY, signal_flag

    out = []
    for r in rows:
        head, signal = best[int(r["id"])], (r.get("summary") or {}).get(SIGNAL_KEY)
        out.append([
            str(r["id"]), r["kind"], r["state"], fmt(r["space"]), fmt(r["strategy"]), fmt(r["data"]),
            str(r["epochs"]), "-" if head.value is None else f"{head.label()} {fmt(head.value, 3)}",
            signal_flag(signal if isinstance(signal, dict) else None), short_time(r["created_at"]),
        ])  # fmt: skip
    return out


def epoch_rows(epochs: list[dict[str, Any]]) -> list[list[str]]:
    """A run report's epochs as :data:`EPOCH_COLUMNS` cells."""
    keys = ("phase", "round", "train_loss", "train_metric", "val_loss", "val_metric", "lr")
    return [[str(e["epoch"]), *(fmt(e[k]) for k in keys), fmt(e["wall_time"], 3)] for e in epochs]


def checks_label(signal: dict[str, Any]) -> str:
    """``learning checks (CHECKS; SPLIT split, N items)`` of a stored learning-checks verdict."""
    checked = ", ".join(signal.get("checks") or []) or "-"
    size = f", {signal['n']} items" if signal.get("n") else ""
    return f"learning checks ({checked}; {signal.get('split', 'evaluated')} split{size})"
