"""What the Compare page computes before it draws: x axes, smoothing, metric groups, config diffs.

Runs differ in ways an epoch-indexed overlay hides: a 35-epoch DDPNAS search and a 17-epoch
DARTS search end at different epochs but may take the same time; a single-path search evaluates
one sampled path per epoch, so its curve jumps with every sample; an AU run's mean F1 and a FER
run's accuracy are different numbers on the same 0..1 scale. This module turns the store's rows
into what makes those runs comparable -- three x axes, a TensorBoard-like smoothing, one group per
metric, and the settings that differ -- as pure functions of plain rows (no Streamlit, no SQL),
tested directly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from automl.store.run_views import LONG_METRIC_NAMES, Headline
from dashboard.progress import PLAN_KEYS

EPOCH, WALL, FRACTION = "epoch", "wall", "fraction"
X_AXES = (EPOCH, WALL, FRACTION)
X_LABELS = {EPOCH: "epoch", WALL: "wall clock", FRACTION: "share of planned epochs"}
SEARCH_SMOOTHING = 0.6  # default for searches: each epoch scores one sampled path, a noisy curve
RUN_FIELDS = ("kind", "strategy", "space", "task", "data", "seed")  # run columns a diff starts with
MISSING = "-"
UNKNOWN_METRIC = "unknown metric"


# -- numbers ---------------------------------------------------------------------------------
def _finite(value: Any) -> float | None:
    """The value as a float, or None for a gap (None, nan, inf, a non-number)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def ema(values: Sequence[float | None], weight: float) -> list[float | None]:
    """Exponential moving average with TensorBoard's debiasing, skipping gaps.

    ``weight`` is the share of the past kept at each step (0 returns the values unchanged). The
    running average starts at 0 and is divided by ``1 - weight**n`` after ``n`` values, so the first
    points are not pulled towards 0. A gap (an epoch without the value) stays a gap and leaves the
    average as it was: the next real value continues the curve instead of restarting it.
    """
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    out: list[float | None] = []
    average, seen = 0.0, 0
    for raw in values:
        value = _finite(raw)
        if value is None:
            out.append(None)
            continue
        average = weight * average + (1.0 - weight) * value
        seen += 1
        out.append(average / (1.0 - weight**seen))
    return out


def elapsed_seconds(durations: Sequence[float | None]) -> list[float | None]:
    """Seconds from the start of the run's first epoch to the end of each epoch.

    ``durations`` are the epochs' ``wall_time`` column (the seconds each epoch took, written by the
    search and training loops), in epoch order. An epoch without a usable duration has no point on
    a wall-clock axis and adds nothing to the clock: its time is unknown, and guessing it would
    move every later point by an invented amount.
    """
    out: list[float | None] = []
    clock = 0.0
    for raw in durations:
        seconds = _finite(raw)
        if seconds is None or seconds < 0:
            out.append(None)
            continue
        clock += seconds
        out.append(clock)
    return out


def time_unit(max_seconds: float | None) -> tuple[str, float]:
    """(unit name, seconds per unit) that keeps a wall-clock axis readable: s, min or h."""
    if max_seconds is None or max_seconds < 600:
        return "s", 1.0
    if max_seconds < 3 * 3600:
        return "min", 60.0
    return "h", 3600.0


# -- plans and x axes ------------------------------------------------------------------------
def _positive_int(value: Any) -> int | None:
    number = _finite(value)
    return int(number) if number is not None and number >= 1 else None


def planned_epochs(run: Mapping[str, Any]) -> int | None:
    """A search's planned epoch count, from the plan it wrote when it started (``summary["plan"]``:
    ``search_epochs``, ``total_epochs`` or ``epochs``), else the ``search_epochs`` its summary keeps
    when it finished. None for other kinds: a training's or a study's length is not a search plan."""
    if run.get("kind") != "search":
        return None
    summary = run.get("summary") if isinstance(run.get("summary"), Mapping) else {}
    plan = summary.get("plan") if isinstance(summary.get("plan"), Mapping) else {}
    for key in PLAN_KEYS:
        total = _positive_int(plan.get(key))
        if total is not None:
            return total
    return _positive_int(summary.get("search_epochs"))


def x_axes(planned: Mapping[int, int | None]) -> list[str]:
    """The x axes the selected runs can be drawn on: the share of the plan only when at least one
    of them is a search with a planned length."""
    return [EPOCH, WALL, FRACTION] if any(planned.values()) else [EPOCH, WALL]


