"""The invoice archive (schema ``archive``): the invoices and credit notes of erased accounts, with
what the law keeps of them (Code de commerce L123-22: ten years from the end of the financial
year), moved out of the active base on the erasure of the account.

In production the schema belongs to the ``archive`` role, the only one that reads it (an auditor's,
``python -m coc_payments.entrypoints.archive``); payments' role may only INSERT into ``invoices``
(``archive_grants``), so the service's own connections, and whoever holds them, cannot read an
archived name or address back. Its migrations are its own (``archive_migrations``, version table
in ``archive``), run by the owner's one-shot (docker-compose's ``archive-migrate``), and by the
service's ``migrate`` where one role owns everything (tests, ``make run``, SQLite)."""

from __future__ import annotations

import os

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    DateTime,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

ARCHIVE_SCHEMA = "archive"
# its alembic scripts (version table in ``archive``)
ARCHIVE_MIGRATIONS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "archive_migrations"
)
archive_metadata = MetaData(schema=ARCHIVE_SCHEMA)

# One row per archived document, written once (INSERT … ON CONFLICT DO NOTHING: archiving again
# is harmless and needs no right to read). ``data`` and ``pdf`` are the document's plain JSON and
# Factur-X PDF: the digests (``data_sha256`` of the canonical JSON, ``pdf_sha256``) and the chain
# digest are those of the active series, so the archive reader checks them with no key.
invoices = Table(
    "invoices",
    archive_metadata,
    Column("number", String(30), primary_key=True),
    Column("kind", String(20), nullable=False),  # invoice | credit_note
    Column("seq", BigInteger, nullable=False),
    Column("order_id", String(200), nullable=False),
    Column("order_number", String(50), nullable=False),
    Column("corrects_number", String(30)),  # a credit note's invoice
    Column("issue_date", Date, nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("buyer_name", Text, nullable=False),
    Column("billing_address", JSON, nullable=False),
    Column("company_name", Text),
    Column("siren", String(20)),
    Column("vat_number", String(20)),
    Column("currency", String(3), nullable=False),
    Column("net_cents", BigInteger, nullable=False),
    Column("vat_cents", BigInteger, nullable=False),
    Column("total_cents", BigInteger, nullable=False),
    Column("vat_regime", String(20), nullable=False),
    Column("data", JSON, nullable=False),
    Column("pdf", LargeBinary, nullable=False),
    Column("data_sha256", String(64), nullable=False),
    Column("pdf_sha256", String(64), nullable=False),
    Column("previous_sha256", String(64), nullable=False),
    Column("chain_sha256", String(64), nullable=False),
    Column("retained_until", Date, nullable=False),
    Column("archived_at", DateTime(timezone=True), nullable=False),
    Index("ix_archive_invoices_order_id", "order_id"),
    Index("ix_archive_invoices_retained_until", "retained_until"),
)

# What roles other than the owner may do in the schema: the writer (payments) adds documents and
# checks the schema's revision at its own ``migrate``; nothing else (no SELECT of ``invoices``:
# ON CONFLICT DO NOTHING without RETURNING needs none). The reader is the owner itself.
ARCHIVE_GRANTS: dict[str, dict[str, tuple[str, ...]]] = {
    "writer": {"invoices": ("INSERT",), "alembic_version": ("SELECT",)},
}
