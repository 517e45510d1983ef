"""run heartbeat and store id

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 23:30:00

Adds ``automl_runs.heartbeat_at`` (the owner process's last sign of life) and ``automl_meta``
holding the store's random ``store_id``, which keys the artifact folders of its runs.
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("automl_runs") as batch:
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(), nullable=True))
    meta = op.create_table(
        "automl_meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.bulk_insert(meta, [{"key": "store_id", "value": uuid.uuid4().hex}])


def downgrade() -> None:
    op.drop_table("automl_meta")
    with op.batch_alter_table("automl_runs") as batch:
        batch.drop_column("heartbeat_at")
