import json

from automl.store import open_store


def test_runs_list_empty_then_show_json(cli, db_url):
    store = open_store(db_url)
    res = cli("--db", db_url, "runs", "list")
    assert res.code == 0 and "automl search" in res.out
    run_id = store.create_run(kind="search", config={"k": 1}, space="darts")
    store.record_epoch(run_id, 0, {"val_metric": 0.3, "sample": [1, 2]})
    store.record_distribution(run_id, 0, 0, [[0.5, 0.5]], [[True, False]])
    store.add_architecture(run_id, {"space": "darts"})
    res = cli("runs", "show", str(run_id), "--json", "--db", db_url)  # --db after the sub-command
    assert res.code == 0, res.err
    report = json.loads(res.out)
    assert report["config"] == {"k": 1}
    assert report["epochs"][0]["sample"] == [1, 2]
    assert report["distributions"][0]["alive"] == [[True, False]]
    assert report["genotype"] == {"space": "darts"}
    res = cli("--db", db_url, "runs", "list", "--json")
    assert json.loads(res.out)[0]["epochs"] == 1


def test_cli_exit_codes_for_bad_input(cli, db_url, tmp_path):
    open_store(db_url).close()  # a store without run 999 (a missing file is its own error)
    res = cli("--db", db_url, "runs", "show", "999")
    assert res.code == 2 and "unknown run id 999" in res.err and "Traceback" not in res.err
    res = cli("--db", f"sqlite:///{tmp_path}/missing/dir/x.db", "runs", "list")
    assert res.code == 2 and "does not exist" in res.err
    res = cli("--db", "postgresql://nobody@127.0.0.1:9/none", "runs", "list")
    assert res.code == 2 and "cannot reach the store" in res.err
    res = cli("--db", "not a url", "runs", "list")
    assert res.code == 2 and "invalid database URL" in res.err


def test_db_env_var_is_the_default(cli, db_url, monkeypatch):
    monkeypatch.setenv("AUTOML_DB", db_url)
    open_store(db_url).create_run(kind="train")
    res = cli("runs", "list", "--json")
    assert res.code == 0 and json.loads(res.out)[0]["kind"] == "train"


def test_doctor_reports_versions_and_db(cli, db_url):
    res = cli("--db", db_url, "doctor", "--json")
    assert res.code == 0, res.err
    info = json.loads(res.out)
    assert info["db_reachable"] is True
    assert {"python", "torch", "faiss", "optuna", "streamlit", "gpu_count", "cuda_available"} <= set(info)
    res = cli("--db", "postgresql://nobody@127.0.0.1:9/none", "doctor", "--json")
    assert res.code == 0 and json.loads(res.out)["db_reachable"] is False
