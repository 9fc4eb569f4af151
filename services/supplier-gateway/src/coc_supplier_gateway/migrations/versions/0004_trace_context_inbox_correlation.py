"""supplier_gateway: the outbox keeps each event's W3C trace context (traceparent), which the relay
publishes in the message's headers; the inbox records each handled event's correlation id

Revision ID: supplier_gateway_0004
Revises: supplier_gateway_0003
"""

from alembic import op

from coc_shared.tables import add_messaging_columns

revision = "supplier_gateway_0004"
down_revision = "supplier_gateway_0003"
branch_labels = None
depends_on = None

SCHEMA = "supplier_gateway"


def upgrade() -> None:
    add_messaging_columns(op, SCHEMA)


def downgrade() -> None:
    op.drop_column("inbox", "correlation_id", schema=SCHEMA)
    op.drop_column("outbox", "traceparent", schema=SCHEMA)
