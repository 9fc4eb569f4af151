"""An erased account's invoices and credit notes moved to the invoice archive (schema ``archive``,
readable by the archive role only), in the erasure handler's transaction:

    the account's orders (from their sales) → any invoice still numbered and not issued? wait
    (retried: the ``invoices`` loop issues it within a second; checked before the erasure drops
    any sale) → each document still in the
    active base: opened (INVOICE_KEY), copied to the archive with its buyer's details, plain
    JSON and PDF and its digests (idempotent: INSERT … ON CONFLICT DO NOTHING) → marked archived
    in the active base (data and PDF emptied; number, amounts, digests and chain stay) → the
    sales of those orders deleted (the invoice kept their buyer details)

After that, nothing payments reads holds the buyer's name or address: the FEC of a period names an
archived document's customer by the order's number, and a refund needing a credit note of an
archived invoice is refused (its buyer details are in the archive only, which payments may not
read: the accountant issues it from the archive). A refund of a duplicate payment (no credit note)
goes on as before.
"""

from __future__ import annotations

from datetime import date, datetime

from coc_shared.values import as_utc

from ..adapters.archive import ArchiveWriter
from ..adapters.billing_repository import BillingDocumentRepository, InvoiceQueue, SaleRepository
from ..config import PaymentsConfig
from ..domain.billing import canonical, chain_digest, invoices_kept_until, sha256
from .invoicing import open_document


class InvoicesNotIssuedYet(RuntimeError):
    """The account has an invoice numbered and not issued yet: the erasure is tried again."""


def archive_row(row: dict, data: dict, pdf: bytes, archived_at: datetime) -> dict:
    """What the archive keeps of one document (the legal mentions as columns, the whole)."""
    buyer = data["buyer"]
    issued_at = as_utc(row["issued_at"])
    return {
        "number": row["number"],
        "kind": row["kind"],
        "seq": row["seq"],
        "order_id": row["order_id"],
        "order_number": data["order_number"],
        "corrects_number": (data.get("corrects") or {}).get("number"),
        "issue_date": date.fromisoformat(data["issue_date"]),
        "issued_at": issued_at,
        "buyer_name": buyer["name"],
        "billing_address": buyer["address"],
        "company_name": buyer.get("company_name"),
        "siren": buyer.get("siren"),
        "vat_number": buyer.get("vat_number"),
        "currency": row["currency"],
        "net_cents": row["net_cents"],
        "vat_cents": row["vat_cents"],
        "total_cents": row["total_cents"],
        "vat_regime": row["vat_regime"],
        "data": data,
        "pdf": pdf,
        "data_sha256": row["data_sha256"],
        "pdf_sha256": row["pdf_sha256"],
        "previous_sha256": row["previous_sha256"],
        "chain_sha256": row["chain_sha256"],
        "retained_until": invoices_kept_until(issued_at),
        "archived_at": archived_at,
    }


def require_issued(ctx, order_ids: list[str]) -> None:
    """Raise ``InvoicesNotIssuedYet`` while one of these orders' invoices is numbered and not
    issued: its sale must not go, and it must be issued before it can be archived (the consumer
    tries the erasure again; the ``invoices`` loop issues it within a second)."""
    if order_ids and InvoiceQueue(ctx).numbered_for(order_ids):
        raise InvoicesNotIssuedYet(f"an invoice of orders {order_ids} is not issued yet")


def archive_account(ctx, config: PaymentsConfig, account_id: str, at: datetime) -> dict[str, int]:
    """Move the account's documents to the archive and drop its sales (``require_issued``
    first); returns counts per category of what left the active base."""
    sales = SaleRepository(ctx)
    order_ids = sales.orders_of(account_id)
    if not order_ids:
        return {}
    require_issued(ctx, order_ids)
    documents = BillingDocumentRepository(ctx)
    rows = documents.to_archive(order_ids)
    archived = []
    if rows:
        key = config.billing()[1]  # NotConfigured without INVOICE_KEY: retried
        for row in rows:
            stored = open_document(row, key)
            archived.append(archive_row(row, stored.data, stored.pdf, at))
        ArchiveWriter(ctx).add(archived)
        for row in rows:
            documents.mark_archived(row["kind"], row["seq"], at)
    return {"documents_archived": len(archived), "invoiced_sales": sales.erase(order_ids)}


def archived_problems(row: dict) -> list[str]:
    """What is wrong with one archived document (for the archive's reader): its data and PDF
    re-hashed against the digests it was chained with, its chain digest recomputed, its columns
    against its data. No key needed: the archive keeps them plain."""
    found = []
    data_sha, pdf_sha = sha256(canonical(row["data"])), sha256(bytes(row["pdf"]))
    if data_sha != row["data_sha256"]:
        found.append("data digest differs")
    if pdf_sha != row["pdf_sha256"]:
        found.append("PDF digest differs")
    if (
        chain_digest(row["previous_sha256"], row["number"], data_sha, pdf_sha)
        != row["chain_sha256"]
    ):
        found.append("chain digest differs")
    data, buyer = row["data"], row["data"].get("buyer") or {}
    if (data.get("number"), data.get("order_id"), buyer.get("name")) != (
        row["number"],
        row["order_id"],
        row["buyer_name"],
    ):
        found.append("number, order or buyer differs from the document")
    return found
