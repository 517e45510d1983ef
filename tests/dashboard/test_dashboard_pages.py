"""Every dashboard page driven through Streamlit's AppTest on the seeded store."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from automl.store import open_store

APP = "../../dashboard/app.py"  # AppTest resolves it relative to this file


@pytest.fixture
def page(seeded, monkeypatch: pytest.MonkeyPatch):
    """Open one page of the app (after the entry script ran) with optional query parameters."""
    monkeypatch.setenv("AUTOML_DB", seeded.url)
    monkeypatch.delenv("AUTOML_OPTUNA_STORAGE", raising=False)

    def open_page(path: str, **query: str) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=60)
        for key, value in query.items():
            at.query_params[key] = value
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        if path != "views/runs.py":
            at.switch_page(path).run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return open_page


def _table(at: AppTest, key: str):
    frames = [df for df in at.dataframe if df.proto.id and key in df.proto.id] or list(at.dataframe)
    return frames[0].value


def _trials(at: AppTest):
    """The HPO page's trial table (a read-only dataframe has no element id to find it by)."""
    return next(df.value for df in at.dataframe if "duration" in df.value.columns)


def _captions(at: AppTest) -> list[str]:
    return [c for img in at.get("image") for c in img.captions]


# -- empty states -----------------------------------------------------------------------------
def test_missing_database_shows_how_to_start_and_creates_nothing(tmp_path: Path, monkeypatch) -> None:
    db = tmp_path / "nothing.db"
    monkeypatch.setenv("AUTOML_DB", f"sqlite:///{db}")
    for path in ("views/runs.py", "views/run.py", "views/compare.py", "views/hpo.py"):
        at = AppTest.from_file(APP, default_timeout=30)
        at.run()
        if path != "views/runs.py":
            at.switch_page(path).run()
        assert not at.exception
        assert any("No store" in i.value for i in at.info), path
        assert any("automl search" in m.value for m in at.markdown), path
    assert not db.exists()


def test_empty_store_shows_how_to_start(tmp_path: Path, monkeypatch) -> None:
    from automl.store import open_store

    url = f"sqlite:///{tmp_path / 'automl.db'}"
    open_store(url).close()
    monkeypatch.setenv("AUTOML_DB", url)
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Runs"]
    assert any("no runs yet" in i.value for i in at.info)
    assert any("automl search" in m.value for m in at.markdown)


# -- Runs --------------------------------------------------------------------------------------
def test_runs_table_lists_every_run_with_its_columns(page, seeded) -> None:
    at = page("views/runs.py")
    df = _table(at, "runs_table")
    everything = [seeded.ddpnas_run, seeded.running_run, seeded.failed_run, seeded.train_run, seeded.hpo_run]
    assert sorted(df["id"]) == sorted(everything)
    for col in (
        "state",
        "space",
        "task",
        "strategy",
        "data",
        "metric",
        "result",
        "progress",
        "ETA",
        "epochs",
        "wall time",
        "host",
    ):
        assert col in df.columns
    row = df[df["id"] == seeded.ddpnas_run].iloc[0]
    assert row["state"] == "completed" and row["strategy"] == "ddpnas" and row["epochs"] == seeded.n_epochs
    # A search's result is its best epoch's val metric, named with its split; a training's is its
    # test metric: AU and FER runs never share an unnamed column.
    assert row["metric"] == "test accuracy" and float(row["result"]) == 0.6321  # the seeded summary's
    assert row["progress"] == 1.0 and row["ETA"] == "-"
    train = df[df["id"] == seeded.train_run].iloc[0]
    assert train["metric"] == "test accuracy" and float(train["result"]) == 0.53
    au = df[df["id"] == seeded.running_run].iloc[0]
    assert au["metric"] == "val mean F1" and au["progress"] == pytest.approx(6 / 50)
    assert not any("None" in str(v) for v in df.drop(columns=["progress"]).to_numpy().ravel())
    assert any("5 run(s) match" in c.value for c in at.caption)


