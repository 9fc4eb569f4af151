"""Tables of the ``gdpr`` schema (SQLAlchemy Core; portable to PostgreSQL and SQLite)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, MetaData, String, Table

from coc_shared.tables import messaging_tables

SCHEMA = "gdpr"
metadata = MetaData(schema=SCHEMA)

deactivation_requests = Table(
    "deactivation_requests",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("account_id", String(200), nullable=False),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("due_by", DateTime(timezone=True), nullable=False),
    Column("status", String(20), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Index("ix_deactivation_requests_account_id", "account_id"),
)

# Withdrawals of consent to marketing (marketing.unsubscribed), until the consent ledger exists:
# who (the account, or the SHA-256 of the address for a guest), for what, when, from which event.
marketing_consents = Table(
    "marketing_consents",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("account_id", String(200)),
    Column("address_sha256", String(64)),
    Column("purpose", String(50), nullable=False),
    Column("status", String(20), nullable=False),  # withdrawn
    Column("changed_at", DateTime(timezone=True), nullable=False),
    Column("source", String(50), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Index("ix_marketing_consents_account_id", "account_id"),
    Index("ix_marketing_consents_address_sha256", "address_sha256"),
)

outbox, inbox = messaging_tables(metadata, SCHEMA)
