"""corsadmin_worker: the fleet view, one row per process enforcing the policy

Revision ID: 0006_workers
Revises: 0005_api_tokens
Create Date: 2026-12-07

"""
from alembic import op
import sqlalchemy as sa

from corsadmin.db.dialects import TABLE_OPTIONS
from corsadmin.db.models import UTCDateTime

revision = "0006_workers"
down_revision = "0005_api_tokens"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "corsadmin_worker",
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("loaded_at", UTCDateTime(), nullable=True),
        sa.Column("committed_at", UTCDateTime(), nullable=True),
        sa.Column("checked_at", UTCDateTime(), nullable=True),
        sa.Column("listening", sa.Boolean(), nullable=True),
        sa.Column("interval", sa.Float(), nullable=False),
        sa.Column("reported_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("host", "pid", name=op.f("pk_corsadmin_worker")),
        **TABLE_OPTIONS,
    )
    op.create_index(
        op.f("ix_corsadmin_worker_reported_at"), "corsadmin_worker", ["reported_at"]
    )


def downgrade():
    op.drop_table("corsadmin_worker")
