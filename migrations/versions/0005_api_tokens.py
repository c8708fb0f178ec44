"""corsadmin_api_token: bearer tokens of the HTTP API (only their SHA-256 is kept)

Revision ID: 0005_api_tokens
Revises: 0004_drafts
Create Date: 2026-12-06

"""
from alembic import op
import sqlalchemy as sa

from corsadmin.db.dialects import TABLE_OPTIONS
from corsadmin.db.models import UTCDateTime

revision = "0005_api_tokens"
down_revision = "0004_drafts"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "corsadmin_api_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corsadmin_api_token")),
        sa.UniqueConstraint("name", name=op.f("uq_corsadmin_api_token_name")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_corsadmin_api_token_token_hash")),
        **TABLE_OPTIONS,
    )


def downgrade():
    op.drop_table("corsadmin_api_token")
