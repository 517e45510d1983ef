"""Passwords in database / storage URLs are never printed nor stored (:mod:`automl.redact`).

``automl doctor``, the dashboard's banner and error box, ``automl hpo``'s failure and the error
stored for a run (``automl_runs.error``) all meet a ``postgresql://u:s3cret@...`` URL here that
cannot be reached (port 1), and ``s3cret`` must appear in none of them.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from automl.redact import redact, safe_url
from automl.store import open_store

SECRET = "s3cret"
PG_URL = f"postgresql://u:{SECRET}@127.0.0.1:1/x"
GENOTYPE = {"space": "face", "task": "fer", "head": "linear", "depths": [1, 1, 2],
            "ops": ["mb_k3_e3", "mb_k5_e3", "mb_k3_e3", "mb_k3_e6"]}  # fmt: skip


def test_the_helpers_hide_every_password():
    assert safe_url(PG_URL) == "postgresql://u:***@127.0.0.1:1/x"
    assert safe_url("sqlite:///runs/automl.db") == "sqlite:///runs/automl.db"
    assert safe_url("journal:./hpo.journal") == "journal:./hpo.journal"
    assert SECRET not in safe_url(f"postgresql://u@h/x?password={SECRET}&sslmode=require")
    text = (f"(psycopg.OperationalError) 'postgresql+psycopg://admin:{SECRET}@db:5432/a' and "
            f"mysql://root:p@{SECRET}@h/b; dsn host=h password={SECRET} user=u")  # fmt: skip
    shown = redact(text)
    assert SECRET not in shown and "admin:***@db:5432" in shown and "root:***@h/b" in shown
    assert "password=*** user=u" in shown and redact(shown) == shown
    assert redact("sqlite:///a.db; http://host:8080/p") == "sqlite:///a.db; http://host:8080/p"


def test_doctor_never_prints_the_password(cli):
    for args in (("doctor",), ("doctor", "--json")):
        res = cli("--db", PG_URL, *args)
        assert res.code == 0, res.err
        assert SECRET not in res.out + res.err
    info = json.loads(res.out)
    assert info["db_url"] == "postgresql://u:***@127.0.0.1:1/x" and info["db_reachable"] is False
    res = cli("--db", PG_URL, "runs", "list")  # an error line quoting the URL
    assert res.code == 2 and "u:***@" in res.err and SECRET not in res.out + res.err


def test_a_failed_hpo_neither_prints_nor_stores_the_storage_password(cli, tmp_path):
    genotype = tmp_path / "g.json"
    genotype.write_text(json.dumps(GENOTYPE))
    db = tmp_path / "automl.db"
    res = cli("--db", f"sqlite:///{db}", "hpo", genotype, "--trials", "1", "--storage", PG_URL)
    assert res.code == 2 and "cannot open the Optuna storage" in res.err, res.err
    assert SECRET not in res.out + res.err
    rows = sqlite3.connect(db).execute("SELECT state, error, config FROM automl_runs").fetchall()
    assert [r[0] for r in rows] == ["failed"] and "u:***@127.0.0.1" in rows[0][1]
    assert all(SECRET not in str(r) for r in rows)


def test_a_stored_error_never_keeps_a_password(db_url):
    store = open_store(db_url)
    run_id = store.create_run(kind="search", config={}, space="darts", task="fer")
    store.set_state(run_id, "failed", error=f"OperationalError: could not reach {PG_URL} (password={SECRET})")
    error = store.get_run(run_id)["error"]
    assert SECRET not in error and "u:***@127.0.0.1:1/x" in error


def test_dashboard_never_shows_the_password(monkeypatch):
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("AUTOML_DB", PG_URL)
    at = AppTest.from_file("../../dashboard/app.py", default_timeout=60)
    at.run()
    assert not at.exception
    shown = [e.value for e in (*at.sidebar.caption, *at.caption, *at.error, *at.info, *at.markdown)]
    assert any("u:***@127.0.0.1" in s for s in shown), shown  # the banner names the store...
    assert any("Cannot read the store" in e.value for e in at.error)
    assert all(SECRET not in s for s in shown), shown  # ...without its password
