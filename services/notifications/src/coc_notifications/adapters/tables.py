"""Tables of the ``notifications`` schema (SQLAlchemy Core; portable to PostgreSQL and SQLite)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from coc_shared.tables import account_deactivations_table, messaging_tables

SCHEMA = "notifications"
metadata = MetaData(schema=SCHEMA)

# One row per mail to send (event, template, recipient): recorded by a handler, sent by the
# sender loop. Personal columns (to_address, to_name, secret_url) and the event's data are
# emptied once the mail is sent or dropped; a sent mail keeps the hash and the masked form of its
# address, the server's answer and its Message-ID.
mails = Table(
    "mails",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("source_id", String(36), nullable=False),  # event id, or campaign id
    Column("event_type", String(100), nullable=False),
    Column("template", String(100), nullable=False),
    Column("recipient_key", String(250), nullable=False),
    Column("kind", String(20), nullable=False),  # transactional | marketing
    Column("locale", String(10), nullable=False),
    Column("order_id", String(200)),
    Column("account_id", String(200)),
    Column("campaign_id", String(36)),
    Column("contact_id", String(36)),
    Column("to_address", String(320)),  # personal, until sent
    Column("to_name", String(200)),  # personal, until sent
    Column("secret_url", Text),  # personal (a one-time token), until sent
    Column("data", JSON),  # the event's data, until sent
    Column("status", String(20), nullable=False),  # pending | sent | failed | dropped
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("last_answer", Text),  # the SMTP server's answer (or why it waits / was dropped)
    Column("message_id", String(300)),
    Column("address_hash", String(64)),
    Column("address_masked", String(100)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    UniqueConstraint("source_id", "template", "recipient_key", name="uq_mails_source_template"),
    Index("ix_mails_due", "status", "next_attempt_at"),
    Index("ix_mails_order_id", "order_id"),
    Index("ix_mails_account_id", "account_id"),
)

# What later mails of an order need, from order.placed: the recipient (personal: erased with the
# account, or after the retention once the order's story ended) and a few facts of the order.
order_recipients = Table(
    "order_recipients",
    metadata,
    Column("order_id", String(200), primary_key=True),
    Column("order_number", String(100)),
    Column("account_id", String(200)),
    Column("payment_method", String(20)),
    Column("total_cents", BigInteger),
    Column("currency", String(3)),
    Column("documents_required", JSON),
    Column("email", String(320)),  # personal
    Column("first_name", String(200)),  # personal
    Column("erase_after", DateTime(timezone=True)),
    Column("erased_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_order_recipients_account_id", "account_id"),
)

# Marketing contacts: consent given (and when), withdrawn (and when). A withdrawn contact keeps its
# hash only, so that the withdrawal holds.
contacts = Table(
    "contacts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("address_hash", String(64), nullable=False, unique=True),
    Column("email", String(320)),  # personal: erased on withdrawal and with the account
    Column("account_id", String(200)),
    Column("consented_at", DateTime(timezone=True)),
    Column("withdrawn_at", DateTime(timezone=True)),
    Column("source_event_id", String(36)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_contacts_account_id", "account_id"),
)

campaigns = Table(
    "campaigns",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("template", String(100), nullable=False),
    Column("per_second", Float, nullable=False),
    Column("recipients", Integer, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

account_deactivations = account_deactivations_table(metadata, SCHEMA)
outbox, inbox = messaging_tables(metadata, SCHEMA)
