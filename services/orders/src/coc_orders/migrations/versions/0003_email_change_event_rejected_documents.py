"""orders: pending_notifications dropped (account.email_change_requested is emitted instead);
order_documents.rejected_at (documents.rejected_by_supplier)

Revision ID: orders_0003
Revises: orders_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "orders_0003"
down_revision = "orders_0002"
branch_labels = None
depends_on = None

SCHEMA = "orders"
ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    # Rows still waiting there (links of e-mail changes made before this version) were never sent
    # and are not sent now: their owners ask for the change again (a link lives 24 hours anyway).
    op.drop_table("pending_notifications", schema=SCHEMA)
    with op.batch_alter_table("order_documents", schema=SCHEMA) as batch:
        batch.add_column(sa.Column("rejected_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("order_documents", schema=SCHEMA) as batch:
        batch.drop_column("rejected_at")
    op.create_table(
        "pending_notifications",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
