"""ops schema: indexes of the support console's summary of parked messages (``parked_summary``):
the groups waiting for a decision, and the failures per hour

Revision ID: ops_0004
Revises: ops_0003
Create Date: 2026-12-05
"""

from alembic import op

revision = "ops_0004"
down_revision = "ops_0003"
branch_labels = None
depends_on = None

SCHEMA = "ops"


def upgrade() -> None:
    op.create_index(
        "ix_parked_groups",
        "parked_messages",
        ["service", "status", "event_type", "error_type"],
        schema=SCHEMA,
        if_not_exists=True,
    )
    op.create_index(
        "ix_parked_service_parked_at",
        "parked_messages",
        ["service", "parked_at"],
        schema=SCHEMA,
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_index("ix_parked_service_parked_at", table_name="parked_messages", schema=SCHEMA)
    op.drop_index("ix_parked_groups", table_name="parked_messages", schema=SCHEMA)
