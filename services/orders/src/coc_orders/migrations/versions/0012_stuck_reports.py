"""orders: the stuck-order detector's record of what it reported (one order.stuck per order,
state and since)

Revision ID: orders_0012
Revises: orders_0011
"""

import sqlalchemy as sa
from alembic import op

revision = "orders_0012"
down_revision = "orders_0011"
branch_labels = None
depends_on = None

SCHEMA = "orders"


def upgrade() -> None:
    op.create_table(
        "stuck_reports",
        sa.Column("order_id", sa.String(36), nullable=False),
        sa.Column("state", sa.String(40), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "state", "since", name="pk_stuck_reports"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("stuck_reports", schema=SCHEMA)
