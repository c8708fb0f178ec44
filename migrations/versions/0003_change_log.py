"""corsadmin_change: what each revision changed, so a reload reads only that

Revision ID: 0003_change_log
Revises: 0002_operator_sessions
Create Date: 2026-11-22

"""
from alembic import op
import sqlalchemy as sa

from corsadmin.db.dialects import TABLE_OPTIONS

revision = "0003_change_log"
down_revision = "0002_operator_sessions"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "corsadmin_change",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("policy_name", sa.String(length=64), nullable=True),
        sa.Column("origin", sa.String(length=2100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corsadmin_change")),
        **TABLE_OPTIONS,
    )
    op.create_index(
        op.f("ix_corsadmin_change_revision"), "corsadmin_change", ["revision"]
    )


def downgrade():
    # drop_table drops the table's indexes; dropping one first fails on MariaDB/MySQL
    # when a foreign key uses it.
    op.drop_table("corsadmin_change")
