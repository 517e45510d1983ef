"""Alembic environment for the store: only ``automl_*`` tables are ours.

Optuna's RDB storage keeps its own tables and its own ``alembic_version`` table in the same
database, so we use ``automl_alembic_version`` and hide every other table from autogenerate.
"""

from __future__ import annotations

from alembic import context

from automl.store.engine import make_engine
from automl.store.models import Base

VERSION_TABLE = "automl_alembic_version"


def include_name(name, type_, parent_names):  # type: ignore[no-untyped-def]
    if type_ == "table":
        return bool(name) and name.startswith("automl_")
    return True


def run_migrations() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        include_name=include_name,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