def x_values(
    epochs: Sequence[Mapping[str, Any]], axis: str, planned: int | None = None
) -> list[float | None]:
    """One run's x per epoch row (rows in epoch order): the epoch index, the elapsed seconds, or
    ``(epoch + 1) / planned`` -- epochs count from 0, so the run's last planned epoch is at 1.0."""
    if axis == EPOCH:
        return [float(e["epoch"]) for e in epochs]
    if axis == WALL:
        return elapsed_seconds([e.get("wall_time") for e in epochs])
    if axis == FRACTION:
        if not planned:
            return [None] * len(epochs)
        return [(int(e["epoch"]) + 1) / planned for e in epochs]
    raise ValueError(f"unknown x axis {axis!r} (valid: {', '.join(X_AXES)})")


@dataclass(frozen=True)
class RunCurve:
    """One run's drawable points: x, the raw value, the smoothed value and the epoch of each."""

    run_id: int
    x: list[float]
    raw: list[float]
    smooth: list[float]
    epoch: list[int]


def run_curve(
    run_id: int,
    epochs: Sequence[Mapping[str, Any]],
    key: str,
    axis: str,
    *,
    planned: int | None = None,
    smoothing: float = 0.0,
) -> RunCurve:
    """The points of ``key`` (``val_metric``...) of one run on ``axis``, smoothed over the epochs
    in order before the points without an x or a value are dropped (so a gap in the clock does
    not reset the average)."""
    rows = sorted(epochs, key=lambda e: int(e["epoch"]))
    xs = x_values(rows, axis, planned)
    raw = [_finite(e.get(key)) for e in rows]
    smooth = ema(raw, smoothing)
    kept = [
        (x, r, s, int(e["epoch"]))
        for x, r, s, e in zip(xs, raw, smooth, rows, strict=True)
        if x is not None and r is not None and s is not None
    ]
    return RunCurve(
        run_id=run_id,
        x=[k[0] for k in kept],
        raw=[k[1] for k in kept],
        smooth=[k[2] for k in kept],
        epoch=[k[3] for k in kept],
    )


def by_run(rows: Sequence[Mapping[str, Any]]) -> dict[int, list[Mapping[str, Any]]]:
    """Epoch rows of several runs (``queries.epochs_for_runs``) grouped by run id."""
    out: dict[int, list[Mapping[str, Any]]] = {}
    for row in rows:
        out.setdefault(int(row["run_id"]), []).append(row)
    return out


def curves(
    rows: Sequence[Mapping[str, Any]],
    key: str,
    axis: str,
    order: Sequence[int],
    *,
    planned: Mapping[int, int | None] | None = None,
    smoothing: float = 0.0,
) -> list[RunCurve]:
    """:func:`run_curve` of every run in ``rows`` that has a point on ``axis``, in ``order`` (the
    page's selection; runs not in it last, by id)."""
    planned = planned or {}
    place = {rid: i for i, rid in enumerate(order)}
    grouped = sorted(by_run(rows).items(), key=lambda kv: (place.get(kv[0], len(place)), kv[0]))
    out = [
        run_curve(rid, epochs, key, axis, planned=planned.get(rid), smoothing=smoothing)
        for rid, epochs in grouped
    ]
    return [c for c in out if c.x]


def default_smoothing(runs: Sequence[Mapping[str, Any]]) -> float:
    """Smoothing on by default when a search is among the runs (one sampled path per epoch makes
    its curve jump), off for trainings, whose epochs all evaluate the same network."""
    return SEARCH_SMOOTHING if any(r.get("kind") == "search" for r in runs) else 0.0


# -- metrics ---------------------------------------------------------------------------------
def metric_label(head: Headline | None) -> str:
    """The metric's name as a person reads it (``accuracy``, ``mean F1``)."""
    if head is None or not head.metric:
        return UNKNOWN_METRIC
    return LONG_METRIC_NAMES.get(head.metric, head.metric)


def metric_groups(metrics: Mapping[int, str]) -> dict[str, list[int]]:
    """Run ids per metric name, in the order the runs were given: one figure per group, since
    one y axis must not put an accuracy and an F1 on the same scale."""
    groups: dict[str, list[int]] = {}
    for run_id, name in metrics.items():
        groups.setdefault(name, []).append(run_id)
    return groups


def mixed_metrics_note(groups: Mapping[str, Sequence[int]], labels: Mapping[int, str]) -> str | None:
    """The warning above the curves when the runs measure different metrics (None when they agree)."""
    if len(groups) < 2:
        return None
    parts = "; ".join(
        f"{name}: {', '.join(labels.get(r, f'#{r}') for r in ids)}" for name, ids in groups.items()
    )
    return (
        f"These runs measure different metrics ({parts}). Each metric gets its own figure: an "
        "accuracy and an F1 are not the same number, even on the same 0-1 scale."
    )


