"""corsadmin tables: policies, origin rules, audit events, usage, operators, revision

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-21

"""
from alembic import op
import sqlalchemy as sa

from corsadmin.db.dialects import TABLE_OPTIONS
from corsadmin.db.models import UTCDateTime

revision = "0001_initial"
down_revision = None
branch_labels = ("corsadmin",)
depends_on = None


def upgrade():
    op.create_table(
        "corsadmin_policy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("methods", sa.JSON(), nullable=False),
        sa.Column("allow_headers", sa.JSON(), nullable=False),
        sa.Column("expose_headers", sa.JSON(), nullable=False),
        sa.Column("credentials", sa.Boolean(), nullable=False),
        sa.Column("max_age", sa.Integer(), nullable=True),
        sa.Column("private_network", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("review_every_days", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("reviewed_at", UTCDateTime(), nullable=True),
        sa.Column("reviewed_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corsadmin_policy")),
        sa.UniqueConstraint("name", name=op.f("uq_corsadmin_policy_name")),
        sa.UniqueConstraint("path", name=op.f("uq_corsadmin_policy_path")),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "corsadmin_origin_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("policy_id", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=2100), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["policy_id"], ["corsadmin_policy.id"],
            name=op.f("fk_corsadmin_origin_rule_policy_id_corsadmin_policy"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corsadmin_origin_rule")),
        sa.UniqueConstraint("policy_id", "origin", name="uq_corsadmin_origin_rule"),
        **TABLE_OPTIONS,
    )
    op.create_index(
        op.f("ix_corsadmin_origin_rule_policy_id"), "corsadmin_origin_rule", ["policy_id"]
    )
    op.create_table(
        "corsadmin_audit_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("policy_name", sa.String(length=64), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corsadmin_audit_event")),
        **TABLE_OPTIONS,
    )
    op.create_index(op.f("ix_corsadmin_audit_event_at"), "corsadmin_audit_event", ["at"])
    op.create_index(
        op.f("ix_corsadmin_audit_event_policy_name"), "corsadmin_audit_event", ["policy_name"]
    )
    op.create_table(
        "corsadmin_origin_usage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("policy_name", sa.String(length=64), nullable=False),
        sa.Column("origin", sa.String(length=2100), nullable=False),
        sa.Column("rule", sa.String(length=2100), nullable=True),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corsadmin_origin_usage")),
        sa.UniqueConstraint("policy_name", "origin", name="uq_corsadmin_origin_usage"),
        **TABLE_OPTIONS,
    )
    op.create_index(
        op.f("ix_corsadmin_origin_usage_policy_name"), "corsadmin_origin_usage", ["policy_name"]
    )
    op.create_index(
        op.f("ix_corsadmin_origin_usage_last_seen"), "corsadmin_origin_usage", ["last_seen"]
    )
    op.create_table(
        "corsadmin_operator",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("last_login_at", UTCDateTime(), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corsadmin_operator")),
        sa.UniqueConstraint("name", name=op.f("uq_corsadmin_operator_name")),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "corsadmin_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corsadmin_state")),
        **TABLE_OPTIONS,
    )
    op.execute(
        "INSERT INTO corsadmin_state (id, revision, changed_at) VALUES (1, 0, CURRENT_TIMESTAMP)"
    )


def downgrade():
    # drop_table drops the table's indexes; dropping one first fails on MariaDB/MySQL
    # when a foreign key uses it.
    op.drop_table("corsadmin_state")
    op.drop_table("corsadmin_operator")
    op.drop_table("corsadmin_origin_usage")
    op.drop_table("corsadmin_audit_event")
    op.drop_table("corsadmin_origin_rule")
    op.drop_table("corsadmin_policy")
