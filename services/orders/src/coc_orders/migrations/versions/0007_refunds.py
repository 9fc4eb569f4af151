"""orders: the refunds of orders' money that payments announces (order_refunds), so that an order
whose sale was given back ends refunded

Revision ID: orders_0007
Revises: orders_0006
"""

import sqlalchemy as sa
from alembic import op

revision = "orders_0007"
down_revision = "orders_0006"
branch_labels = None
depends_on = None

SCHEMA = "orders"


def upgrade() -> None:
    op.create_table(
        "order_refunds",
        sa.Column("refund_id", sa.String(36), primary_key=True),
        sa.Column("order_id", sa.String(36), nullable=False),
        sa.Column("amount_cents", sa.Integer, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("reason", sa.String(40), nullable=True),
        sa.Column("credit_note_number", sa.String(20), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        schema=SCHEMA,
    )
    op.create_index("ix_order_refunds_order_id", "order_refunds", ["order_id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("order_refunds", schema=SCHEMA)
