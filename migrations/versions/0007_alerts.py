"""corsadmin_alert (the alerts' outbox) and corsadmin_refusal_hour (refusals per policy-hour)

Revision ID: 0007_alerts
Revises: 0006_workers
Create Date: 2026-12-07

"""
from alembic import op
import sqlalchemy as sa

from corsadmin.db.dialects import TABLE_OPTIONS
from corsadmin.db.models import UTCDateTime

revision = "0007_alerts"
down_revision = "0006_workers"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "corsadmin_alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("policy_name", sa.String(length=64), nullable=True),
        sa.Column("summary", sa.String(length=500), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("claimed_until", UTCDateTime(), nullable=True),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corsadmin_alert")),
        sa.UniqueConstraint("key", name=op.f("uq_corsadmin_alert_key")),
        **TABLE_OPTIONS,
    )
    op.create_index(op.f("ix_corsadmin_alert_created_at"), "corsadmin_alert", ["created_at"])
    op.create_index(op.f("ix_corsadmin_alert_status"), "corsadmin_alert", ["status"])
    op.create_table(
        "corsadmin_refusal_hour",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("policy_name", sa.String(length=64), nullable=False),
        sa.Column("hour", UTCDateTime(), nullable=False),
        sa.Column("refused", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corsadmin_refusal_hour")),
        sa.UniqueConstraint("policy_name", "hour", name="uq_corsadmin_refusal_hour"),
        **TABLE_OPTIONS,
    )
    op.create_index(
        op.f("ix_corsadmin_refusal_hour_hour"), "corsadmin_refusal_hour", ["hour"]
    )


def downgrade():
    op.drop_table("corsadmin_refusal_hour")
    op.drop_table("corsadmin_alert")
