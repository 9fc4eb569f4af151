"""orders: the outbox keeps each event's W3C trace context (traceparent), which the relay
publishes in the message's headers; the inbox records each handled event's correlation id

Revision ID: orders_0009
Revises: orders_0008
"""

from alembic import op

from coc_shared.tables import add_messaging_columns

revision = "orders_0009"
down_revision = "orders_0008"
branch_labels = None
depends_on = None

SCHEMA = "orders"


def upgrade() -> None:
    add_messaging_columns(op, SCHEMA)


def downgrade() -> None:
    op.drop_column("inbox", "correlation_id", schema=SCHEMA)
    op.drop_column("outbox", "traceparent", schema=SCHEMA)
