"""corsadmin_origin_usage: an example path and method of a refused origin's calls, and
its dismissal (who hid it from the refused-origins report, and when)

Revision ID: 0008_refused_examples
Revises: 0007_alerts
Create Date: 2026-12-07

"""
from alembic import op
import sqlalchemy as sa

from corsadmin.db.models import UTCDateTime

revision = "0008_refused_examples"
down_revision = "0007_alerts"
branch_labels = None
depends_on = None

TABLE = "corsadmin_origin_usage"


def upgrade():
    with op.batch_alter_table(TABLE) as batch:
        batch.add_column(
            sa.Column("example_path", sa.String(length=512), server_default="", nullable=False)
        )
        batch.add_column(
            sa.Column("example_method", sa.String(length=32), server_default="", nullable=False)
        )
        batch.add_column(sa.Column("dismissed_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("dismissed_by", sa.String(length=200), nullable=True))


def downgrade():
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_column("dismissed_by")
        batch.drop_column("dismissed_at")
        batch.drop_column("example_method")
        batch.drop_column("example_path")
