"""optuna.visualization figures of a study, on an in-memory copy of the trials the user keeps.

The copy makes "hide pruned" apply to the plots and keeps the storage untouched. Plotting cost
grows with the trial count (on a 2-core machine 10k trials take tens of seconds per plot), so
beyond ``PLOT_TRIAL_CAP`` the plots use an evenly spaced subset by trial number that always holds
the best trials; the page says so, and the trial table still pages through every trial.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from numbers import Real
from typing import Any

import numpy as np
import optuna
import plotly.graph_objects as go
from optuna.trial import FrozenTrial, TrialState

PLOT_TRIAL_CAP = 2000
# RUNNING trials are kept: their intermediate values and timeline bars are how a study is
# watched while it runs (the value-based plots skip them by themselves).
PLOTTED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)
KINDS = ("history", "intermediate", "parallel", "importances", "pareto", "timeline")


def kept_trials(trials: Sequence[FrozenTrial], states: Sequence[str]) -> list[FrozenTrial]:
    return [t for t in trials if t.state.name in states and t.state in PLOTTED_STATES]


def memory_study(directions: Sequence[str], trials: Sequence[FrozenTrial]) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=list(directions))
    study.add_trials(list(trials))
    return study


def plot_subset(study: optuna.Study, cap: int = PLOT_TRIAL_CAP) -> tuple[list[FrozenTrial], bool]:
    """At most ``cap`` trials: every k-th by number plus the best ones (the Pareto front)."""
    trials = study.get_trials(deepcopy=False)
    if len(trials) <= cap:
        return list(trials), False
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = study.best_trials if len(study.directions) > 1 else ([study.best_trial] if complete else [])
    best_numbers = {t.number for t in best[: cap // 4]}
    picks = np.linspace(0, len(trials) - 1, cap - len(best_numbers)).round().astype(int)
    numbers = best_numbers | {trials[i].number for i in picks}
    return [t for t in trials if t.number in numbers], True


def summary(study: optuna.Study) -> dict[str, Any]:
    """Best trial (single objective) or Pareto front size (multi-objective)."""
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if not complete:
        return {"complete": 0}
    if len(study.directions) > 1:
        return {"complete": len(complete), "pareto": len(study.best_trials)}
    best = study.best_trial
    return {"complete": len(complete), "best_number": best.number, "best_value": best.value,
            "best_params": best.params}  # fmt: skip


def _target(
    directions: Sequence[str], objective: int, *, for_importance: bool, names: Sequence[str] | None = None
) -> dict[str, Any]:
    """The objective to draw and its name (``names[objective]``; without names Optuna's own
    "Objective Value" stays). Multi-objective plots need one objective as target. Importance
    evaluators assume the target is minimised, so a maximised objective is negated there (its
    importances are unchanged)."""
    named = {"target_name": names[objective]} if names and objective < len(names) else {}
    if len(directions) < 2:
        return named
    sign = -1.0 if for_importance and directions[objective] == "maximize" else 1.0
    return {"target": lambda t: sign * t.values[objective], **named}


def figure(
    study: optuna.Study, kind: str, objective: int = 0, names: Sequence[str] | None = None
) -> go.Figure | str:
    """One figure, or a sentence saying why this study cannot have it; ``names`` label the
    objectives (the axis titles Optuna calls "Objective Value"; None keeps Optuna's)."""
    directions = [d.name.lower() for d in study.directions]
    multi = len(directions) > 1
    vis = optuna.visualization
    n_complete = sum(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False))
    builders = {
        "history": lambda: vis.plot_optimization_history(study, **_target(directions, objective,
                                                                         for_importance=False, names=names)),
        "intermediate": lambda: vis.plot_intermediate_values(study),
        "parallel": lambda: vis.plot_parallel_coordinate(study, **_target(directions, objective,
                                                                         for_importance=False, names=names)),
        "importances": lambda: vis.plot_param_importances(study, **_target(directions, objective,
                                                                          for_importance=True, names=names)),
        "pareto": lambda: vis.plot_pareto_front(study, target_names=list(names) if names else None),
        "timeline": lambda: vis.plot_timeline(study),
    }  # fmt: skip
    if kind not in builders:
        raise ValueError(f"unknown figure kind {kind!r} (valid: {', '.join(KINDS)})")
    if kind == "importances" and n_complete < 2:
        return "Parameter importances need at least two completed trials."
    if kind == "pareto" and not multi:
        return "This study has a single objective: its Pareto front is the best trial above."
    if kind == "pareto" and len(directions) > 3:
        return "Pareto front plots are drawn for 2 or 3 objectives."
    try:
        with warnings.catch_warnings():
            # Optuna warns that custom targets are taken as minimised; _target() handles it.
            warnings.simplefilter("ignore", UserWarning)
            fig = builders[kind]()
    except (ValueError, RuntimeError, ZeroDivisionError) as exc:
        return f"Not available for these trials ({str(exc).splitlines()[0]})."
    return _polish(fig, kind)


def _polish(fig: go.Figure, kind: str) -> go.Figure:
    """Room for the parallel-coordinates axis labels (Optuna's default margins clip the first and
    last axis), whole-number ticks where the x axis is a trial number or a step."""
    if kind == "parallel":
        fig.update_layout(margin=dict(l=110, r=110, t=80, b=40))
    if kind in ("history", "intermediate"):
        _integer_ticks(fig)
    fig.update_layout(height=max(fig.layout.height or 0, 420))
    return fig


def _integer_ticks(fig: go.Figure, every_one_up_to: int = 20) -> None:
    """Integer labels on the x axis. ``tickformat="d"`` alone would print 0, 0, 1, 1 for plotly's
    half-step ticks on a short axis (a few trials, a few epochs), so a short one gets a tick per
    integer; a longer one keeps plotly's spacing, which is then whole numbers."""
    xs = [float(x) for trace in fig.data for x in _xs(trace) if isinstance(x, Real)]
    span = max(xs) - min(xs) if xs else 0
    fig.update_xaxes(tickformat="d", **({"tick0": 0, "dtick": 1} if span <= every_one_up_to else {}))


def _xs(trace: Any) -> Sequence[Any]:
    x = getattr(trace, "x", None)
    return () if x is None else x
