"""Plots of big studies are drawn on a capped subset that keeps the best trials."""

from __future__ import annotations

import optuna
import plotly.graph_objects as go
import pytest

from dashboard import study_plots


def _study(n: int, directions: list[str]) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=directions, sampler=optuna.samplers.RandomSampler(seed=0))
    if len(directions) == 1:
        study.optimize(lambda t: (t.suggest_float("x", -3, 3) - 1) ** 2, n_trials=n)
    else:
        study.optimize(lambda t: (t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)), n_trials=n)
    return study


def test_subset_keeps_the_best_trial_and_the_cap() -> None:
    study = _study(120, ["minimize"])
    subset, capped = study_plots.plot_subset(study, cap=30)
    assert capped and len(subset) <= 30
    assert study.best_trial.number in {t.number for t in subset}
    numbers = [t.number for t in subset]
    assert numbers == sorted(numbers) and numbers[0] == 0 and numbers[-1] == 119  # spread over the study
    assert study_plots.plot_subset(study, cap=500) == (study.get_trials(deepcopy=False), False)


def test_pareto_front_survives_subsampling() -> None:
    study = _study(80, ["maximize", "minimize"])
    subset, capped = study_plots.plot_subset(study, cap=40)
    assert capped
    front = {t.number for t in study.best_trials}
    assert 0 < len(front) <= 40 // 4  # precondition: the whole front fits the reserved quarter
    assert front <= {t.number for t in subset}


def test_figures_and_reasons() -> None:
    single = _study(12, ["minimize"])
    assert isinstance(study_plots.figure(single, "history"), go.Figure)
    assert isinstance(study_plots.figure(single, "importances"), go.Figure)
    assert "single objective" in study_plots.figure(single, "pareto")
    multi = _study(12, ["maximize", "minimize"])
    assert isinstance(study_plots.figure(multi, "pareto"), go.Figure)
    assert isinstance(study_plots.figure(multi, "history", objective=1), go.Figure)
    empty = study_plots.memory_study(["minimize"], [])
    assert "at least two" in study_plots.figure(empty, "importances")
    assert study_plots.summary(empty) == {"complete": 0}
    assert study_plots.summary(single)["best_number"] == single.best_trial.number
    with pytest.raises(ValueError, match="unknown figure kind"):
        study_plots.figure(single, "nope")


def test_axis_titles_follow_the_study_names_and_trial_axes_are_integers() -> None:
    single = _study(6, ["minimize"])
    unnamed = study_plots.figure(single, "history")
    assert unnamed.layout.yaxis.title.text == "Objective Value"  # a study without names keeps Optuna's
    named = study_plots.figure(single, "history", names=["val accuracy"])
    assert named.layout.yaxis.title.text == "val accuracy"
    # 6 trials: one tick per trial number (plotly would put half steps there, printed 0, 0, 1, 1...).
    assert (named.layout.xaxis.tickformat, named.layout.xaxis.dtick) == ("d", 1)
    long = study_plots.figure(_study(60, ["minimize"]), "history", names=["loss"])
    assert long.layout.xaxis.tickformat == "d" and long.layout.xaxis.dtick is None
    multi = _study(8, ["maximize", "minimize"])
    pareto = study_plots.figure(multi, "pareto", names=["val accuracy", "latency (ms)"])
    axes = pareto.layout.xaxis.title.text, pareto.layout.yaxis.title.text
    assert axes == ("val accuracy", "latency (ms)")
    assert study_plots.figure(multi, "history", objective=1).layout.yaxis.title.text == "Objective Value"
