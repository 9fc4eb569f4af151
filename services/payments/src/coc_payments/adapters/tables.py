"""Tables of the ``payments`` schema (SQLAlchemy Core ``Table`` objects; portable to PostgreSQL and
SQLite). The migrations create exactly these (a test compares them).

No column holds card data; a bank label kept for review may hold the payer's own words."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from coc_shared.tables import account_deactivations_table, id_blocks_table, messaging_tables

SCHEMA = "payments"
metadata = MetaData(schema=SCHEMA)

_ID = BigInteger().with_variant(Integer, "sqlite")

payments_due = Table(
    "payments_due",
    metadata,
    Column("order_id", String(200), primary_key=True),
    Column("order_number", String(50), nullable=False),
    Column("method", String(20), nullable=False),
    Column("amount_cents", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(20), nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # payments_0002
    Column("account_id", String(200)),
    Column("access_token_sha256", String(64)),
    Column("reference", String(40)),
    Column("correlation_id", String(200)),
    Column("paid_provider", String(30)),
    Column("paid_transaction_id", String(200)),
    Column("paid_at", DateTime(timezone=True)),
    Index("ix_payments_due_reference", "reference", unique=True),
    Index("ix_payments_due_order_number", "order_number"),
)

# Accounts whose deactivation was recorded (coc_shared.deactivation; payments keeps nothing
# personal).
account_deactivations = account_deactivations_table(metadata, SCHEMA)

# Counters of coc_shared.ids.BlockAllocator: the "callback" series numbers the callbacks
# (payments_0004).
id_blocks = id_blocks_table(metadata, SCHEMA)

# Orders cancelled by the orders service (order.cancelled), kept even before the payment row
# exists, so that an order.placed arriving late still makes a cancelled payment (payments_0003).
order_cancellations = Table(
    "order_cancellations",
    metadata,
    Column("order_id", String(200), primary_key=True),
    Column("event_id", String(36), nullable=False),
    Column("cancelled_by", String(20), nullable=False),
    Column("cancelled_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

# Per-day transaction numbers of the card page (vads_trans_id: 6 digits, unique per shop and day).
card_transaction_counters = Table(
    "card_transaction_counters",
    metadata,
    Column("day", String(8), primary_key=True),
    Column("last", Integer, nullable=False),
)

card_attempts = Table(
    "card_attempts",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("order_id", String(200), nullable=False),
    Column("provider", String(30), nullable=False),
    Column("day", String(8), nullable=False),
    Column("transaction_id", String(6), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("provider", "day", "transaction_id", name="uq_card_attempts_day_transaction"),
    Index("ix_card_attempts_order_id", "order_id"),
)

paypal_orders = Table(
    "paypal_orders",
    metadata,
    Column("paypal_order_id", String(64), primary_key=True),
    Column("order_id", String(200), nullable=False),
    Column("approval_url", Text),
    Column("status", String(30), nullable=False),  # created | approved | captured
    Column("capture_id", String(64)),
    Column("capture_status", String(30)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_paypal_orders_order_id", "order_id", unique=True),
)

# Every callback received (and every imported statement), for audit: raw body (bytes, payments_0005)
# with card numbers masked, only its first KiB when its proof was wrong, headers, the verdict and
# the outcome; written once, with its final verdict. Its id is
# drawn from the "callback" series of id_blocks before it is written (the claim and the
# confirmation name it).
callbacks = Table(
    "callbacks",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("provider", String(30), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("headers", JSON, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column(
        "verdict", String(20), nullable=False
    ),  # accepted | duplicate | rejected | unreadable | unverified
    Column("detail", Text),
    Column("dedupe_key", String(300)),
    Column("order_id", String(200)),
    Column("outcome", String(50)),
    Index("ix_callbacks_order_id", "order_id"),
    Index("ix_callbacks_provider_key", "provider", "dedupe_key"),
)

# One row per provider notification id: the same notification delivered again finds it.
callback_keys = Table(
    "callback_keys",
    metadata,
    Column("provider", String(30), primary_key=True),
    Column("dedupe_key", String(300), primary_key=True),
    Column("callback_id", _ID, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# The payment that confirmed each order: the primary key makes a second confirmation impossible.
confirmations = Table(
    "confirmations",
    metadata,
    Column("order_id", String(200), primary_key=True),
    Column("provider", String(30), nullable=False),
    Column("provider_transaction_id", String(200), nullable=False),
    Column("amount_cents", _ID, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("callback_id", _ID),
    Column("event_id", String(36), nullable=False),
    Column("confirmed_at", DateTime(timezone=True), nullable=False),
)

review_items = Table(
    "review_items",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("status", String(20), nullable=False),  # open | resolved
    Column("reason", String(50), nullable=False),
    Column("order_id", String(200)),
    Column("provider", String(30), nullable=False),
    Column("method", String(20), nullable=False),
    Column("provider_transaction_id", String(200), nullable=False),
    Column("amount_cents", _ID),
    Column("currency", String(3)),
    Column("label", Text),
    Column("callback_id", _ID),
    Index("ix_review_items_status", "status", "created_at"),
)

outbox, inbox = messaging_tables(metadata, SCHEMA)
