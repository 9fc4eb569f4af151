"""Reading and writing the billing values through a unit of work (a use case's ``UnitOfWork`` or a
handler's ``HandlerContext``): the sales, the issued documents, the gap-free counters, the refunds
and the VAT number checks.

The counter of a series is moved with ``UPDATE … RETURNING`` at once: the row stays locked until
the transaction ends, so documents of one series are numbered one transaction after the other,
and a transaction rolled back gives its number back (no gap)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, bindparam, exists, func, select, update

from coc_shared.envelope import utcnow
from coc_shared.values import as_utc

from ..domain.billing import GENESIS, Amounts, BillingDocument, Buyer, Sale
from . import tables

_PLAIN = [
    c
    for c in tables.billing_documents.c
    if c.key not in ("data", "pdf", "previous_sha256", "data_sha256", "pdf_sha256", "archived_at")
]


def _sale_json(sale: Sale) -> dict:
    return {
        "order_id": sale.order_id,
        "order_number": sale.order_number,
        "brand": sale.brand,
        "vin": sale.vin,
        "amounts": sale.amounts.as_dict(),
        "buyer": sale.buyer.as_dict(),
        "account_id": sale.account_id,
    }


def _sale(doc: dict) -> Sale:
    a = doc["amounts"]
    return Sale(
        order_id=doc["order_id"],
        order_number=doc["order_number"],
        brand=doc["brand"],
        vin=doc["vin"],
        amounts=Amounts(
            a["net_cents"],
            a["vat_cents"],
            a["total_cents"],
            a["currency"],
            a["vat_rate"],
            a["vat_regime"],
        ),
        buyer=Buyer.from_dict(doc["buyer"]),
        account_id=doc.get("account_id"),
    )


class SaleRepository:
    def __init__(self, uow):
        self.uow = uow

    def add(self, sale: Sale, event_id: str) -> bool:
        t = tables.sales
        if self.uow.execute(select(t.c.order_id).where(t.c.order_id == sale.order_id)).first():
            return False
        self.uow.add(
            t,
            {
                "order_id": sale.order_id,
                "account_id": sale.account_id,
                "sale": _sale_json(sale),
                "event_id": event_id,
                "created_at": utcnow(),
            },
        )
        return True

    def get(self, order_id: str) -> Sale | None:
        t = tables.sales
        row = self.uow.execute(select(t.c.sale).where(t.c.order_id == order_id)).first()
        return _sale(row.sale) if row else None

    def erase_uninvoiced(self, account_id: str) -> int:
        """The account's sales that no invoice needs any more (an invoice keeps its own copy);
        returns how many."""
        t, d = tables.sales, tables.billing_documents
        where = (
            t.c.account_id == account_id,
            t.c.order_id.not_in(select(d.c.order_id).where(d.c.kind == "invoice")),
        )
        count = self.uow.execute(select(func.count()).select_from(t).where(*where)).scalar_one()
        self.uow.remove(t, *where)
        return count

    def orders_of(self, account_id: str) -> list[str]:
        """The ids of the account's orders that payments recorded a sale of."""
        t = tables.sales
        query = select(t.c.order_id).where(t.c.account_id == account_id)
        return list(self.uow.execute(query).scalars())

    def erase(self, order_ids: list[str]) -> int:
        """The sales of these orders gone (their invoices are archived); returns how many."""
        t = tables.sales
        where = t.c.order_id.in_(order_ids)
        count = self.uow.execute(select(func.count()).select_from(t).where(where)).scalar_one()
        if count:
            self.uow.remove(t, where)
        return count

    def last_invoice_issued_at(self, account_id: str):
        """When the account's last invoice was issued (None: it has none)."""
        t, d = tables.sales, tables.billing_documents
        return self.uow.execute(
            select(func.max(d.c.issued_at)).where(
                d.c.kind == "invoice",
                d.c.order_id.in_(select(t.c.order_id).where(t.c.account_id == account_id)),
            )
        ).scalar_one()


_INCREMENT = (
    update(tables.document_counters)
    .where(tables.document_counters.c.series == bindparam("counter_series"))
    .values(last_seq=tables.document_counters.c.last_seq + 1)
    .returning(tables.document_counters.c.last_seq, tables.document_counters.c.last_chain_sha256)
)