def test_runs_filters_and_sorting(page, seeded) -> None:
    at = page("views/runs.py")
    at.multiselect(key="f_state").set_value(["failed"]).run()
    df = _table(at, "runs_table")
    assert list(df["id"]) == [seeded.failed_run]
    assert any("1 run(s) match" in c.value for c in at.caption)

    at.multiselect(key="f_state").set_value([]).run()
    at.multiselect(key="f_task").set_value(["fer"]).run()
    at.text_input(key="f_data").set_value("synth").run()
    assert sorted(_table(at, "runs_table")["id"]) == sorted(
        [seeded.ddpnas_run, seeded.train_run, seeded.hpo_run]
    )
    at.multiselect(key="f_kind").set_value(["search"]).run()
    assert list(_table(at, "runs_table")["id"]) == [seeded.ddpnas_run]
    at.multiselect(key="f_kind").set_value([]).run()

    at.multiselect(key="f_task").set_value([]).run()
    at.text_input(key="f_data").set_value("").run()
    at.selectbox(key="sort").set_value("result").run()
    at.toggle(key="desc").set_value(True).run()
    best = [float(b) if b != "-" else float("nan") for b in _table(at, "runs_table")["result"]]
    known = [b for b in best if b == b]  # NaN (no metric) sorts last
    assert known == sorted(known, reverse=True) and best[: len(known)] == known

    at.text_input(key="f_data").set_value("no-such-data").run()
    assert any("No run matches" in i.value for i in at.info)


# -- Run ---------------------------------------------------------------------------------------
def test_run_page_shows_curves_distribution_genotype_and_downloads(page, seeded) -> None:
    at = page("views/run.py", run=str(seeded.ddpnas_run))
    assert at.title[0].value.startswith(f"Run #{seeded.ddpnas_run}")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["State"] == "completed"
    assert metrics["Epochs"] == f"{seeded.n_epochs} / {seeded.n_epochs}"
    assert (metrics["Params (M)"], metrics["MFLOPs"], metrics["Latency (ms)"]) == ("2.900", "512.5", "7.25")
    # Theta slider over updates: the last update shows every decision down to one op.
    slider = at.select_slider(key="theta_update")
    assert slider.value == seeded.n_updates
    assert metrics["Ops alive"] == "28 / 224" and metrics["Pruned ops"] == "196"
    charts = at.get("plotly_chart")
    assert len(charts) >= 4  # curves, theta heatmap, pruning curve, sampled-architecture timeline
    graphs = at.get("graphviz_chart")
    assert len(graphs) == 2
    dot = graphs[0].proto.spec
    assert "c_{k-2}" in dot and seeded.genotype["normal"][0][0] in dot
    labels = [b.proto.label for b in at.get("download_button")]
    assert "Download genotype JSON" in labels
    assert "Download supernet.safetensors" in labels
    assert any("genotype.json" in lab for lab in labels)


def test_theta_slider_moves_to_an_earlier_update(page, seeded) -> None:
    at = page("views/run.py", run=str(seeded.ddpnas_run))
    at.select_slider(key="theta_update").set_value(1).run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Update"] == f"1 of {seeded.n_updates}"
    assert metrics["Ops alive"] == "196 / 224" and metrics["Pruned ops"] == "28"


def test_run_page_variants_failed_and_running_runs(page, seeded) -> None:
    at = page("views/run.py", run=str(seeded.ddpnas_run))
    pick = at.selectbox(key="arch_pick")
    variant = next(i for i in pick.options if "skip_cap_2" in i)
    pick.set_value(pick.options.index(variant) if isinstance(pick.value, int) else variant).run()
    assert not at.exception

    at = page("views/run.py", run=str(seeded.failed_run))
    assert any("no 'pixels' column" in e.value for e in at.error)
    assert any("no distribution" in i.value for i in at.info)

    open_store(seeded.url).heartbeat(seeded.running_run)  # the seeding may be minutes old
    at = page("views/run.py", run=str(seeded.running_run))
    assert at.toggle(key="live").value is True  # running runs follow live by default
    assert {m.label: m.value for m in at.metric}["Epochs"] == "6 / 50"
    at.toggle(key="live").set_value(False).run()
    assert not at.exception


