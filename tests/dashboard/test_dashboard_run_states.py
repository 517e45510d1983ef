"""The Run and Runs pages in the states a user meets: stale, starting, finishing, AU, DARTS, HPO,
training. Each store is a real SQLite file written through the Store API and StoreRecorder."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from automl.store import open_store
from automl.store.recorder import StoreRecorder
from dashboard.queries import now_utc

APP = "../../dashboard/app.py"


def _open(url: str, monkeypatch: pytest.MonkeyPatch, path: str, **query: str) -> AppTest:
    monkeypatch.setenv("AUTOML_DB", url)
    monkeypatch.delenv("AUTOML_OPTUNA_STORAGE", raising=False)
    at = AppTest.from_file(APP, default_timeout=60)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    if path != "views/runs.py":
        at.switch_page(path).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _texts(at: AppTest) -> str:
    parts = [*at.info, *at.warning, *at.caption, *at.markdown, *at.error, *at.success]
    return "\n".join(p.value for p in parts)


@pytest.fixture
def store(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'states.db'}"
    s = open_store(url)
    yield s, url
    s.close()


def test_a_stale_run_elsewhere_shows_as_stale_with_no_eta(store, monkeypatch) -> None:
    s, url = store
    run_id = s.create_run(kind="search", config={}, space="face", task="fer", strategy="ddpnas")
    StoreRecorder(s, run_id).on_start({"search_epochs": 10})
    s.claim_run(run_id)
    rec = StoreRecorder(s, run_id)
    rec.on_epoch(0, {"phase": "search", "val_metric": 0.3, "wall_time": 2.0})
    old = now_utc() - timedelta(minutes=51)
    with s.engine.begin() as conn:  # another host's run whose owner stopped beating 51 min ago
        conn.exec_driver_sql(
            "UPDATE automl_runs SET host = 'gpu-node-7', heartbeat_at = ?, updated_at = ? WHERE id = ?",
            (old, old, run_id),
        )
    at = _open(url, monkeypatch, "views/runs.py")
    row = at.dataframe[0].value.iloc[0]
    assert row["state"] == "running (stale)" and row["ETA"] == "-"
    assert at.toggle(key="runs_auto").value is True  # a row is still marked running
    at = _open(url, monkeypatch, "views/run.py", run=str(run_id))
    assert at.toggle(key="live").value is False
    assert any("no heartbeat" in w.value for w in at.warning)
    assert not at.get("progress")  # no progress bar and no ETA for a run that is not going


def test_a_ddpnas_run_before_its_first_update_says_so(store, monkeypatch) -> None:
    s, url = store
    run_id = s.create_run(kind="search", config={}, space="face", task="fer", strategy="ddpnas")
    rec = StoreRecorder(s, run_id)
    rec.on_start({"search_epochs": 27, "updates": 6, "decisions": ["layer0"], "candidates": [["a", "b"]]})
    s.claim_run(run_id)
    rec.on_epoch(0, {"phase": "search", "sample": [0], "val_metric": 0.2, "wall_time": 4.0})
    at = _open(url, monkeypatch, "views/run.py", run=str(run_id))
    text = _texts(at)
    assert "No distribution update yet" in text and "6 updates planned" in text
    assert "only DDPNAS and DARTS" not in text
    assert "every epoch trains one path sampled from theta" in text  # the strategy's description
    bar = at.get("progress")[0].proto
    assert bar.value == 3 and "1 / 27 epochs" in bar.text and "1 min 44 s left" in bar.text


def test_the_page_redraws_when_a_live_run_finishes(store, monkeypatch) -> None:
    s, url = store
    run_id = s.create_run(kind="search", config={}, space="face", task="au", strategy="ddpnas")
    rec = StoreRecorder(s, run_id)
    rec.on_start({"search_epochs": 2})
    s.claim_run(run_id)
    rec.on_epoch(0, {"phase": "search", "val_metric": 0.3, "metric_name": "mean_f1", "wall_time": 1.0})
    at = _open(url, monkeypatch, "views/run.py", run=str(run_id))
    assert "No architecture recorded yet" in _texts(at)
    assert _metrics(at)["val mean F1"] == "0.3"  # an AU run names its metric
    rec.on_epoch(1, {"phase": "search", "val_metric": 0.4, "metric_name": "mean_f1", "wall_time": 1.0})
    genotype = {"space": "face", "task": "au", "depths": [1], "ops": ["mb_k3_e3"], "head": "au_graph"}
    rec.on_finish(genotype, {"metric_name": "mean_f1", "cost": {"params": 5e4, "mflops": 1.5}})
    s.set_state(run_id, "completed")
    at.run()  # the live fragment's timer: it sees the state change and redraws the page
    at.run()
    assert not at.exception
    assert "No architecture recorded yet" not in _texts(at)
    assert "mb_k3_e3 (head: au_graph)" in _texts(at)
    assert "automl train" in _texts(at)  # no training yet: how to get a test metric
    assert _metrics(at)["State"] == "completed"


def test_darts_distribution_uses_one_colour_scale_over_the_run(store, monkeypatch) -> None:
    s, url = store
    run_id = s.create_run(kind="search", config={}, space="darts", task="fer", strategy="darts")
    rec = StoreRecorder(s, run_id)
    rec.on_start(
        {"search_epochs": 3, "decisions": [f"e{i}" for i in range(3)], "candidates": [list("abcd")] * 3}
    )
    s.claim_run(run_id)
    rng = np.random.default_rng(0)
    thetas = []
    for u in range(1, 4):
        rec.on_epoch(u - 1, {"phase": "search", "val_metric": 0.2, "wall_time": 1.0})
        theta = 0.25 + rng.normal(0, 2e-4 * u, (3, 4))
        theta /= theta.sum(axis=1, keepdims=True)
        thetas.append(theta)
        rec.on_distribution(u, u - 1, theta, np.ones((3, 4), dtype=bool), {})
    s.set_state(run_id, "completed")
    at = _open(url, monkeypatch, "views/run.py", run=str(run_id))
    flat = np.concatenate([t.ravel() for t in thetas])

    def heatmap_range() -> tuple[float, float]:
        specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
        trace = next(d for spec in specs for d in spec["data"] if d.get("type") == "heatmap")
        return trace["zmin"], trace["zmax"]

    # DARTS opens relative to uniform (theta x 4 ops): 1.0 is undecided, whatever a row's length.
    assert at.toggle(key="theta_relative").value is True
    assert heatmap_range() == pytest.approx((4 * flat.min(), 4 * flat.max()))  # not from 0
    at.toggle(key="theta_relative").set_value(False).run()
    assert heatmap_range() == pytest.approx((flat.min(), flat.max()))
    at.select_slider(key="theta_update").set_value(1).run()
    assert heatmap_range() == pytest.approx((flat.min(), flat.max()))  # the same scale at update 1
    assert "rows sum to 1" in _texts(at)
    assert "Sampled architectures" not in [t.label for t in at.tabs]
    assert "mixed supernet" in _texts(at)


def test_hpo_and_train_runs_get_their_own_tabs(store, monkeypatch) -> None:
    s, url = store
    search = s.create_run(kind="search", config={}, space="face", task="fer", strategy="random")
    s.set_state(search, "running")
    ranking = [{"choice": [0, 1], "val_metric": 0.4}, {"choice": [1, 1], "val_metric": 0.5}]
    s.set_summary(
        search, {"strategy": "random", "best_val_metric": 0.5, "metric_name": "accuracy", "ranking": ranking}
    )
    s.set_state(search, "completed")
    hpo = s.create_run(kind="hpo", config={"trials": 8}, space="face", task="fer", parent_run_id=search)
    s.set_state(hpo, "running")
    best = {
        "best_value": 0.61,
        "best_params": {"lr": 0.00316227766, "optimizer": "sgd"},
        "best": {"number": 3},
    }
    s.set_summary(hpo, {"study": "st", "counts": {"complete": 8}, **best})
    s.set_state(hpo, "completed")
    train = s.create_run(
        kind="train", config={"train": {"epochs": 2}}, space="face", task="fer", parent_run_id=search
    )
    s.set_state(train, "running")
    for e in range(2):
        s.record_epoch(train, e, {"val_metric": 0.5 + e / 10, "wall_time": 1.0})
    s.set_summary(train, {"test_metric": 0.58, "primary_metric": "accuracy",
                          "test_metrics": {"accuracy": 0.58, "macro_f1": 0.51}})  # fmt: skip
    s.set_state(train, "completed")

    at = _open(url, monkeypatch, "views/run.py", run=str(hpo))
    assert [t.label for t in at.tabs] == ["Trials", "Artifacts", "Config"]
    assert "No epoch recorded yet" not in _texts(at)
    assert _metrics(at)["Trials"] == "8 / 8" and _metrics(at)["trial #3: value"] == "0.61"
    assert list(at.dataframe[0].value.iloc[0]) == ["3.16e-03", "sgd"]  # not 0.00316227766

    at = _open(url, monkeypatch, "views/run.py", run=str(train))
    assert [t.label for t in at.tabs] == ["Architecture", "Artifacts", "Config"]
    metrics = _metrics(at)
    assert metrics["test accuracy"] == "0.58" and metrics["macro_f1"] == "0.51"

    at = _open(url, monkeypatch, "views/run.py", run=str(search))
    assert "Candidate ranking" in [t.label for t in at.tabs]
    ranking = next(d.value for d in at.dataframe if "val metric" in d.value.columns)
    assert list(ranking["val metric"]) == [0.5, 0.4]  # best first
    assert "Trained as run" in _texts(at) or any(
        f"#{train}" in str(p.proto.label) for p in at.get("page_link")
    )
