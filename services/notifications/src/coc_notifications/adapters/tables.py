"""Tables of the ``notifications`` schema (SQLAlchemy Core; portable to PostgreSQL and SQLite)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, MetaData, String, Table, Text

from coc_shared.tables import messaging_tables

SCHEMA = "notifications"
metadata = MetaData(schema=SCHEMA)

notifications = Table(
    "notifications",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("event_type", String(100), nullable=False),
    Column("template", String(100), nullable=False),
    Column("order_id", String(200)),
    Column("account_id", String(200)),
    Column("recipient_email", String(320)),  # personal data: erased with the account
    Column("status", String(20), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # notifications_0002 -- personal data (holds a one-time token): erased with the account
    Column("confirmation_url", Text),
    Index("ix_notifications_order_id", "order_id"),
    Index("ix_notifications_account_id", "account_id"),
)

outbox, inbox = messaging_tables(metadata, SCHEMA)