class DocumentCounter:
    """The gap-free counter of a series, with the chain digest of its last document."""

    def __init__(self, uow):
        self.uow = uow

    def next(self, series: str) -> tuple[int, str]:
        """(the next number, the previous document's chain digest); the row stays locked."""
        row = self.uow.execute(_INCREMENT, {"counter_series": series}).first()
        if row is None:
            self.uow.claim(
                tables.document_counters,
                {"series": series, "last_seq": 0, "last_chain_sha256": GENESIS},
            )
            row = self.uow.execute(_INCREMENT, {"counter_series": series}).first()
        return row.last_seq, row.last_chain_sha256

    def advance(self, series: str, chain_sha256: str) -> None:
        t = tables.document_counters
        self.uow.change(t, {"last_chain_sha256": chain_sha256}, t.c.series == series)

    def all(self) -> dict[str, tuple[int, str]]:
        t = tables.document_counters
        return {
            r.series: (r.last_seq, r.last_chain_sha256) for r in self.uow.execute(select(t)).all()
        }


class InvoiceQueue:
    """Invoices numbered (in the consumer's transaction) and not rendered yet: the ``invoices``
    loop claims them in number order, and writes each to billing_documents while deleting its row
    in the same transaction."""

    def __init__(self, uow):
        self.uow = uow

    def has_invoice(self, order_id: str) -> bool:
        """The order's invoice is numbered (here) or issued (billing_documents), read in one
        statement: the loop moves a row from one table to the other in one commit, so no moment
        shows it in neither."""
        q, d = tables.invoices_to_issue, tables.billing_documents
        query = select(
            exists().where(q.c.order_id == order_id)
            | exists().where(d.c.invoice_of_order == order_id)
        )
        return bool(self.uow.execute(query).scalar())

    def add(self, doc: BillingDocument, provider: str, correlation_id: str) -> None:
        """The data as JSON, as the order's sale is: any worker's loop can issue it (and encrypt
        it with the document), and it is kept here only until then."""
        self.uow.add(
            tables.invoices_to_issue,
            {
                "seq": doc.seq,
                "number": doc.number,
                "order_id": doc.order_id,
                "issued_at": doc.issued_at,
                "provider": provider,
                "data": doc.data,
                "correlation_id": correlation_id,
            },
        )

    def claim(self, limit: int) -> list[dict]:
        """The first ``limit`` in number order, locked until the transaction ends; rows another
        loop holds are skipped (``FOR UPDATE SKIP LOCKED``)."""
        t = tables.invoices_to_issue
        query = select(t).order_by(t.c.seq).limit(limit).with_for_update(skip_locked=True)
        return [dict(r._mapping) for r in self.uow.execute(query).all()]

    def remove(self, seqs: list[int]) -> None:
        t = tables.invoices_to_issue
        self.uow.remove(t, t.c.seq.in_(seqs))

    def numbered_for(self, order_ids: list[str]) -> int:
        """How many of these orders' invoices are numbered and not issued yet."""
        t = tables.invoices_to_issue
        query = select(func.count()).select_from(t).where(t.c.order_id.in_(order_ids))
        return self.uow.execute(query).scalar_one()

    def numbered(self) -> list[int]:
        """The numbers (seq) waiting, in order."""
        t = tables.invoices_to_issue
        return list(self.uow.execute(select(t.c.seq).order_by(t.c.seq)).scalars())

    def count(self) -> int:
        t = tables.invoices_to_issue
        return self.uow.execute(select(func.count()).select_from(t)).scalar_one()


