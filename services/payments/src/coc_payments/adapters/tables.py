"""Tables of the ``payments`` schema (SQLAlchemy Core ``Table`` objects; portable to PostgreSQL and
SQLite). The migrations create exactly these (a test compares them).

No column holds card data; a bank label kept for review may hold the payer's own words."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
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

# ------------------------------------------------------------------ billing (payments_0006)
# What an invoice needs of each order, from order.placed (domain.billing.Sale as JSON: the buyer's
# name, billing address and company, the vehicle, the amounts and the VAT regime; no e-mail or
# phone). Deleted for an erased account unless an invoice was issued (the invoice keeps its own).
sales = Table(
    "sales",
    metadata,
    Column("order_id", String(200), primary_key=True),
    Column("account_id", String(200)),
    Column("sale", JSON, nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_sales_account_id", "account_id"),
)

# Issued invoices and credit notes: written once, never changed (a trigger refuses UPDATE and
# DELETE, but for one change: "moved to the invoice archive", on the erasure of the buyer's account,
# sets ``archived_at`` and empties ``data`` and ``pdf``, which then live in archive.invoices; the
# digests and the chain stay, payments_0008). ``data`` and ``pdf`` are encrypted (AES-256-GCM,
# INVOICE_KEY, the number as associated data); the digests are of their plain bytes, and
# ``chain_sha256`` chains each document of a series to the one before
# (domain.billing.chain_digest). The plain columns repeat what the accounting export and the lists
# need, and are checked against the data by verify-invoices.
billing_documents = Table(
    "billing_documents",
    metadata,
    Column("kind", String(20), primary_key=True),  # invoice | credit_note
    Column("seq", BigInteger, primary_key=True),
    Column("number", String(30), nullable=False, unique=True),
    Column("order_id", String(200), nullable=False),
    # the order's id for an invoice, NULL for a credit note: one invoice per order
    Column("invoice_of_order", String(200), unique=True),
    Column("refund_id", String(36)),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("net_cents", BigInteger, nullable=False),
    Column("vat_cents", BigInteger, nullable=False),
    Column("total_cents", BigInteger, nullable=False),
    Column("vat_regime", String(20), nullable=False),
    Column("provider", String(30), nullable=False),
    Column("data", LargeBinary),  # NULL once archived
    Column("pdf", LargeBinary),  # NULL once archived
    Column("data_sha256", String(64), nullable=False),
    Column("pdf_sha256", String(64), nullable=False),
    Column("previous_sha256", String(64), nullable=False),
    Column("chain_sha256", String(64), nullable=False),
    Column("archived_at", DateTime(timezone=True)),  # moved to archive.invoices (payments_0008)
    Index("ix_billing_documents_order_id", "order_id"),
    Index("ix_billing_documents_issued_at", "issued_at"),
)

# The gap-free counters: one row per series, locked and moved in the transaction that writes the
# document, with the chain digest of the last document.
document_counters = Table(
    "document_counters",
    metadata,
    Column("series", String(20), primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
    Column("last_chain_sha256", String(64), nullable=False),
)

# Invoices numbered and not rendered yet (payments_0007): the payment.confirmed handler takes the
# number under the counter's lock and records the invoice's data here (JSON, as ``sales`` keeps the
# sale it is made of: any worker's loop can issue it, encrypted with the document); the worker's
# ``invoices`` loop renders them in number order, writes each to billing_documents (chained,
# encrypted) and deletes its row, in one transaction per batch, usually within a second. An order
# is here or in billing_documents, never both.
invoices_to_issue = Table(
    "invoices_to_issue",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("number", String(30), nullable=False, unique=True),
    Column("order_id", String(200), nullable=False, unique=True),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("provider", String(30), nullable=False),
    Column("data", JSON, nullable=False),
    Column("correlation_id", String(200), nullable=False),  # payment.confirmed's: the order's
)

# Refunds approved by staff, one per payment refunded (a provider's transaction).
refunds = Table(
    "refunds",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("order_id", String(200), nullable=False),
    Column("reason", String(40), nullable=False),
    Column("provider", String(30), nullable=False),
    Column("method", String(20), nullable=False),
    Column("provider_transaction_id", String(200), nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(20), nullable=False),  # requested | file_ready | completed | failed
    Column("credit_note_number", String(30)),
    Column("approved_by", String(200), nullable=False),
    Column("approved_role", String(20), nullable=False),
    Column("note", Text, nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("completed_at", DateTime(timezone=True)),
    Column("provider_refund_id", String(200)),
    Column("failure", Text),
    Column("attempts", Integer, nullable=False),
    Column("sepa_file", LargeBinary),  # encrypted pain.001 (the customer's IBAN)
    Column("business", Boolean, nullable=False),
    UniqueConstraint("provider", "provider_transaction_id", name="uq_refunds_payment"),
    Index("ix_refunds_order_id", "order_id"),
    Index("ix_refunds_status", "status"),
)

# The VIES check of each business order's VAT number (coc_shared.vies): recorded pending from
# order.placed, checked by the worker's vat-checks loop, tried again while VIES is unavailable
# (it never holds an order or its invoice back); staff read them (GET /v1/staff/vat-checks).
vat_checks = Table(
    "vat_checks",
    metadata,
    Column("order_id", String(200), primary_key=True),
    Column("vat_number", String(20), nullable=False),
    Column("status", String(20), nullable=False),  # pending|valid|invalid|unavailable|malformed
    Column("name", Text),
    Column("address", Text),
    Column("detail", Text),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("checked_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_vat_checks_due", "status", "next_attempt_at"),
)

outbox, inbox = messaging_tables(metadata, SCHEMA)
