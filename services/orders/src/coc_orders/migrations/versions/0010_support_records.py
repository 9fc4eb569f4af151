"""orders: customer support records (support_records), and the index of the customer's e-mail
address on orders (the admins' search of an order by e-mail)

Revision ID: orders_0010
Revises: orders_0009
"""

import sqlalchemy as sa
from alembic import op

revision = "orders_0010"
down_revision = "orders_0009"
branch_labels = None
depends_on = None

SCHEMA = "orders"


def upgrade() -> None:
    op.create_table(
        "support_records",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("order_id", sa.String(36), nullable=True),
        sa.Column("account_id", sa.String(36), nullable=True),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("staff", sa.String(200), nullable=False),
        sa.Column("staff_role", sa.String(20), nullable=False),
        sa.Column("contacted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_index("ix_support_records_order_id", "support_records", ["order_id"], schema=SCHEMA)
    op.create_index(
        "ix_support_records_account_id", "support_records", ["account_id"], schema=SCHEMA
    )
    op.create_index(
        "ix_orders_customer_email",
        "orders",
        [sa.text("lower(customer ->> 'email')")],
        schema=SCHEMA,
    )
    op.create_index("ix_accounts_email_lower", "accounts", [sa.text("lower(email)")], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("ix_accounts_email_lower", table_name="accounts", schema=SCHEMA)
    op.drop_index("ix_orders_customer_email", table_name="orders", schema=SCHEMA)
    op.drop_index("ix_support_records_account_id", table_name="support_records", schema=SCHEMA)
    op.drop_index("ix_support_records_order_id", table_name="support_records", schema=SCHEMA)
    op.drop_table("support_records", schema=SCHEMA)