class BillingDocumentRepository:
    def __init__(self, uow):
        self.uow = uow

    def last_of(self, kind: str) -> tuple[int, str]:
        """(number, chain digest) of the series' last document; (0, GENESIS) for none."""
        t = tables.billing_documents
        row = self.uow.execute(
            select(t.c.seq, t.c.chain_sha256)
            .where(t.c.kind == kind)
            .order_by(t.c.seq.desc())
            .limit(1)
        ).first()
        return (row.seq, row.chain_sha256) if row else (0, GENESIS)

    def add(self, doc: BillingDocument, cipher, provider: str) -> None:
        amounts = doc.amounts
        self.uow.add(
            tables.billing_documents,
            {
                "kind": doc.kind,
                "seq": doc.seq,
                "number": doc.number,
                "order_id": doc.order_id,
                "invoice_of_order": doc.order_id if doc.kind == "invoice" else None,
                "refund_id": doc.refund_id,
                "issued_at": doc.issued_at,
                "currency": amounts["currency"],
                "net_cents": amounts["net_cents"],
                "vat_cents": amounts["vat_cents"],
                "total_cents": amounts["total_cents"],
                "vat_regime": amounts["vat_regime"],
                "provider": provider,
                "data": cipher.encrypt(_canonical(doc.data), doc.number),
                "pdf": cipher.encrypt(doc.pdf, doc.number),
                "data_sha256": doc.data_sha256,
                "pdf_sha256": doc.pdf_sha256,
                "previous_sha256": doc.previous_sha256,
                "chain_sha256": doc.chain_sha256,
            },
        )

    def invoice_of(self, order_id: str) -> dict | None:
        t = tables.billing_documents
        row = self.uow.execute(select(t).where(t.c.invoice_of_order == order_id)).first()
        return dict(row._mapping) if row else None

    def get(self, number: str) -> dict | None:
        t = tables.billing_documents
        row = self.uow.execute(select(t).where(t.c.number == number)).first()
        return dict(row._mapping) if row else None

    def listed(self, order_id: str | None = None, limit: int = 200) -> list[dict]:
        """Documents without their blobs, oldest first (an order's, or the latest ``limit``)."""
        t = tables.billing_documents
        query = select(*_PLAIN)
        if order_id is not None:
            query = query.where(t.c.order_id == order_id).order_by(t.c.issued_at, t.c.kind)
        else:
            query = query.order_by(t.c.issued_at.desc()).limit(limit)
        return [_plain(r) for r in self.uow.execute(query).all()]

    def series(self, kind: str, after_seq: int = 0, limit: int = 500) -> list[dict]:
        t = tables.billing_documents
        query = (
            select(t).where(t.c.kind == kind, t.c.seq > after_seq).order_by(t.c.seq).limit(limit)
        )
        return [dict(r._mapping) for r in self.uow.execute(query).all()]

    def to_archive(self, order_ids: list[str]) -> list[dict]:
        """These orders' documents still in the active base (not archived), in number order."""
        t = tables.billing_documents
        query = (
            select(t)
            .where(t.c.order_id.in_(order_ids), t.c.archived_at.is_(None))
            .order_by(t.c.kind, t.c.seq)
        )
        return [dict(r._mapping) for r in self.uow.execute(query).all()]

    def mark_archived(self, kind: str, seq: int, at: datetime) -> None:
        """The one change the table allows: the document moved to the archive (its data and PDF
        gone from here; number, amounts, digests and chain stay)."""
        t = tables.billing_documents
        self.uow.change(
            t, {"data": None, "pdf": None, "archived_at": at}, t.c.kind == kind, t.c.seq == seq
        )

    def issued_between(self, start: datetime, end: datetime) -> list[dict]:
        t = tables.billing_documents
        query = (
            select(t)
            .where(and_(t.c.issued_at >= start, t.c.issued_at < end))
            .order_by(t.c.issued_at, t.c.kind, t.c.seq)
        )
        return [dict(r._mapping) for r in self.uow.execute(query).all()]


def _plain(row) -> dict:
    out = dict(row._mapping)
    out["issued_at"] = as_utc(out["issued_at"])
    return out


def _canonical(data: dict) -> bytes:
    from ..domain.billing import canonical

    return canonical(data)