def test_live_run_shows_new_epochs_on_the_next_refresh(tmp_path: Path, monkeypatch) -> None:
    from automl.store import open_store
    from automl.store.recorder import StoreRecorder

    url = f"sqlite:///{tmp_path / 'live.db'}"
    store = open_store(url)
    run_id = store.create_run(kind="search", config={}, space="darts", task="fer", strategy="ddpnas")
    rec = StoreRecorder(store, run_id)
    rec.on_start({"search_epochs": 10})
    store.claim_run(run_id)  # running, owned by this (live) process, fresh heartbeat
    rec.on_epoch(0, {"phase": "warmup", "train_loss": 2, "val_loss": 2.1, "val_metric": 0.2, "wall_time": 3})
    monkeypatch.setenv("AUTOML_DB", url)
    at = AppTest.from_file(APP, default_timeout=30)
    at.query_params["run"] = str(run_id)
    at.run()
    at.switch_page("views/run.py").run()
    assert at.toggle(key="live").value is True
    assert {m.label: m.value for m in at.metric}["Epochs"] == "1 / 10"
    second = {"phase": "search", "train_loss": 1.5, "val_loss": 1.6, "val_metric": 0.4, "wall_time": 2}
    rec.on_epoch(1, second)
    rec.on_distribution(1, 1, [[0.6, 0.4, 0.0]], [[True, True, False]], {})
    at.run()  # what the fragment's timer does every few seconds
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Epochs"] == "2 / 10" and metrics["val accuracy"] == "0.4"
    # Progress with the ETA: 8 epochs left at the median of the recorded epochs' 3 s and 2 s.
    bars = at.get("progress")
    assert len(bars) == 1 and bars[0].proto.value == 20
    assert "2 / 10 epochs" in bars[0].proto.text and "20.0 s left" in bars[0].proto.text
    assert metrics["Pruned ops"] == "1"
    # The theta slider follows new updates while it sits on the newest one...
    rec.on_distribution(2, 1, [[0.7, 0.3, 0.0]], [[True, True, False]], {})
    at.run()
    assert at.select_slider(key="theta_update").value == 2
    rec.on_distribution(3, 2, [[1.0, 0.0, 0.0]], [[True, False, False]], {})
    at.run()
    assert at.select_slider(key="theta_update").value == 3
    assert {m.label: m.value for m in at.metric}["Pruned ops"] == "2"
    # ...and stays where the user put it once they look at an older one.
    at.select_slider(key="theta_update").set_value(1).run()
    rec.on_distribution(4, 3, [[1.0, 0.0, 0.0]], [[True, False, False]], {})
    at.run()
    assert at.select_slider(key="theta_update").value == 1
    assert {m.label: m.value for m in at.metric}["Update"] == "1 of 4"
    store.close()


def test_run_page_unknown_run(page) -> None:
    at = page("views/run.py", run="999")
    assert not at.exception
    assert at.selectbox(key="run_pick").value != 999


def test_run_links_win_over_the_remembered_pick(page, seeded) -> None:
    at = page("views/run.py", run=str(seeded.ddpnas_run))
    assert at.selectbox(key="run_pick").value == seeded.ddpnas_run
    at.query_params["run"] = str(seeded.hpo_run)  # e.g. the "Parent run" / "Open run" links
    at.run()
    assert at.selectbox(key="run_pick").value == seeded.hpo_run
    assert at.title[0].value.startswith(f"Run #{seeded.hpo_run}")
    links = {link.proto.label: link.proto.page for link in at.get("page_link")}
    assert "Open Optuna study 'seeded-lr'" in links and f"Parent run #{seeded.ddpnas_run}" in links
    at.selectbox(key="run_pick").set_value(seeded.train_run).run()  # the picker drives afterwards
    assert at.title[0].value.startswith(f"Run #{seeded.train_run}")
    assert at.query_params["run"] == [str(seeded.train_run)] or at.query_params["run"] == str(
        seeded.train_run
    )


