"""payments: order access, references and paid state on payments_due; card attempts, PayPal
orders, callback audit and dedupe keys, confirmations, review list

Revision ID: payments_0002
Revises: payments_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "payments_0002"
down_revision = "payments_0001"
branch_labels = None
depends_on = None

SCHEMA = "payments"
ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    for column in (
        sa.Column("account_id", sa.String(200)),
        sa.Column("access_token_sha256", sa.String(64)),
        sa.Column("reference", sa.String(40)),
        sa.Column("correlation_id", sa.String(200)),
        sa.Column("paid_provider", sa.String(30)),
        sa.Column("paid_transaction_id", sa.String(200)),
        sa.Column("paid_at", sa.DateTime(timezone=True)),
    ):
        op.add_column("payments_due", column, schema=SCHEMA)
    op.create_index(
        "ix_payments_due_reference", "payments_due", ["reference"], unique=True, schema=SCHEMA
    )
    op.create_index("ix_payments_due_order_number", "payments_due", ["order_number"], schema=SCHEMA)

    op.create_table(
        "card_transaction_counters",
        sa.Column("day", sa.String(8), primary_key=True),
        sa.Column("last", sa.Integer, nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "card_attempts",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("order_id", sa.String(200), nullable=False),
        sa.Column("provider", sa.String(30), nullable=False),
        sa.Column("day", sa.String(8), nullable=False),
        sa.Column("transaction_id", sa.String(6), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint(
            "provider", "day", "transaction_id", name="uq_card_attempts_day_transaction"
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_card_attempts_order_id", "card_attempts", ["order_id"], schema=SCHEMA)
    op.create_table(
        "paypal_orders",
        sa.Column("paypal_order_id", sa.String(64), primary_key=True),
        sa.Column("order_id", sa.String(200), nullable=False),
        sa.Column("approval_url", sa.Text),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("capture_id", sa.String(64)),
        sa.Column("capture_status", sa.String(30)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_paypal_orders_order_id", "paypal_orders", ["order_id"], unique=True, schema=SCHEMA
    )
    op.create_table(
        "callbacks",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("provider", sa.String(30), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("headers", sa.JSON, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("verdict", sa.String(20), nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("dedupe_key", sa.String(300)),
        sa.Column("order_id", sa.String(200)),
        sa.Column("outcome", sa.String(50)),
        schema=SCHEMA,
    )
    op.create_index("ix_callbacks_order_id", "callbacks", ["order_id"], schema=SCHEMA)
    op.create_index(
        "ix_callbacks_provider_key", "callbacks", ["provider", "dedupe_key"], schema=SCHEMA
    )
    op.create_table(
        "callback_keys",
        sa.Column("provider", sa.String(30), primary_key=True),
        sa.Column("dedupe_key", sa.String(300), primary_key=True),
        sa.Column("callback_id", ID, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "confirmations",
        sa.Column("order_id", sa.String(200), primary_key=True),
        sa.Column("provider", sa.String(30), nullable=False),
        sa.Column("provider_transaction_id", sa.String(200), nullable=False),
        sa.Column("amount_cents", ID, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("callback_id", ID),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "review_items",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(50), nullable=False),
        sa.Column("order_id", sa.String(200)),
        sa.Column("provider", sa.String(30), nullable=False),
        sa.Column("method", sa.String(20), nullable=False),
        sa.Column("provider_transaction_id", sa.String(200), nullable=False),
        sa.Column("amount_cents", ID),
        sa.Column("currency", sa.String(3)),
        sa.Column("label", sa.Text),
        sa.Column("callback_id", ID),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_review_items_status", "review_items", ["status", "created_at"], schema=SCHEMA
    )


def downgrade() -> None:
    for table in (
        "review_items",
        "confirmations",
        "callback_keys",
        "callbacks",
        "paypal_orders",
        "card_attempts",
        "card_transaction_counters",
    ):
        op.drop_table(table, schema=SCHEMA)
    op.drop_index("ix_payments_due_order_number", "payments_due", schema=SCHEMA)
    op.drop_index("ix_payments_due_reference", "payments_due", schema=SCHEMA)
    for column in (
        "paid_at",
        "paid_transaction_id",
        "paid_provider",
        "correlation_id",
        "reference",
        "access_token_sha256",
        "account_id",
    ):
        op.drop_column("payments_due", column, schema=SCHEMA)
