"""Our schema coexists with Optuna's in one database and matches the models."""

import optuna
import sqlalchemy as sa

from automl.store import open_store
from automl.store.migrations_api import check, current_revision, head_revision


def test_optuna_and_store_share_one_database(any_db_url):
    db_url = any_db_url
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=db_url, study_name="coexist")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    store = open_store(db_url)
    store.create_run(kind="hpo")
    tables = set(sa.inspect(store.engine).get_table_names())
    assert {"studies", "trials", "alembic_version"} <= tables  # Optuna's
    assert {
        "automl_runs",
        "automl_epochs",
        "automl_distributions",
        "automl_architectures",
        "automl_checkpoints",
        "automl_indexes",
        "automl_alembic_version",
    } <= tables
    assert current_revision(store.engine) == head_revision()
    check(store.engine, store.url)  # `alembic check`: raises if models and DB differ
    # Optuna still works on the shared file after our migration
    assert len(optuna.load_study(storage=db_url, study_name="coexist").trials) == 2


def test_open_store_is_idempotent(db_url):
    open_store(db_url)
    store = open_store(db_url)
    assert current_revision(store.engine) == head_revision()


def test_sqlite_runs_in_wal_mode(db_url):
    store = open_store(db_url)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
