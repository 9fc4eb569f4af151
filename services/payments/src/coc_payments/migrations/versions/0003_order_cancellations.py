"""payments: order_cancellations (order.cancelled); a payment's status may be ``cancelled``

Revision ID: payments_0003
Revises: payments_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "payments_0003"
down_revision = "payments_0002"
branch_labels = None
depends_on = None

SCHEMA = "payments"


def upgrade() -> None:
    op.create_table(
        "order_cancellations",
        sa.Column("order_id", sa.String(200), primary_key=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("cancelled_by", sa.String(20), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("order_cancellations", schema=SCHEMA)
