"""Tables of the ``orders`` schema (SQLAlchemy Core; portable to PostgreSQL and SQLite)."""
from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, MetaData, String, Table

from coc_shared.tables import messaging_tables

SCHEMA = "orders"
metadata = MetaData(schema=SCHEMA)

order_events = Table(
    "order_events", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("order_id", String(200), nullable=False),
    Column("event_type", String(100), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Index("ix_order_events_order_id", "order_id"),
)

account_deactivations = Table(
    "account_deactivations", metadata,
    Column("account_id", String(200), primary_key=True),
    Column("event_id", String(36), nullable=False),
    Column("erased_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

outbox, inbox = messaging_tables(metadata, SCHEMA)