# -- Compare -----------------------------------------------------------------------------------
def test_compare_overlays_runs_and_tabulates_final_numbers(page, seeded) -> None:
    ids = f"{seeded.ddpnas_run},{seeded.train_run}"
    at = page("views/compare.py", runs=ids)
    assert at.multiselect(key="cmp_runs").value == [seeded.ddpnas_run, seeded.train_run]
    assert len(at.get("plotly_chart")) == 1
    df = _table(at, "cmp_table")
    assert len(df) == 2
    # the train run has no params column value: the column is text with "-" for the gap
    assert float(df.iloc[0]["params (M)"]) == pytest.approx(2.9)
    assert float(df.iloc[1]["test metric"]) == pytest.approx(0.53)
    at.selectbox(key="cmp_metric").set_value("val_loss").run()
    assert not at.exception


# -- HPO ---------------------------------------------------------------------------------------
def test_hpo_single_objective_study(page) -> None:
    at = page("views/hpo.py")
    assert at.title[0].value == "Hyper-parameter studies"
    at.selectbox(key="study").set_value("seeded-lr").run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["complete"] == "6" and metrics["pruned"] == "2"
    assert any(s.value.startswith("Best trial #") for s in at.success)
    # One plot at a time (the segmented control), each of them drawable.
    for kind in ("history", "intermediate", "parallel", "importances", "timeline"):
        at.segmented_control(key="hpo_plot").set_value(kind).run()
        assert not at.exception and [c.key for c in at.get("plotly_chart")] == [f"plot_{kind}"]
    df = _trials(at)
    assert len(df) == 8 and set(df["state"]) == {"COMPLETE", "PRUNED"}
    assert {"lr", "optimizer", "objective 0", "duration"} <= set(df.columns)  # a study with no names
    assert set(df["optimizer"]) <= {"sgd", "adamw"}


def test_hpo_hide_pruned_and_state_filter(page) -> None:
    at = page("views/hpo.py")
    at.selectbox(key="study").set_value("seeded-lr").run()
    at.toggle(key="hide_pruned").set_value(True).run()
    assert not at.exception
    df = _trials(at)
    assert len(df) == 6 and set(df["state"]) == {"COMPLETE"}


def test_hpo_multi_objective_pareto_front(page) -> None:
    at = page("views/hpo.py", study="seeded-acc-latency")  # as linked from an hpo run
    assert at.selectbox(key="study").value == "seeded-acc-latency"
    assert not at.exception
    assert any("Pareto front" in c.value for c in at.caption)
    at.segmented_control(key="hpo_plot").set_value("pareto").run()
    assert [c.key for c in at.get("plotly_chart")] == ["plot_pareto"]
    at.selectbox(key="objective").set_value(1).run()
    assert not at.exception


