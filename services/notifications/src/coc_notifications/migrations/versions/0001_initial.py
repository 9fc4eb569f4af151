"""notifications: outbox, inbox, notifications

Revision ID: notifications_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from coc_shared.tables import create_messaging_tables

revision = "notifications_0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "notifications"


def upgrade() -> None:
    create_messaging_tables(op.get_bind(), SCHEMA)
    op.create_table(
        "notifications",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("template", sa.String(100), nullable=False),
        sa.Column("order_id", sa.String(200)),
        sa.Column("account_id", sa.String(200)),
        sa.Column("recipient_email", sa.String(320)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_index("ix_notifications_order_id", "notifications", ["order_id"], schema=SCHEMA)
    op.create_index("ix_notifications_account_id", "notifications", ["account_id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("ix_notifications_account_id", table_name="notifications", schema=SCHEMA)
    op.drop_index("ix_notifications_order_id", table_name="notifications", schema=SCHEMA)
    op.drop_table("notifications", schema=SCHEMA)
    op.drop_table("inbox", schema=SCHEMA)
    op.drop_table("outbox", schema=SCHEMA)
