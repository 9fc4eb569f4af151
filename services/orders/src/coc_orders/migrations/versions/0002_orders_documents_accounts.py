"""orders: orders, documents, idempotency keys, accounts, e-mail changes; outcome of order events

Revision ID: orders_0002
Revises: orders_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "orders_0002"
down_revision = "orders_0001"
branch_labels = None
depends_on = None

SCHEMA = "orders"
ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("order_events", schema=SCHEMA) as batch:
        batch.add_column(sa.Column("outcome", sa.String(20), nullable=True))
        batch.add_column(sa.Column("status_after", sa.String(30), nullable=True))
    op.create_table(
        "orders",
        sa.Column("seq", ID, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("account_id", sa.String(36), nullable=True),
        sa.Column("access_token_sha256", sa.String(64), nullable=True),
        sa.Column("payment_method", sa.String(20), nullable=False),
        sa.Column("brand", sa.String(100), nullable=False),
        sa.Column("vin", sa.String(17), nullable=False),
        sa.Column("first_registration_date", sa.Date, nullable=False),
        sa.Column("vehicle_extra", sa.JSON, nullable=False),
        sa.Column("total_cents", sa.Integer, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("vat_rate", sa.String(10), nullable=False),
        sa.Column("vat_cents", sa.Integer, nullable=False),
        sa.Column("documents_required", sa.JSON, nullable=False),
        sa.Column("documents_completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("marketing_consent", sa.Boolean, nullable=False),
        sa.Column("customer", sa.JSON, nullable=False),
        sa.Column("shipping_address", sa.JSON, nullable=False),
        sa.Column("billing_address", sa.JSON, nullable=True),
        sa.Column("company", sa.JSON, nullable=True),
        sa.Column("client_ip", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.String(500), nullable=True),
        schema=SCHEMA,
    )
    op.create_index("ix_orders_account_id", "orders", ["account_id"], schema=SCHEMA)
    op.create_table(
        "order_documents",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("order_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("content_type", sa.String(50), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("storage_key", sa.String(200), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_index("ix_order_documents_order_id", "order_documents", ["order_id"], schema=SCHEMA)
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(36), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("response", sa.JSON, nullable=False),
        sa.Column("secret", sa.LargeBinary, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name="pk_idempotency_keys"),
        schema=SCHEMA,
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("profile", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deactivation_requested_at", sa.DateTime(timezone=True), nullable=True),
        schema=SCHEMA,
    )
    op.create_table(
        "email_changes",
        sa.Column("token_sha256", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("new_email", sa.String(320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        schema=SCHEMA,
    )
    op.create_table(
        "pending_notifications",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("account_id", sa.String(36), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("pending_notifications", schema=SCHEMA)
    op.drop_table("email_changes", schema=SCHEMA)
    op.drop_table("accounts", schema=SCHEMA)
    op.drop_table("idempotency_keys", schema=SCHEMA)
    op.drop_index("ix_order_documents_order_id", table_name="order_documents", schema=SCHEMA)
    op.drop_table("order_documents", schema=SCHEMA)
    op.drop_index("ix_orders_account_id", table_name="orders", schema=SCHEMA)
    op.drop_table("orders", schema=SCHEMA)
    with op.batch_alter_table("order_events", schema=SCHEMA) as batch:
        batch.drop_column("status_after")
        batch.drop_column("outcome")