# -- Retrieval ---------------------------------------------------------------------------------
def test_retrieval_without_index_explains_how_to_build_one(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AUTOML_DB", f"sqlite:///{tmp_path / 'none.db'}")
    monkeypatch.delenv("AUTOML_INDEXES", raising=False)
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    at.switch_page("views/retrieval.py").run()
    assert not at.exception
    assert any("No retrieval index" in i.value for i in at.info)
    assert any("automl index build" in m.value for m in at.markdown)


def test_retrieval_sample_query_shows_top_k_grid_with_precision(page, seeded, monkeypatch) -> None:
    monkeypatch.setenv("AUTOML_INDEXES", str(seeded.index_dirs[0]))
    at = page("views/retrieval.py")
    assert at.selectbox(key="index_dir").value == seeded.index_dirs[0]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Items"] == "36" and metrics["Bits"] == "32" and metrics["Stale updates"] == "0"
    assert len(at.get("plotly_chart")) == 1  # BSODH mAP over the stream
    captions = _captions(at)
    # the query itself, then K = 10 results, each with its distance and label
    assert len(captions) == 11
    results = captions[1:]
    assert all(" · d=" in c for c in results)
    assert "item #0" not in results and not any(c.startswith("#0 ") for c in results)
    dists = [int(c.split("d=")[1].split(" ")[0]) for c in results]
    assert dists == sorted(dists)
    precision = float(metrics["Precision@10"])
    marks = sum(c.endswith("✓") for c in results)
    assert precision == pytest.approx(marks / 10)

    at.slider(key="top_k").set_value(5).run()
    at.number_input(key="sample_pos").set_value(4).run()
    assert not at.exception
    captions = _captions(at)
    assert len(captions) == 6 and "happiness" in captions[0]
    assert "Precision@5" in {m.label for m in at.metric}


def test_retrieval_upload_query(page, seeded, monkeypatch) -> None:
    monkeypatch.delenv("AUTOML_INDEXES", raising=False)  # found through the store's index records
    at = page("views/retrieval.py")
    at.radio(key="query_kind").set_value("Upload a face image").run()
    assert any("Upload an image" in i.value for i in at.info)
    query = seeded.index_images[2]  # a 'neutral' face
    at.file_uploader(key="upload").set_value((query.name, query.read_bytes(), "image/png"))
    at.toggle(key="detect").set_value(False)
    at.selectbox(key="query_label").set_value("neutral").run()
    assert not at.exception
    captions = _captions(at)
    assert captions[0] == query.name
    results = captions[1:]
    assert len(results) == 10
    assert results[0].startswith("#2 · d=0 ")  # the same image is in the index: distance 0
    assert "Precision@10" in {m.label for m in at.metric}


def test_hpo_reads_a_journal_storage_without_writing(tmp_path: Path, monkeypatch, seeded) -> None:
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    journal = tmp_path / "hpo.journal"
    study = optuna.create_study(storage=JournalStorage(JournalFileBackend(str(journal))), study_name="j",
                                sampler=optuna.samplers.RandomSampler(seed=0))  # fmt: skip
    study.optimize(lambda t: (t.suggest_float("x", -2, 2) - 1) ** 2, n_trials=60)
    before = journal.read_bytes()
    monkeypatch.setenv("AUTOML_DB", seeded.url)
    monkeypatch.setenv("AUTOML_OPTUNA_STORAGE", f"journal:{journal}")
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("views/hpo.py").run()
    assert not at.exception
    assert at.selectbox(key="study").value == "j"
    assert {m.label: m.value for m in at.metric}["complete"] == "60"
    assert len(_trials(at)) == 50  # first page of 50
    at.number_input(key="trial_page").set_value(2).run()
    assert list(_trials(at)["trial"]) == list(range(50, 60))
    assert journal.read_bytes() == before

    monkeypatch.setenv("AUTOML_OPTUNA_STORAGE", f"journal:{tmp_path / 'missing.journal'}")
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    at.switch_page("views/hpo.py").run()
    assert any("No Optuna journal" in i.value for i in at.info)
    assert not (tmp_path / "missing.journal").exists()


def test_a_killed_run_shows_as_dead_and_stops_following(tmp_path: Path, monkeypatch) -> None:
    import subprocess
    import sys

    from automl.store.recorder import StoreRecorder

    url = f"sqlite:///{tmp_path / 'dead.db'}"
    store = open_store(url)
    run_id = store.create_run(kind="search", config={}, space="darts", task="fer", strategy="ddpnas")
    StoreRecorder(store, run_id).on_start({"search_epochs": 10})
    store.claim_run(run_id)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with store.engine.begin() as conn:  # as if that process had owned the run and died by SIGKILL
        conn.exec_driver_sql(f"UPDATE automl_runs SET pid = {gone.pid} WHERE id = {run_id}")
    monkeypatch.setenv("AUTOML_DB", url)
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    at.switch_page("views/runs.py").run()
    assert "running (dead)" in list(at.dataframe[0].value["state"])
    at = AppTest.from_file(APP, default_timeout=30)
    at.query_params["run"] = str(run_id)
    at.run()
    at.switch_page("views/run.py").run()
    assert at.toggle(key="live").value is False
    assert any("is not running" in w.value and "has exited" in w.value for w in at.warning)
    assert {m.label: m.value for m in at.metric}["State"] == "running (dead)"
