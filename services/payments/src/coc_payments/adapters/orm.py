"""Tables of the ``payments`` schema (SQLAlchemy Core; portable to PostgreSQL and SQLite).

No column holds personal data."""
from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, String, Table

from coc_shared.tables import messaging_tables

SCHEMA = "payments"
metadata = MetaData(schema=SCHEMA)

payments_due = Table(
    "payments_due", metadata,
    Column("order_id", String(200), primary_key=True),
    Column("order_number", String(50), nullable=False),
    Column("method", String(20), nullable=False),
    Column("amount_cents", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(20), nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

account_deactivations = Table(
    "account_deactivations", metadata,
    Column("account_id", String(200), primary_key=True),
    Column("event_id", String(36), nullable=False),
    Column("erased_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

outbox, inbox = messaging_tables(metadata, SCHEMA)
