"""Invoices: numbered when payments' own ``payment.confirmed`` comes back to it, one per order,
in the consumer's transaction; rendered (PDF, Factur-X), stored encrypted, chained and announced
(``invoice.issued``) by the worker's ``invoices`` loop, in number order, a batch per
transaction; listed and served to the customer, listed and re-sent by staff, and the series
verified.

Numbering, as one linear unit of work (the handler's):

    the order's invoice is numbered or issued? → nothing · read the sale (recorded from
    order.placed) → lock and move the series' counter (UPDATE … RETURNING: the next number) → the
    document's data (domain) → register it in ``invoices_to_issue``

The consumer commits it with its inbox row: a redelivered confirmation finds its inbox row (and
the order's numbered invoice), a transaction rolled back gives its number back. The counter's row
is locked from the number to the commit only (no rendering inside), so numbers follow the
commits' order and stay gap-free with several workers.

Issuing, the ``invoices`` loop's unit of work (``issue_pending``):

    claim the first numbered invoices in number order (FOR UPDATE SKIP LOCKED) → the first must
    follow the series' last issued document (else another worker's loop holds the ones before:
    nothing now) → render their Factur-X PDFs in a process pool (both cores) → in number order:
    digests and chain (domain), register each document (encrypted), delete the rows claimed, the
    counter's new chain digest and each invoice.issued → commit

A crash before that commit leaves the numbered rows to the next pass (of this worker or another);
the chain is the one rendering them one by one would give (each document chained to the one
before, in number order). Until its batch commits, a numbered invoice is not listed to the
customer (``GET /v1/orders/{id}/invoices`` lists issued documents only, with their PDFs).
Credit notes are still issued whole in their use case's transaction (``issue``): a staff action,
rare, that must answer with its number. Why in payments and not in the provider's callback: see
ARCHITECTURE.md (Invoices and refunds).
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import Executor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from coc_shared.documents import Cipher
from coc_shared.envelope import Event, utcnow
from coc_shared.errors import InvalidEvent
from coc_shared.logging import get_logger
from coc_shared.values import as_utc, aware_datetime

from ..adapters.billing_repository import (
    BillingDocumentRepository,
    DocumentCounter,
    InvoiceQueue,
    SaleRepository,
)
from ..adapters.invoice_pdf import facturx_pdf, render_facturx
from ..adapters.render_pool import new_render_pool
from ..config import PaymentsConfig
from ..domain.billing import (
    CREDIT_NOTE,
    GENESIS,
    INVOICE,
    BillingDocument,
    Payment,
    Sale,
    canonical,
    chain_digest,
    invoice_data,
    number_of,
    sha256,
)

log = get_logger(__name__)


def seller_data(config: PaymentsConfig) -> dict:
    seller, _ = config.billing()
    data = {
        "name": seller.name,
        "address": {
            "line1": seller.street,
            "postal_code": seller.postal_code,
            "city": seller.city,
            "country": seller.country,
        },
        "siren": seller.siren,
        "vat_number": seller.vat_number,
        "legal_mentions": seller.legal_mentions,
    }
    if config.transfer_iban:
        data["iban"] = config.transfer_iban
    return data


def record_sale(ctx, event: Event, config: PaymentsConfig) -> None:
    """What the invoice will need of this order (from ``order.placed``, personal part included)."""
    from .vat_checks import record_pending

    try:
        sale = Sale.from_order_placed(event.data, event.personal, config.default_vat_rate)
    except InvalidEvent as exc:
        # The payment is still due; its invoice will wait (payment.confirmed parked, staff told).
        log.error("sale.not_recorded", order_id=event.data.get("order_id"), error=str(exc))
        return
    if SaleRepository(ctx).add(sale, event.id) and sale.buyer.business:
        record_pending(ctx, sale.order_id, sale.buyer.vat_number)


def issue(
    uow,
    config: PaymentsConfig,
    kind: str,
    order_id: str,
    make_data,
    provider: str,
    refund_id: str | None = None,
) -> BillingDocument:
    """Number, render, chain and register one document of ``kind``: ``make_data(number,
    issued_at)`` gives its data. Shared by invoices and credit notes."""
    _, key = config.billing()
    counter = DocumentCounter(uow)
    seq, previous = counter.next(kind)
    issued_at = utcnow()
    data = make_data(number_of(kind, seq), issued_at)
    pdf, _xml = render_facturx(data)
    doc = BillingDocument.issue(kind, seq, order_id, issued_at, data, pdf, previous, refund_id)
    BillingDocumentRepository(uow).add(doc, Cipher(key), provider)
    counter.advance(kind, doc.chain_sha256)
    return doc


def issued_event(config: PaymentsConfig, doc: BillingDocument, resent: bool = False) -> dict:
    amounts = doc.amounts
    return {
        "order_id": doc.order_id,
        "order_number": doc.data["order_number"],
        "kind": doc.kind,
        "number": doc.number,
        "issued_at": doc.issued_at.isoformat(),
        "total": {"amount_cents": amounts["total_cents"], "currency": amounts["currency"]},
        "vat": {"amount_cents": amounts["vat_cents"], "currency": amounts["currency"]},
        "vat_regime": amounts["vat_regime"],
        "business": bool(doc.data["buyer"].get("business")),
        "pdf_url": pdf_url(config, doc.order_id, doc.number),
        "list_url": list_url(config, doc.order_id),
        "resent": resent,
    }


def list_url(config: PaymentsConfig, order_id: str) -> str:
    return f"{config.public_url}/v1/orders/{order_id}/invoices"


def pdf_url(config: PaymentsConfig, order_id: str, number: str) -> str:
    return f"{list_url(config, order_id)}/{number}.pdf"


def issue_invoice(event: Event, ctx, config: PaymentsConfig) -> None:
    """The handler of ``payment.confirmed`` (payments' own): the order's invoice numbered, once;
    the ``invoices`` loop renders and issues it."""
    order_id = event.data.get("order_id")
    queue = InvoiceQueue(ctx)
    if not order_id or queue.has_invoice(order_id):
        return
    sale = SaleRepository(ctx).get(order_id)
    if sale is None:
        raise InvalidEvent(f"no sale recorded for order {order_id}: order.placed never came")
    amount = event.data.get("amount") or {}
    if (amount.get("amount_cents"), amount.get("currency")) != (
        sale.amounts.total_cents,
        sale.amounts.currency,
    ):
        raise InvalidEvent("the payment confirmed is not the order's total")
    payment = Payment(
        method=event.data["method"],
        provider=event.data["provider"],
        transaction_id=event.data["provider_transaction_id"],
        paid_at=aware_datetime(event.occurred_at, "occurred_at", InvalidEvent),
    )
    seller = seller_data(config)  # NotConfigured without the seller or INVOICE_KEY: retried
    seq, _previous = DocumentCounter(ctx).next(INVOICE)
    if queue.has_invoice(order_id):
        # Another transaction numbered it between the first look and the counter's lock: give
        # the number back (roll back; the retry finds the invoice).
        raise RuntimeError(f"the invoice of order {order_id} was numbered meanwhile")
    issued_at = utcnow()
    number = number_of(INVOICE, seq)
    data = invoice_data(number, issued_at, sale, payment, seller)
    doc = BillingDocument(INVOICE, seq, number, order_id, issued_at, data, b"", "")
    queue.add(doc, payment.provider, event.correlation_id or order_id)
    log.info("invoice.numbered", order_id=order_id, number=number)


# --------------------------------------------------------------------------- the invoices loop
def render_inline(datas: list[dict]) -> list[bytes]:
    return [facturx_pdf(data) for data in datas]


def issue_pending(runtime, render=render_inline, limit: int | None = None) -> int:
    """One batch of numbered invoices issued (rendered by ``render(datas) -> pdfs``, stored,
    chained, announced) in one transaction; returns how many (0: none to issue, or another
    worker's loop holds the ones before)."""
    config: PaymentsConfig = runtime.config
    _, key = config.billing()
    cipher = Cipher(key)
    with runtime.unit_of_work() as uow:
        queue = InvoiceQueue(uow)
        rows = queue.claim(limit or config.invoice_batch_size)
        if not rows:
            return 0
        documents = BillingDocumentRepository(uow)
        last_seq, previous = documents.last_of(INVOICE)
        # Only a run of numbers right after the last issued one: the chain is made in order.
        run = []
        for row in rows:
            if row["seq"] != last_seq + 1 + len(run):
                break
            run.append(row)
        if not run:
            log.debug("invoices.waiting", first=rows[0]["number"], last_issued=last_seq)
            return 0
        datas = [row["data"] for row in run]
        pdfs = render(datas)
        for row, data, pdf in zip(run, datas, pdfs, strict=True):
            doc = BillingDocument.issue(
                INVOICE, row["seq"], row["order_id"], as_utc(row["issued_at"]), data, pdf, previous
            )
            documents.add(doc, cipher, row["provider"])
            uow.emit(
                "invoice.issued",
                issued_event(config, doc),
                subject=doc.order_id,
                correlation_id=row["correlation_id"],
            )
            previous = doc.chain_sha256
        queue.remove([row["seq"] for row in run])
        DocumentCounter(uow).advance(INVOICE, previous)
        uow.commit()
    log.info("invoices.issued", count=len(run), first=run[0]["number"], last=run[-1]["number"])
    return len(run)


def pending_count(runtime) -> int:
    """Invoices numbered and not issued yet (``/metrics``' backlog of the ``invoices`` loop)."""
    with runtime.unit_of_work() as uow:
        return InvoiceQueue(uow).count()


def _pool(processes: int) -> Executor:
    return new_render_pool(processes)


def loop(runtime):
    """The worker's ``invoices`` loop (``ServiceDefinition.loops``): issue what is numbered, a
    batch at a time, the PDFs rendered by ``INVOICE_RENDER_PROCESSES`` processes."""
    config: PaymentsConfig = runtime.config

    def run(stop: threading.Event) -> None:
        pool: Executor | None = None

        def render(datas: list[dict]) -> list[bytes]:
            nonlocal pool
            if config.invoice_render_processes == 0 or len(datas) == 1:
                return render_inline(datas)
            if pool is None:
                pool = _pool(config.invoice_render_processes)
            chunk = max(1, len(datas) // (2 * config.invoice_render_processes))
            try:
                return list(pool.map(facturx_pdf, datas, chunksize=chunk))
            except BrokenProcessPool:  # a rendering process died: a new pool next time
                pool.shutdown(wait=False, cancel_futures=True)
                pool = None
                raise

        try:
            while not stop.is_set():
                try:
                    issued = issue_pending(runtime, render)
                except Exception as exc:  # database down, a rendering failed: again later
                    log.warning(
                        "invoices.loop_error", error_type=type(exc).__name__, error=str(exc)
                    )
                    issued = 0
                    stop.wait(min(5.0, 10 * config.invoice_poll_seconds))
                if not issued:
                    stop.wait(config.invoice_poll_seconds)
        finally:
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

    return run


# --------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class StoredDocument:
    number: str
    kind: str
    data: dict
    pdf: bytes


class DocumentArchived(Exception):
    """The document moved to the invoice archive (its buyer's account was erased): its data and
    PDF are no longer in the active base (``archiving``)."""


def open_document(row: dict, key: bytes) -> StoredDocument:
    if row["data"] is None:
        raise DocumentArchived(row["number"])
    cipher = Cipher(key)
    data = json.loads(cipher.decrypt(row["data"], row["number"]))
    return StoredDocument(
        row["number"], row["kind"], data, cipher.decrypt(row["pdf"], row["number"])
    )


def document_summary(config: PaymentsConfig, row: dict) -> dict:
    return {
        "number": row["number"],
        "kind": row["kind"],
        "issued_at": as_utc(row["issued_at"]).isoformat(),
        "order_id": row["order_id"],
        "net": {"amount_cents": row["net_cents"], "currency": row["currency"]},
        "vat": {"amount_cents": row["vat_cents"], "currency": row["currency"]},
        "total": {"amount_cents": row["total_cents"], "currency": row["currency"]},
        "vat_regime": row["vat_regime"],
        "pdf_url": pdf_url(config, row["order_id"], row["number"]),
    }


def documents_of(uow, config: PaymentsConfig, order_id: str) -> list[dict]:
    return [document_summary(config, r) for r in BillingDocumentRepository(uow).listed(order_id)]


def resend(runtime, config: PaymentsConfig, number: str, staff, reason: str) -> dict | None:
    """Staff re-send a document to the customer: ``invoice.issued`` again (``resent``), which
    notifications mails; recorded in the support actions log."""
    with runtime.unit_of_work() as uow:
        row = BillingDocumentRepository(uow).get(number)
        if row is None or row["data"] is None:  # none, or archived: its buyer was erased
            return None
        stored = open_document(row, config.billing()[1])
        doc = BillingDocument(
            kind=row["kind"],
            seq=row["seq"],
            number=row["number"],
            order_id=row["order_id"],
            issued_at=as_utc(row["issued_at"]),
            data=stored.data,
            pdf=b"",
            previous_sha256=row["previous_sha256"],
        )
        event = uow.emit(
            "invoice.issued", issued_event(config, doc, resent=True), subject=row["order_id"]
        )
        uow.commit()
    runtime.parking.record_action(
        staff, "resend_invoice", number, reason, {"service": "payments", "event_id": event.id}
    )
    return {"number": number, "event_id": event.id}


# --------------------------------------------------------------------------- the chain check
@dataclass
class ChainReport:
    checked: dict
    problems: list

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {"ok": self.ok, "checked": self.checked, "problems": self.problems}


_PLAIN_FIELDS = {
    "net_cents": ("amounts", "net_cents"),
    "vat_cents": ("amounts", "vat_cents"),
    "total_cents": ("amounts", "total_cents"),
    "currency": ("amounts", "currency"),
    "vat_regime": ("amounts", "vat_regime"),
}


def verify_series(runtime, key: bytes) -> ChainReport:
    """Every document of both series read back, decrypted and re-hashed: numbers 1..n without
    gap, each digest equal to its data's and PDF's, each chain digest equal to the previous
    document's chain + its own, the plain columns equal to the data, and each counter at its
    series' last document (a document moved to the invoice archive has no data nor PDF here any
    more: its chain digest is checked from its stored digests, which the archive's reader checks
    against the archived data and PDF) (for invoices: at the last one numbered, those not issued yet
    following the last issued without gap, and its chain digest the last issued one's). Any
    alteration, deletion or insertion shows as a problem."""
    cipher = Cipher(key)
    problems, checked = [], {}
    with runtime.unit_of_work() as uow:
        documents = BillingDocumentRepository(uow)
        counters = DocumentCounter(uow).all()
        for kind in (INVOICE, CREDIT_NOTE):
            previous, expected_seq, last = GENESIS, 1, 0
            while rows := documents.series(kind, after_seq=last):
                for row in rows:
                    problems += [
                        {"number": row["number"], "problem": p}
                        for p in _document_problems(row, cipher, kind, previous, expected_seq)
                    ]
                    previous, expected_seq = row["chain_sha256"], row["seq"] + 1
                last = rows[-1]["seq"]
            # Invoices numbered and not issued yet follow the last issued one, up to the counter.
            pending = InvoiceQueue(uow).numbered() if kind == INVOICE else []
            if pending != list(range(expected_seq, expected_seq + len(pending))):
                problems.append(
                    {"series": kind, "problem": "numbered invoices do not follow the last issued"}
                )
            if counters.get(kind, (0, GENESIS)) != (expected_seq - 1 + len(pending), previous):
                problems.append(
                    {"series": kind, "problem": "the counter is not at the series' last document"}
                )
            checked[kind] = expected_seq - 1
            if pending:
                checked[f"{kind}_numbered_not_issued"] = len(pending)
    return ChainReport(checked, problems)


def _document_problems(row: dict, cipher, kind: str, previous: str, expected_seq: int) -> list:
    number, found = row["number"], []
    if row["seq"] != expected_seq or number != number_of(kind, row["seq"]):
        found.append(f"expected number {number_of(kind, expected_seq)}")
    if row["data"] is None or row["pdf"] is None:
        if row["archived_at"] is None:
            return [*found, "data or PDF missing (and not archived)"]
        return found + _chain_problems(row, previous, row["data_sha256"], row["pdf_sha256"])
    try:
        data_raw = cipher.decrypt(row["data"], number)
        pdf = cipher.decrypt(row["pdf"], number)
    except Exception:
        return [*found, "cannot be decrypted (altered, or another document's)"]
    data = json.loads(data_raw)
    data_sha, pdf_sha = sha256(canonical(data)), sha256(pdf)
    if data_sha != row["data_sha256"]:
        found.append("data digest differs")
    if pdf_sha != row["pdf_sha256"]:
        found.append("PDF digest differs")
    found += _chain_problems(row, previous, data_sha, pdf_sha)
    for column, (part, name) in _PLAIN_FIELDS.items():
        if row[column] != data[part][name]:
            found.append(f"{column} differs from the document")
    if data.get("number") != number or data.get("order_id") != row["order_id"]:
        found.append("number or order differs from the document")
    return found


def _chain_problems(row: dict, previous: str, data_sha: str, pdf_sha: str) -> list:
    found = []
    if row["previous_sha256"] != previous:
        found.append("not chained to the document before")
    if chain_digest(previous, row["number"], data_sha, pdf_sha) != row["chain_sha256"]:
        found.append("chain digest differs")
    return found
