"""supplier_gateway: requests go to the suppliers — what the order says, the personal data the
supplier or shipping needs, the request's life with the supplier, its certificate and shipment
(supplier_requests' new columns); request ids per round, the "to send" rows of the senders, the
history, the replies received

Revision ID: supplier_gateway_0003
Revises: supplier_gateway_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "supplier_gateway_0003"
down_revision = "supplier_gateway_0002"
branch_labels = None
depends_on = None

SCHEMA = "supplier_gateway"
ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
AT = sa.DateTime(timezone=True)

NEW_COLUMNS = [
    sa.Column("order_number", sa.String(40)),
    sa.Column("vin", sa.String(17)),
    sa.Column("maker", sa.String(100)),
    sa.Column("first_registration_date", sa.String(10)),
    sa.Column("vehicle_extra", sa.JSON),
    sa.Column("documents", sa.JSON),
    sa.Column("account_id", sa.String(36)),
    sa.Column("access_token_sha256", sa.String(64)),
    sa.Column("customer_name", sa.JSON),
    sa.Column("shipping_address", sa.JSON),
    sa.Column("personal_erased_at", AT),
    sa.Column("supplier", sa.String(64)),
    sa.Column("request_id", sa.String(36)),
    sa.Column("round", sa.Integer, nullable=False, server_default="0"),
    sa.Column("review_reason", sa.Text),
    sa.Column("sent_at", AT),
    sa.Column("due_at", AT),
    sa.Column("overdue_at", AT),
    sa.Column("accepted_at", AT),
    sa.Column("rejected_at", AT),
    sa.Column("issued_at", AT),
    sa.Column("certificate_id", sa.String(36)),
    sa.Column("certificate_storage_key", sa.String(200)),
    sa.Column("certificate_sha256", sa.String(64)),
    sa.Column("certificate_size", sa.Integer),
    sa.Column("original_posted", sa.Boolean, nullable=False, server_default="false"),
    sa.Column("shipped_at", AT),
    sa.Column("shipped_by", sa.String(20)),
    sa.Column("carrier", sa.String(40)),
    sa.Column("tracking_number", sa.String(40)),
    sa.Column("tracking_url", sa.String(300)),
    sa.Column("next_tracking_at", AT),
    sa.Column("tracking_status", sa.String(300)),
    sa.Column("delivered_at", AT),
]


def upgrade() -> None:
    with op.batch_alter_table("supplier_requests", schema=SCHEMA) as batch:
        for column in NEW_COLUMNS:
            batch.add_column(column)
        batch.create_unique_constraint("uq_supplier_requests_request_id", ["request_id"])
        batch.create_index("ix_supplier_requests_status", ["status"])
        batch.create_index("ix_supplier_requests_account_id", ["account_id"])
    op.create_table(
        "supplier_request_ids",
        sa.Column("request_id", sa.String(36), primary_key=True),
        sa.Column("order_id", sa.String(200), nullable=False),
        sa.Column("round", sa.Integer, nullable=False),
        sa.Column("supplier", sa.String(64), nullable=False),
        sa.Column("created_at", AT, nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "supplier_dispatches",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("order_id", sa.String(200), nullable=False),
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("supplier", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("created_at", AT, nullable=False),
        sa.Column("next_attempt_at", AT, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("sent_at", AT),
        sa.Column("cancelled_at", AT),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_supplier_dispatches_due",
        "supplier_dispatches",
        ["channel", "sent_at", "cancelled_at", "next_attempt_at"],
        schema=SCHEMA,
    )
    op.create_table(
        "supplier_request_history",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("order_id", sa.String(200), nullable=False),
        sa.Column("request_id", sa.String(36)),
        sa.Column("at", AT, nullable=False),
        sa.Column("what", sa.String(60), nullable=False),
        sa.Column("detail", sa.JSON),
        sa.Column("actor", sa.String(200), nullable=False),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_supplier_request_history_order_id",
        "supplier_request_history",
        ["order_id"],
        schema=SCHEMA,
    )
    op.create_table(
        "supplier_replies",
        sa.Column("reply_id", sa.String(100), primary_key=True),
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("order_id", sa.String(200), nullable=False),
        sa.Column("supplier", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("via", sa.String(10), nullable=False),
        sa.Column("received_at", AT, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in (
        "supplier_replies",
        "supplier_request_history",
        "supplier_dispatches",
        "supplier_request_ids",
    ):
        op.drop_table(table, schema=SCHEMA)
    with op.batch_alter_table("supplier_requests", schema=SCHEMA) as batch:
        batch.drop_index("ix_supplier_requests_account_id")
        batch.drop_index("ix_supplier_requests_status")
        batch.drop_constraint("uq_supplier_requests_request_id", type_="unique")
        for column in reversed(NEW_COLUMNS):
            batch.drop_column(column.name)
