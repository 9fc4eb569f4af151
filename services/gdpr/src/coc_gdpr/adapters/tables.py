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

outbox, inbox = messaging_tables(metadata, SCHEMA)
