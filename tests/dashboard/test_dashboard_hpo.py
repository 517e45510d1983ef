"""The HPO page on a study being run: running trials drawn, objectives named, trials linked to
their train runs, params readable. The study is a real Optuna RDB storage in a SQLite file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial
from streamlit.testing.v1 import AppTest

from automl.hpo import create_or_load_study
from automl.store import open_store
from dashboard import studies

APP = "../../dashboard/app.py"
DISTRIBUTIONS = {
    "lr": FloatDistribution(1e-4, 1e-1, log=True),
    "optimizer": CategoricalDistribution(["sgd", "adamw"]),
}


ATTRS = {"latency_ms": 1.23456, "params_m": 0.079039, "mflops": 3.275, "worker": {"host": "h", "pid": 1},
         "signal": {"learned": True, "warnings": [], "checks": ["metric"]}}  # fmt: skip


@pytest.fixture
def running_study(tmp_path: Path) -> str:
    """A study as ``automl hpo`` leaves it mid-way: 4 complete trials with a train run each, 2
    running ones with intermediate values, its objective named by automl's study creation."""
    url = f"sqlite:///{tmp_path / 'automl.db'}"
    open_store(url).close()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = create_or_load_study(optuna.storages.RDBStorage(url), "live", ("accuracy",))
    for i in range(6):
        running = i >= 4
        study.add_trial(
            create_trial(
                state=TrialState.RUNNING if running else TrialState.COMPLETE,
                value=None if running else 0.4 + 0.05 * i,
                params={"lr": 10 ** (-3 + 0.123456789 * i), "optimizer": "sgd" if i % 2 else "adamw"},
                distributions=DISTRIBUTIONS,
                intermediate_values={s: 0.2 + 0.02 * s + 0.01 * i for s in range(3 if running else 5)},
                user_attrs={**ATTRS, "train_run_id": 10 + i},
            )
        )  # fmt: skip
    return url


def _open(url: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("AUTOML_DB", url)
    monkeypatch.delenv("AUTOML_OPTUNA_STORAGE", raising=False)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("views/hpo.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _figure(at: AppTest) -> dict:
    (chart,) = at.get("plotly_chart")
    return json.loads(chart.proto.spec)


def _trials(at: AppTest):
    return next(df.value for df in at.dataframe if "duration" in df.value.columns)


def test_automl_names_the_objectives_of_its_studies(running_study) -> None:
    study = optuna.load_study(study_name="live", storage=running_study)
    assert study.metric_names == ["accuracy"]
    assert studies.objective_names(["maximize"], {"metric_names": ["accuracy"]}) == ["val accuracy"]
    assert studies.objective_names(["maximize"], {"user_attrs": {"objectives": ["mean_f1"]}}) == [
        "val mean F1"
    ]
    assert studies.objective_names(["maximize", "minimize"], {}) == ["objective 0", "objective 1"]


def test_running_trials_are_drawn_and_watched(running_study, monkeypatch) -> None:
    at = _open(running_study, monkeypatch)
    assert {m.label: m.value for m in at.metric}["running"] == "2"
    assert at.toggle(key="hpo_live").value is True  # trials are running: the page refreshes itself
    assert any("2 trial(s) running" in c.value for c in at.caption)
    assert set(at.multiselect(key="trial_states").value) == {"COMPLETE", "RUNNING"}
    at.segmented_control(key="hpo_plot").set_value("intermediate").run()
    traces = _figure(at)["data"]
    assert {t["name"] for t in traces} >= {"Trial4", "Trial5"}  # the running ones, as they report
    at.segmented_control(key="hpo_plot").set_value("timeline").run()
    assert not at.exception


def test_objective_names_axes_table_and_best_trial(running_study, monkeypatch) -> None:
    at = _open(running_study, monkeypatch)
    history = _figure(at)
    assert history["layout"]["yaxis"]["title"]["text"] == "val accuracy"  # not "Objective Value"
    assert history["layout"]["xaxis"]["tickformat"] == "d"
    assert any("Best trial #3: val accuracy 0.55" in s.value for s in at.success)
    best = next(
        df.value for df in at.dataframe if "lr" in df.value.columns and "state" not in df.value.columns
    )
    assert list(best.iloc[0]) == [f"{10 ** (-3 + 0.123456789 * 3):.2e}", "sgd"]  # not 17 digits
    at.segmented_control(key="hpo_plot").set_value("parallel").run()
    parallel = _figure(at)
    assert parallel["layout"]["margin"]["l"] >= 100 and parallel["layout"]["margin"]["r"] >= 100


def test_trial_table_links_train_runs_and_prints_no_none(running_study, monkeypatch) -> None:
    at = _open(running_study, monkeypatch)
    df = _trials(at)
    assert {
        "trial",
        "state",
        "val accuracy",
        "train run",
        "latency (ms)",
        "params (M)",
        "MFLOPs",
        "signal",
    } <= set(df.columns)
    assert "worker" not in df.columns  # bookkeeping stays out
    assert list(df["train run"]) == [f"run?run={10 + i}" for i in range(6)]
    assert list(df["signal"])[:4] == ["ok"] * 4
    assert df.loc[df["state"] == "RUNNING", "val accuracy"].tolist() == ["-", "-"]
    cells = [str(v) for v in df.to_numpy().ravel()]
    assert not any(c in ("None", "nan") for c in cells)
    assert all(len(c) < 12 or not c.replace(".", "").isdigit() for c in cells)  # no 17-digit floats
    lr = df["lr"].tolist()
    assert all(math.isfinite(float(v)) for v in lr)