# -- settings that differ --------------------------------------------------------------------
def flatten(config: Mapping[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    """A nested config as ``{"search.strategy": "ddpnas", "optim.lr": 0.1, ...}``; lists and
    empty dicts are leaves (a list of skip caps is one setting)."""
    out: dict[str, Any] = {}
    for key, value in (config or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def run_fields(run: Mapping[str, Any]) -> dict[str, Any]:
    """The run's descriptive columns (:data:`RUN_FIELDS`): what a diff table shows first."""
    return {key: run.get(key) for key in RUN_FIELDS}


def cell(value: Any) -> str:
    """A setting as table text: ``-`` for a missing one, JSON for lists and dicts, 6 significant
    digits for floats (never ``None`` or ``nan``)."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else MISSING
    if isinstance(value, list | tuple | Mapping):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _same(values: Sequence[Any]) -> bool:
    """Whether every run has the same setting; a missing key and a null value count as equal
    (an older config without a key means its default, shown as ``-`` either way)."""
    canonical = {json.dumps(v, sort_keys=True, default=str) for v in values}
    return len(canonical) <= 1


def diff_rows(
    runs: Mapping[int, Mapping[str, Any]], columns: Mapping[int, str], *, show_all: bool = False
) -> list[dict[str, str]]:
    """The settings table: one row per setting (run fields first, then the resolved config's
    dotted keys in alphabetical order), one column per run named by ``columns``; only the rows
    that differ unless ``show_all``."""
    fields = {rid: run_fields(run) for rid, run in runs.items()}
    configs = {rid: flatten(run.get("config") if isinstance(run.get("config"), Mapping) else {})
               for rid, run in runs.items()}  # fmt: skip
    config_keys = sorted({k for cfg in configs.values() for k in cfg})
    rows = []
    for source, keys in ((fields, RUN_FIELDS), (configs, config_keys)):
        for key in keys:
            values = [source[rid].get(key) for rid in runs]
            if not show_all and _same(values):
                continue
            row = {"setting": key}
            row.update({columns[rid]: cell(v) for rid, v in zip(runs, values, strict=True)})
            rows.append(row)
    return rows


def column_names(runs: Mapping[int, Mapping[str, Any]]) -> dict[int, str]:
    """Short, unique column headers for the diff table: ``#12 ddpnas`` (the kind when no strategy)."""
    return {
        rid: f"#{rid} {run.get('strategy') or run.get('kind') or ''}".strip() for rid, run in runs.items()
    }


# -- what the page says about runs it cannot draw, and the final numbers ----------------------
def why_not_drawn(
    epochs: Sequence[Mapping[str, Any]], key: str, axis: str, planned: int | None
) -> str | None:
    """Why a selected run has no line on this figure (None when it has one)."""
    if not epochs:
        return "no epoch recorded yet"
    if axis == FRACTION and not planned:
        return "no planned epoch count (only searches have a plan)"
    if run_curve(0, epochs, key, axis, planned=planned).x:
        return None
    if axis == WALL and all(_finite(e.get("wall_time")) is None for e in epochs):
        return "no epoch durations recorded"
    return f"no {key.replace('_', ' ')} recorded"


def headline_text(head: Headline | None) -> str:
    """``test accuracy 0.6321`` / ``val mean F1 0.3800``: the run's headline result with its split
    and metric (``-`` when it has none yet)."""
    if head is None or head.value is None:
        return MISSING
    return f"{head.label(short=False)} {head.value:.4f}"


def final_row(
    run: Mapping[str, Any], summary: Mapping[str, Any], arch: Mapping[str, Any], label: str
) -> dict[str, Any]:
    """One run's row of the final-numbers table (numbers stay numbers: the table formats gaps)."""
    head = run.get("headline") if isinstance(run.get("headline"), Headline) else None
    params = _finite(arch.get("params"))
    return {
        "run": label,
        "state": run.get("state"),
        "strategy": run.get("strategy"),
        "space": run.get("space"),
        "task": run.get("task"),
        "metric": metric_label(head),
        "headline": headline_text(head),
        "best val metric": _finite(run.get("best_val_metric")),
        "test metric": _finite(summary.get("test_metric")),
        "epochs": run.get("epochs"),
        "wall time": run.get("wall_s"),
        "params (M)": params / 1e6 if params is not None else None,
        "MFLOPs": _finite(arch.get("mflops")),
        "latency (ms)": _finite(arch.get("latency_ms")),
        "genotype": (arch.get("genotype_hash") or "")[:12],
    }
