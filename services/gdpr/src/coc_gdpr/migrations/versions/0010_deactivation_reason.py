"""gdpr: why an account was deactivated (customer_request, or inactivity: two years without
activity, found by a purge run); when the purge run destroyed the key of the summary's address

Revision ID: gdpr_0010
Revises: gdpr_0009
"""

import sqlalchemy as sa
from alembic import op

revision = "gdpr_0010"
down_revision = "gdpr_0009"
branch_labels = None
depends_on = None

SCHEMA = "gdpr"


def upgrade() -> None:
    op.add_column(
        "deactivation_requests",
        sa.Column("reason", sa.String(30), nullable=False, server_default="customer_request"),
        schema=SCHEMA,
    )
    op.add_column(
        "deactivation_requests",
        sa.Column("summary_key_destroyed_at", sa.DateTime(timezone=True)),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for name in ("summary_key_destroyed_at", "reason"):
        op.drop_column("deactivation_requests", name, schema=SCHEMA)
