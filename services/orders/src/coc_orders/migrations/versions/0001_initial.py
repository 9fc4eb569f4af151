"""orders: outbox, inbox, order_events, account_deactivations

Revision ID: orders_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from coc_shared.tables import create_messaging_tables

revision = "orders_0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "orders"


def upgrade() -> None:
    create_messaging_tables(op.get_bind(), SCHEMA)
    op.create_table(
        "order_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("order_id", sa.String(200), nullable=False),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_index("ix_order_events_order_id", "order_events", ["order_id"], schema=SCHEMA)
    op.create_table(
        "account_deactivations",
        sa.Column("account_id", sa.String(200), primary_key=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("account_deactivations", schema=SCHEMA)
    op.drop_index("ix_order_events_order_id", table_name="order_events", schema=SCHEMA)
    op.drop_table("order_events", schema=SCHEMA)
    op.drop_table("inbox", schema=SCHEMA)
    op.drop_table("outbox", schema=SCHEMA)
