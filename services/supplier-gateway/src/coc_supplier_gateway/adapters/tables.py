"""Tables of the ``supplier_gateway`` schema (SQLAlchemy Core; portable to PostgreSQL and
SQLite)."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, DateTime, MetaData, String, Table

from coc_shared.tables import account_deactivations_table, messaging_tables

SCHEMA = "supplier_gateway"
metadata = MetaData(schema=SCHEMA)

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
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

account_deactivations = account_deactivations_table(metadata, SCHEMA)

outbox, inbox = messaging_tables(metadata, SCHEMA)
