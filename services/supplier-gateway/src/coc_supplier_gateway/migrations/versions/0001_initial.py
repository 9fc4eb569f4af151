"""supplier_gateway: outbox, inbox, supplier_requests, account_deactivations

Revision ID: supplier_gateway_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from coc_shared.tables import create_messaging_tables

revision = "supplier_gateway_0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "supplier_gateway"


def upgrade() -> None:
    create_messaging_tables(op.get_bind(), SCHEMA)
    op.create_table(
        "supplier_requests",
        sa.Column("order_id", sa.String(200), primary_key=True),
        sa.Column("brand", sa.String(100)),
        sa.Column("order_placed", sa.Boolean, nullable=False),
        sa.Column("paid", sa.Boolean, nullable=False),
        sa.Column("documents_completed", sa.Boolean, nullable=False),
        sa.Column("document_ids", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
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
    op.drop_table("supplier_requests", schema=SCHEMA)
    op.drop_table("inbox", schema=SCHEMA)
    op.drop_table("outbox", schema=SCHEMA)