class RefundRepository:
    def __init__(self, uow):
        self.uow = uow

    def add(self, row: dict) -> None:
        self.uow.add(tables.refunds, row)

    def get(self, refund_id: str, lock: bool = False) -> dict | None:
        t = tables.refunds
        query = select(t).where(t.c.id == refund_id)
        row = self.uow.execute(query.with_for_update() if lock else query).first()
        return dict(row._mapping) if row else None

    def of_payment(self, provider: str, transaction_id: str) -> dict | None:
        t = tables.refunds
        row = self.uow.execute(
            select(t).where(t.c.provider == provider, t.c.provider_transaction_id == transaction_id)
        ).first()
        return dict(row._mapping) if row else None

    def listed(self, order_id: str | None = None, status: str | None = None) -> list[dict]:
        t = tables.refunds
        query = select(*[c for c in t.c if c.key != "sepa_file"]).order_by(t.c.requested_at.desc())
        if order_id:
            query = query.where(t.c.order_id == order_id)
        if status:
            query = query.where(t.c.status == status)
        return [dict(r._mapping) for r in self.uow.execute(query.limit(500)).all()]

    def in_period(self, start: datetime, end: datetime) -> list[dict]:
        t = tables.refunds
        query = (
            select(t)
            .where(t.c.status == "completed", t.c.completed_at >= start, t.c.completed_at < end)
            .order_by(t.c.completed_at)
        )
        return [dict(r._mapping) for r in self.uow.execute(query).all()]

    def update(self, refund_id: str, **values) -> None:
        t = tables.refunds
        self.uow.change(t, values, t.c.id == refund_id)


class LedgerRepository:
    """The money movements of a period for the accounting export: payments confirmed, duplicate
    payments received (on the review list), refunds completed."""

    def __init__(self, uow):
        self.uow = uow

    def payments_received(self, start: datetime, end: datetime) -> list[dict]:
        c, d = tables.confirmations, tables.payments_due
        query = (
            select(
                c.c.order_id,
                c.c.provider,
                c.c.provider_transaction_id,
                c.c.amount_cents,
                c.c.confirmed_at,
                d.c.order_number,
            )
            .join(d, d.c.order_id == c.c.order_id)
            .where(c.c.confirmed_at >= start, c.c.confirmed_at < end)
        )
        return [dict(r._mapping) for r in self.uow.execute(query).all()]

    def duplicates_received(self, start: datetime, end: datetime, reasons) -> list[dict]:
        r, d = tables.review_items, tables.payments_due
        query = (
            select(
                r.c.order_id,
                r.c.provider,
                r.c.provider_transaction_id,
                r.c.amount_cents,
                r.c.created_at,
                d.c.order_number,
            )
            .join(d, d.c.order_id == r.c.order_id)
            .where(r.c.reason.in_(reasons), r.c.created_at >= start, r.c.created_at < end)
        )
        return [dict(x._mapping) for x in self.uow.execute(query).all()]

    def order_numbers(self, order_ids: list[str]) -> dict[str, str]:
        d = tables.payments_due
        if not order_ids:
            return {}
        query = select(d.c.order_id, d.c.order_number).where(d.c.order_id.in_(order_ids))
        return {r.order_id: r.order_number for r in self.uow.execute(query).all()}


class VatCheckRepository:
    def __init__(self, uow):
        self.uow = uow

    def add_pending(self, order_id: str, vat_number: str) -> None:
        now = utcnow()
        self.uow.claim(
            tables.vat_checks,
            {
                "order_id": order_id,
                "vat_number": vat_number,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            },
        )

    def due(self, now: datetime, limit: int = 20) -> list[dict]:
        t = tables.vat_checks
        query = (
            select(t)
            .where(t.c.status.in_(("pending", "unavailable")), t.c.next_attempt_at <= now)
            .order_by(t.c.next_attempt_at)
            .limit(limit)
        )
        return [dict(r._mapping) for r in self.uow.execute(query).all()]

    def record(self, order_id: str, attempts_before: int, **values) -> None:
        """The outcome of a check, unless another worker recorded one first."""
        t = tables.vat_checks
        self.uow.change(t, values, t.c.order_id == order_id, t.c.attempts == attempts_before)

    def listed(self, status: str | None = None, order_id: str | None = None) -> list[dict]:
        t = tables.vat_checks
        query = select(t).order_by(t.c.created_at.desc()).limit(500)
        if status:
            query = query.where(t.c.status == status)
        if order_id:
            query = query.where(t.c.order_id == order_id)
        return [dict(r._mapping) for r in self.uow.execute(query).all()]
