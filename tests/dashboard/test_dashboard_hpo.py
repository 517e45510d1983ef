"""The HPO page on a study being run: running trials drawn, objectives named, trials linked to
their train runs, params readable. The study is a real Optuna RDB storage in a SQLite file."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial
from streamlit.testing.v1 import AppTest

from automl.hpo import HP_NAMES, create_or_load_study
from automl.store import open_store
from dashboard import studies

APP = "../../dashboard/app.py"
DISTRIBUTIONS = {
    "lr": FloatDistribution(1e-4, 1e-1, log=True),
    "optimizer": CategoricalDistribution(["sgd", "adamw"]),
}
LR = {"lr": DISTRIBUTIONS["lr"]}


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


def _same(a: object, b: object) -> bool:
    """Equality where NaN equals NaN (an intermediate value can be NaN)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_sql_trials_are_the_trials_optuna_reads(any_db_url: str) -> None:
    """The page's SQL reader returns what Optuna's storage API does, encodings included: infinite
    values, NaN and -inf reports, categorical/int/log params, system attributes, every state."""
    from automl.store.repository import Store
    from dashboard import queries

    open_store(any_db_url).close()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(any_db_url)
    dists = {**DISTRIBUTIONS, "width": optuna.distributions.IntDistribution(8, 64, step=8)}
    single = optuna.create_study(storage=storage, study_name="one", direction="maximize")
    finished = (TrialState.COMPLETE, 0.5), (TrialState.COMPLETE, float("inf")), (TrialState.PRUNED, None)
    for state, value in (*finished, (TrialState.FAIL, None), (TrialState.RUNNING, None)):
        trial = create_trial(
            state=state,
            value=value,
            params={"lr": 3e-3, "optimizer": "adamw", "width": 24},
            distributions=dists,
            intermediate_values={0: 0.1, 1: float("nan"), 2: float("-inf")},
            user_attrs={"train_run_id": 3, **ATTRS},
        )
        single.add_trial(trial)
    single.enqueue_trial({"lr": 1e-2})
    running = next(t for t in single.get_trials() if t.state == TrialState.RUNNING)
    storage.set_trial_system_attr(running._trial_id, "constraints", [0.25])
    multi = optuna.create_study(storage=storage, study_name="two", directions=["maximize", "minimize"])
    multi.add_trial(create_trial(values=[0.7, float("-inf")], params={"lr": 1e-3}, distributions=LR))
    storage.engine.dispose()

    ro = Store(any_db_url, readonly=True)
    try:
        for info in queries.optuna_studies(ro.engine):
            mine = queries.study_trials(ro.engine, info["study_id"])
            theirs = optuna.load_study(study_name=info["name"], storage=any_db_url).get_trials(deepcopy=False)
            assert len(mine) == len(theirs) > 0
            for a, b in zip(mine, theirs, strict=True):
                assert _same(vars(a), vars(b)), (a, b)
    finally:
        ro.close()


def test_plot_keys_follow_what_each_plot_draws(running_study) -> None:
    """A running trial's new report reloads the trials and redraws the live plots, not the plots of
    finished trials' values; a trial ending redraws those too."""
    from automl.store.repository import Store

    ro = Store(running_study, readonly=True)
    source = studies.StudySource(running_study, ro.engine)
    try:
        before = source.version(source.studies()[0])
        study = optuna.load_study(study_name="live", storage=running_study)
        trial = next(t for t in study.get_trials() if t.state == TrialState.RUNNING)
        study._storage.set_trial_intermediate_value(trial._trial_id, 7, 0.5)
        reported = source.version(source.studies()[0])
        assert reported.key != before.key
        assert reported.for_plot("intermediate") != before.for_plot("intermediate")
        assert reported.for_plot("importances") == before.for_plot("importances")
        study._storage.set_trial_state_values(trial._trial_id, TrialState.COMPLETE, [0.6])
        ended = source.version(source.studies()[0])
        assert ended.for_plot("importances") != reported.for_plot("importances")
        directions, trials = source.trials(source.studies()[0])
        assert directions == ["maximize"] and [t.number for t in trials] == list(range(6))
    finally:
        ro.close()


def test_an_au_study_names_its_accuracy_objective_by_the_metric(tmp_path: Path, monkeypatch) -> None:
    """``automl hpo``'s ``accuracy`` objective is the task's primary metric: mean F1 for AU."""
    url = f"sqlite:///{tmp_path / 'automl.db'}"
    open_store(url).close()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = create_or_load_study(optuna.storages.RDBStorage(url), "au", ("accuracy", "latency"))
    for i in range(3):
        values = [0.3 + 0.1 * i, 2.0 - 0.5 * i]
        params = {"lr": 1e-3 * (i + 1)}
        attrs = {"metric": "mean_f1"}
        study.add_trial(create_trial(values=values, params=params, distributions=LR, user_attrs=attrs))
    at = _open(url, monkeypatch)
    df = _trials(at)
    assert {"val mean F1", "latency (ms)"} <= set(df.columns) and "val accuracy" not in df.columns
    assert at.selectbox(key="objective").options == ["val mean F1 (maximize)", "latency (ms) (minimize)"]
    assert _figure(at)["layout"]["yaxis"]["title"]["text"] == "val mean F1"
    at.segmented_control(key="hpo_plot").set_value("pareto").run()
    layout = _figure(at)["layout"]
    axes = layout["xaxis"]["title"]["text"], layout["yaxis"]["title"]["text"]
    assert axes == ("val mean F1", "latency (ms)")
    assert list(df["train run"]) == ["", "", ""]  # no run recorded: an empty cell, not a dead link
    assert all(re.fullmatch(r"\d\.\d\de-0\d", v) for v in df["lr"])  # a log-scale param: all alike


def test_bench_study_is_what_automl_leaves_and_the_page_loads_it(tmp_path: Path) -> None:
    """The benchmark's builder writes a study Optuna reads back with automl's names, attributes and
    running trials, and its page timer drives the real page (shape only: speed is measured, not
    asserted)."""
    from dashboard import bench_hpo_page

    url = bench_hpo_page.build_study_store(tmp_path / "bench.db", 40)
    study = optuna.load_study(study_name=bench_hpo_page.BENCH_STUDY, storage=url)
    trials = study.get_trials(deepcopy=False)
    assert study.metric_names == ["accuracy"] and len(trials) == 40
    assert [t.state for t in trials[-bench_hpo_page.RUNNING_TRIALS :]] == [TrialState.RUNNING] * 5
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert complete and all(len(t.intermediate_values) == bench_hpo_page.STEPS for t in complete)
    assert set(complete[0].params) == set(HP_NAMES)
    automl_attrs = {"train_run_id", "metric", "latency_ms", "params_m", "mflops", "signal"}
    assert automl_attrs <= set(complete[0].user_attrs)
    with pytest.raises(ValueError, match="already has trials"):
        bench_hpo_page.build_study_store(tmp_path / "bench.db", 5)
    times = bench_hpo_page.time_hpo_page(url, bench_hpo_page.BENCH_STUDY, reruns=2)
    assert times.cold_s > 0 and len(times.warm_runs_s) == 2 and times.warm_s > 0
