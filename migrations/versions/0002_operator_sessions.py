"""corsadmin_operator_session: server-side login sessions of the built-in login

Revision ID: 0002_operator_sessions
Revises: 0001_initial
Create Date: 2026-11-22

"""
from alembic import op
import sqlalchemy as sa

from corsadmin.db.dialects import TABLE_OPTIONS
from corsadmin.db.models import UTCDateTime

revision = "0002_operator_sessions"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "corsadmin_operator_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("operator_id", sa.Integer(), nullable=False),
        sa.Column("password_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["operator_id"], ["corsadmin_operator.id"],
            name=op.f("fk_corsadmin_operator_session_operator_id_corsadmin_operator"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corsadmin_operator_session")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_corsadmin_operator_session_token_hash")),
        **TABLE_OPTIONS,
    )
    op.create_index(
        op.f("ix_corsadmin_operator_session_operator_id"),
        "corsadmin_operator_session",
        ["operator_id"],
    )


def downgrade():
    # drop_table drops the table's indexes; dropping one first fails on MariaDB/MySQL
    # when a foreign key uses it.
    op.drop_table("corsadmin_operator_session")
