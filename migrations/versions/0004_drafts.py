"""corsadmin_draft*: drafts, a proposed change tried on live traffic before it is enforced

Revision ID: 0004_drafts
Revises: 0003_change_log
Create Date: 2026-11-22

"""
from alembic import op
import sqlalchemy as sa

from corsadmin.db.dialects import TABLE_OPTIONS
from corsadmin.db.models import UTCDateTime

revision = "0004_drafts"
down_revision = "0003_change_log"
branch_labels = None
depends_on = None


def _draft_id():
    return sa.Column(
        "draft_id",
        sa.Integer(),
        sa.ForeignKey("corsadmin_draft.id", ondelete="CASCADE"),
        nullable=False,
    )


def upgrade():
    op.create_table(
        "corsadmin_draft",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("closed_by", sa.String(length=200), nullable=True),
        sa.Column("promoted_revision", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corsadmin_draft")),
        **TABLE_OPTIONS,
    )
    op.create_index(op.f("ix_corsadmin_draft_status"), "corsadmin_draft", ["status"])
    op.create_table(
        "corsadmin_draft_policy",
        sa.Column("id", sa.Integer(), nullable=False),
        _draft_id(),
        sa.Column("policy_name", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corsadmin_draft_policy")),
        sa.UniqueConstraint("draft_id", "policy_name", name="uq_corsadmin_draft_policy"),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "corsadmin_draft_origin",
        sa.Column("id", sa.Integer(), nullable=False),
        _draft_id(),
        sa.Column("policy_name", sa.String(length=64), nullable=False),
        sa.Column("origin", sa.String(length=2100), nullable=False),
        sa.Column("removed", sa.Boolean(), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corsadmin_draft_origin")),
        sa.UniqueConstraint(
            "draft_id", "policy_name", "origin", name="uq_corsadmin_draft_origin"
        ),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "corsadmin_draft_traffic",
        sa.Column("id", sa.Integer(), nullable=False),
        _draft_id(),
        sa.Column("policy_name", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=False),
        sa.Column("origin", sa.String(length=2100), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.Column("example_path", sa.String(length=512), nullable=False),
        sa.Column("example_method", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corsadmin_draft_traffic")),
        sa.UniqueConstraint(
            "draft_id", "policy_name", "outcome", "origin", name="uq_corsadmin_draft_traffic"
        ),
        **TABLE_OPTIONS,
    )
    for table in ("corsadmin_draft_policy", "corsadmin_draft_origin", "corsadmin_draft_traffic"):
        op.create_index(op.f(f"ix_{table}_draft_id"), table, ["draft_id"])


def downgrade():
    # drop_table drops the table's indexes; dropping one first fails on MariaDB/MySQL
    # when a foreign key uses it.
    for table in ("corsadmin_draft_traffic", "corsadmin_draft_origin", "corsadmin_draft_policy"):
        op.drop_table(table)
    op.drop_table("corsadmin_draft")
