"""Tables of the ``orders`` schema (SQLAlchemy Core ``Table`` objects; portable to PostgreSQL and
SQLite). The messaging tables (outbox, inbox), the block allocator's counters (id_blocks) and the
account deactivations are the shared library's definitions."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    func,
    literal_column,
)

from coc_shared.tables import account_deactivations_table, id_blocks_table, messaging_tables

SCHEMA = "orders"
metadata = MetaData(schema=SCHEMA)

order_events = Table(
    "order_events",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("order_id", String(200), nullable=False),
    Column("event_type", String(100), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    # applied | ignored (did not fit the order's state) | recorded (moves nothing) |
    # amount_mismatch (a payment.confirmed not of the order's total) ; the status after it when
    # applied
    Column("outcome", String(20), nullable=True),
    Column("status_after", String(30), nullable=True),
    Index("ix_order_events_order_id", "order_id"),
)

ID = BigInteger().with_variant(Integer, "sqlite")

orders = Table(
    "orders",
    metadata,
    # the order's number (domain.model.order_number), drawn from id_blocks' "order_number" series
    # before anything is written (coc_shared.ids.BlockAllocator)
    Column("seq", ID, primary_key=True, autoincrement=False),
    Column("id", String(36), nullable=False, unique=True),
    Column("status", String(30), nullable=False),
    Column("placed_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("account_id", String(36), nullable=True),
    Column("access_token_sha256", String(64), nullable=True),
    Column("payment_method", String(20), nullable=False),
    Column("brand", String(100), nullable=False),
    Column("vin", String(17), nullable=False),
    Column("first_registration_date", Date, nullable=False),
    Column("vehicle_extra", JSON, nullable=False),
    Column("total_cents", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("vat_rate", String(10), nullable=False),
    Column("vat_cents", Integer, nullable=False),
    # orders_0008: standard | reverse_charge (domain.vat), and VIES's answer at order time
    Column("vat_regime", String(20), nullable=False, server_default="standard"),
    Column("vat_check", String(20), nullable=True),
    Column("documents_required", JSON, nullable=False),
    Column("documents_completed_at", DateTime(timezone=True), nullable=True),
    Column("marketing_consent", Boolean, nullable=False),
    # personal data, kept apart from the rest so that it can be erased
    Column("customer", JSON, nullable=False),
    Column("shipping_address", JSON, nullable=False),
    Column("billing_address", JSON, nullable=True),
    Column("company", JSON, nullable=True),
    # fraud prevention, never shown in answers
    Column("client_ip", String(64), nullable=True),
    Column("user_agent", String(500), nullable=True),
    Index("ix_orders_account_id", "account_id"),
)

# orders_0010: the customer's e-mail address of an order, as the admins' search compares it
ORDER_CUSTOMER_EMAIL = func.lower(orders.c.customer.op("->>")(literal_column("'email'")))
Index("ix_orders_customer_email", ORDER_CUSTOMER_EMAIL)

order_documents = Table(
    "order_documents",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("order_id", String(36), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("content_type", String(50), nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("storage_key", String(200), nullable=False),
    Column("uploaded_at", DateTime(timezone=True), nullable=False),
    # orders_0003: refused by the supplier (documents.rejected_by_supplier); no longer counts
    Column("rejected_at", DateTime(timezone=True), nullable=True),
    # orders_0006: the file was erased (its account deactivated); its links no longer open it
    Column("erased_at", DateTime(timezone=True), nullable=True),
    Index("ix_order_documents_order_id", "order_id"),
)

# orders_0006: every download of a document by a supplier through a signed link
document_downloads = Table(
    "document_downloads",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("document_id", String(36), nullable=False),
    Column("order_id", String(36), nullable=False),
    Column("supplier", String(64), nullable=False),
    Column("downloaded_at", DateTime(timezone=True), nullable=False),
    Column("client_ip", String(64), nullable=False),
    Index("ix_document_downloads_document_id", "document_id"),
)

# orders_0007: the refunds of orders' money that payments announces (refund.requested,
# refund.completed, refund.failed, in whatever order they are handled)
order_refunds = Table(
    "order_refunds",
    metadata,
    Column("refund_id", String(36), primary_key=True),
    Column("order_id", String(36), nullable=False),
    Column("amount_cents", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("reason", String(40), nullable=True),
    Column("credit_note_number", String(20), nullable=True),
    Column("status", String(20), nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=True),
    Column("completed_at", DateTime(timezone=True), nullable=True),
    Index("ix_order_refunds_order_id", "order_id"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    # the account id, or for a guest the SHA-256 of the body (PlaceOrder.idempotency_scope)
    Column("scope", String(64), nullable=False),
    Column("key", String(200), nullable=False),
    Column("request_sha256", String(64), nullable=False),
    Column("order_id", String(36), nullable=False),  # the order the first request placed
    # unused since orders_0005 (it held a guest's access token for retries, which no longer get it)
    Column("secret", LargeBinary, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("scope", "key", name="pk_idempotency_keys"),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),
    Column("profile", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("deactivation_requested_at", DateTime(timezone=True), nullable=True),
    # the owner's last action (log-in, order, change of the profile or the address): two years
    # without one and the account is deactivated, its owner warned before (inactivity_warned_at)
    Column("last_activity_at", DateTime(timezone=True), nullable=False),
    Column("inactivity_warned_at", DateTime(timezone=True), nullable=True),
    Index("ix_accounts_last_activity_at", "last_activity_at"),
)

# orders_0010: an account's address as the admins' search of orders by e-mail compares it
ACCOUNT_EMAIL = func.lower(accounts.c.email)
Index("ix_accounts_email_lower", ACCOUNT_EMAIL)

email_changes = Table(
    "email_changes",
    metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("account_id", String(36), nullable=False),
    Column("new_email", String(320), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("confirmed_at", DateTime(timezone=True), nullable=True),
)

# orders_0010: the internal record of the assistance a customer received (domain.support),
# attached to an order or an account by staff; personal data (category support_records)
support_records = Table(
    "support_records",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("order_id", String(36), nullable=True),
    Column("account_id", String(36), nullable=True),
    Column("channel", String(10), nullable=False),
    Column("summary", Text, nullable=False),
    Column("staff", String(200), nullable=False),
    Column("staff_role", String(20), nullable=False),
    Column("contacted_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Index("ix_support_records_order_id", "order_id"),
    Index("ix_support_records_account_id", "account_id"),
)

# orders_0012: what the stuck-order detector reported, one row per order, state and since, so
# each is reported once (adapters.stuck)
stuck_reports = Table(
    "stuck_reports",
    metadata,
    Column("order_id", String(36), nullable=False),
    Column("state", String(40), nullable=False),
    Column("since", DateTime(timezone=True), nullable=False),
    Column("deadline", DateTime(timezone=True), nullable=False),
    Column("event_id", String(36), nullable=False),  # the order.stuck emitted
    Column("reported_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("order_id", "state", "since", name="pk_stuck_reports"),
)

account_deactivations = account_deactivations_table(metadata, SCHEMA)
id_blocks = id_blocks_table(metadata, SCHEMA)
ORDER_NUMBER_SERIES = "order_number"

outbox, inbox = messaging_tables(metadata, SCHEMA)
