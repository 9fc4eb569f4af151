"""Tables of the ``supplier_gateway`` schema (SQLAlchemy Core; portable to PostgreSQL and
SQLite)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from coc_shared.tables import account_deactivations_table, messaging_tables

SCHEMA = "supplier_gateway"
metadata = MetaData(schema=SCHEMA)
ID = BigInteger().with_variant(Integer, "sqlite")
AT = DateTime(timezone=True)

# One row per order: what the order says, where its request to the supplier stands (0003: the
# columns after documents_completed's).
supplier_requests = Table(
    "supplier_requests",
    metadata,
    Column("order_id", String(200), primary_key=True),
    Column("brand", String(100)),
    Column("order_placed", Boolean, nullable=False),
    Column("paid", Boolean, nullable=False),
    Column("documents_completed", Boolean, nullable=False),
    Column("document_ids", JSON, nullable=False),
    Column("status", String(20), nullable=False),
    Column("created_at", AT, nullable=False),
    Column("updated_at", AT, nullable=False),
    Column("order_number", String(40)),
    Column("vin", String(17)),
    Column("maker", String(100)),
    Column("first_registration_date", String(10)),
    Column("vehicle_extra", JSON),
    Column("documents", JSON),
    Column("account_id", String(36)),
    Column("access_token_sha256", String(64)),
    # personal data: only what the supplier or shipping needs; erased on account.deactivated
    Column("customer_name", JSON),
    Column("shipping_address", JSON),
    Column("personal_erased_at", AT),
    Column("supplier", String(64)),
    Column("request_id", String(36), unique=True),
    Column("round", Integer, nullable=False, server_default="0"),
    Column("review_reason", Text),
    Column("sent_at", AT),
    Column("due_at", AT),
    Column("overdue_at", AT),
    Column("accepted_at", AT),
    Column("rejected_at", AT),
    Column("issued_at", AT),
    Column("certificate_id", String(36)),
    Column("certificate_storage_key", String(200)),
    Column("certificate_sha256", String(64)),
    Column("certificate_size", Integer),
    Column("original_posted", Boolean, nullable=False, server_default="false"),
    Column("shipped_at", AT),
    Column("shipped_by", String(20)),
    Column("carrier", String(40)),
    Column("tracking_number", String(40)),
    Column("tracking_url", String(300)),
    Column("next_tracking_at", AT),
    Column("tracking_status", String(300)),
    Column("delivered_at", AT),
    Index("ix_supplier_requests_status", "status"),
    Index("ix_supplier_requests_account_id", "account_id"),
)

# Every request id ever given to an order (one per round: a new one after a rejection), so that a
# reply to an older round is known as such.
supplier_request_ids = Table(
    "supplier_request_ids",
    metadata,
    Column("request_id", String(36), primary_key=True),
    Column("order_id", String(200), nullable=False),
    Column("round", Integer, nullable=False),
    Column("supplier", String(64), nullable=False),
    Column("created_at", AT, nullable=False),
)

# What is to be sent to a supplier ("to send" rows, written with the state change that makes a
# request ready; the senders claim them with SKIP LOCKED, send, and mark them sent).
supplier_dispatches = Table(
    "supplier_dispatches",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("order_id", String(200), nullable=False),
    Column("request_id", String(36), nullable=False),
    Column("supplier", String(64), nullable=False),
    Column("channel", String(10), nullable=False),
    Column("kind", String(10), nullable=False),  # request | resend
    Column("created_at", AT, nullable=False),
    Column("next_attempt_at", AT, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
    Column("sent_at", AT),
    Column("cancelled_at", AT),
    Index("ix_supplier_dispatches_due", "channel", "sent_at", "cancelled_at", "next_attempt_at"),
)

# The request's history, for staff (what happened, when, by whom).
supplier_request_history = Table(
    "supplier_request_history",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("order_id", String(200), nullable=False),
    Column("request_id", String(36)),
    Column("at", AT, nullable=False),
    Column("what", String(60), nullable=False),
    Column("detail", JSON),
    Column("actor", String(200), nullable=False),
    Index("ix_supplier_request_history_order_id", "order_id"),
)

# Replies received, by id: a reply delivered twice (queue redelivery, HTTP retry) has one effect.
supplier_replies = Table(
    "supplier_replies",
    metadata,
    Column("reply_id", String(100), primary_key=True),
    Column("request_id", String(36), nullable=False),
    Column("order_id", String(200), nullable=False),
    Column("supplier", String(64), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("via", String(10), nullable=False),  # amqp | http | staff
    Column("received_at", AT, nullable=False),
    Column("outcome", String(20), nullable=False),
)

account_deactivations = account_deactivations_table(metadata, SCHEMA)

outbox, inbox = messaging_tables(metadata, SCHEMA)
