"""Refunds approved by staff, through the provider that took the money, with their credit note.

``request_refund`` is one unit of work: the payment to refund (the order's, or a duplicate's
from the review list) → the approval rules (a reason, the admin role above
REFUND_ADMIN_ABOVE_CENTS, one refund per payment) → the credit note (its own gap-free series;
none for a duplicate payment, whose sale stands) → the refund row, ``refund.requested`` (and
``invoice.issued`` for the credit note) → commit; the approval is recorded in the support actions
log. Then ``execute_refund`` calls the provider, outside any transaction, and records what
happened in a second unit of work (``refund.completed`` or ``refund.failed``). A transfer's
refund is a SEPA file made in the first unit of work; staff upload it to the bank and say so
(``complete_transfer``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy.exc import IntegrityError
from stdnum import bic as bic_number
from stdnum import iban as iban_number
from stdnum.exceptions import ValidationError

from coc_shared.documents import Cipher
from coc_shared.envelope import utcnow
from coc_shared.logging import get_logger
from coc_shared.tokens import Actor

from ..adapters.billing_repository import BillingDocumentRepository, RefundRepository
from ..adapters.refunds import (
    PayPalRefunds,
    RefundOutcome,
    RefundRefused,
    SystempayRefunds,
    sepa_transfer_file,
)
from ..adapters.repository import PaymentDueRepository, ReviewRepository
from ..config import NotConfigured, PaymentsConfig
from ..domain.billing import CREDIT_NOTE, Amounts, credit_note_data
from ..domain.payments import PROVIDER_METHODS
from . import invoicing

log = get_logger(__name__)
REASONS = {
    "cancelled_after_payment": "annulation de la commande après paiement",
    "duplicate_payment": "paiement en double",
    "supplier_unable": "le fournisseur ne peut pas délivrer le certificat",
}
DUPLICATE_REVIEWS = ("duplicate_payment", "paid_after_cancellation")


class RefundRefusedByRules(Exception):
    """The refund may not be made (HTTP status in ``status``)."""

    def __init__(self, message: str, status: int = 409, fields: dict | None = None):
        super().__init__(message)
        self.status = status
        self.fields = fields


@dataclass(frozen=True)
class RefundRequest:
    order_id: str
    reason: str
    note: str
    amount_cents: int | None = None
    provider_transaction_id: str | None = None  # a duplicate payment's (default: the latest)
    iban: str | None = None  # transfers: the customer's account
    bic: str | None = None
    account_holder: str | None = None


@dataclass(frozen=True)
class _Payment:
    provider: str
    method: str
    transaction_id: str
    amount_cents: int
    currency: str


def _payment_to_refund(uow, request: RefundRequest, due) -> _Payment:
    if request.reason == "duplicate_payment":
        row = ReviewRepository(uow).latest(
            request.order_id, DUPLICATE_REVIEWS, request.provider_transaction_id
        )
        if row is None or row.amount_cents is None:
            raise RefundRefusedByRules(
                "no duplicate payment of this order is on the review list", 404
            )
        return _Payment(
            row.provider, row.method, row.provider_transaction_id, row.amount_cents, row.currency
        )
    if not due.paid_transaction_id:
        raise RefundRefusedByRules("this order was not paid", 409)
    return _Payment(
        due.paid_provider,
        PROVIDER_METHODS.get(due.paid_provider, due.method),
        due.paid_transaction_id,
        due.amount_cents,
        due.currency,
    )


def _transfer_file(config: PaymentsConfig, request: RefundRequest, refund_id, amount, currency):
    problems = {}
    try:
        iban = iban_number.validate(request.iban or "")
    except ValidationError:
        problems["iban"] = ["The customer's IBAN is needed to refund a transfer."]
    bic = None
    if request.bic:
        try:
            bic = bic_number.validate(request.bic)
        except ValidationError:
            problems["bic"] = ["Not a valid BIC."]
    if not (request.account_holder or "").strip():
        problems["account_holder"] = ["The name of the customer's account holder is needed."]
    if problems:
        raise RefundRefusedByRules("the customer's bank account is needed", 422, problems)
    our_iban, our_bic, beneficiary = config.transfer_account()
    return sepa_transfer_file(
        debtor_name=beneficiary,
        debtor_iban=our_iban,
        debtor_bic=our_bic,
        creditor_name=request.account_holder.strip(),
        creditor_iban=iban,
        creditor_bic=bic,
        amount_cents=amount,
        currency=currency,
        reference=f"RBT-{refund_id[:8]}",
        description=f"Remboursement commande {request.order_id[:40]}",
        execution_date=date.today(),
    )


def request_refund(runtime, config: PaymentsConfig, request: RefundRequest, staff: Actor) -> dict:
    if request.reason not in REASONS:
        raise RefundRefusedByRules(
            "unknown reason", 422, {"reason": [f"One of: {', '.join(REASONS)}."]}
        )
    if not (request.note or "").strip():
        raise RefundRefusedByRules(
            "a refund needs the staff member's reason", 422, {"note": ["Required."]}
        )
    refund_id = str(uuid.uuid4())
    try:
        with runtime.unit_of_work() as uow:
            due = PaymentDueRepository(uow).get(request.order_id, lock=True)
            if due is None:
                raise RefundRefusedByRules("no such order", 404)
            payment = _payment_to_refund(uow, request, due)
            amount = (
                request.amount_cents if request.amount_cents is not None else payment.amount_cents
            )
            if not 0 < amount <= payment.amount_cents:
                raise RefundRefusedByRules(
                    "the amount is not within the payment", 422, {"amount_cents": ["Out of range."]}
                )
            if amount > config.refund_admin_above_cents and staff.role != "admin":
                raise RefundRefusedByRules(
                    f"a refund above {config.refund_admin_above_cents} cents needs an admin", 403
                )
            refunds = RefundRepository(uow)
            if refunds.of_payment(payment.provider, payment.transaction_id) is not None:
                raise RefundRefusedByRules("this payment is refunded already", 409)
            sepa = None
            if payment.method == "transfer":
                sepa = _transfer_file(config, request, refund_id, amount, payment.currency)
            invoice, business = _invoice_to_credit(uow, config, request)
            credit_note = None
            if invoice is not None:
                credit_note = _credit_note(uow, config, invoice, amount, refund_id, request)
            key = config.billing()[1] if sepa is not None else None
            refunds.add(
                {
                    "id": refund_id,
                    "order_id": request.order_id,
                    "reason": request.reason,
                    "provider": payment.provider,
                    "method": payment.method,
                    "provider_transaction_id": payment.transaction_id,
                    "amount_cents": amount,
                    "currency": payment.currency,
                    "status": "file_ready" if sepa is not None else "requested",
                    "credit_note_number": credit_note.number if credit_note else None,
                    "approved_by": staff.name,
                    "approved_role": staff.role,
                    "note": request.note.strip()[:2000],
                    "requested_at": utcnow(),
                    "attempts": 0,
                    "sepa_file": Cipher(key).encrypt(sepa, refund_id) if sepa else None,
                    "business": business,
                }
            )
            uow.emit(
                "refund.requested",
                {
                    "order_id": request.order_id,
                    "refund_id": refund_id,
                    "reason": request.reason,
                    "method": payment.method,
                    "provider": payment.provider,
                    "provider_transaction_id": payment.transaction_id,
                    "amount": {"amount_cents": amount, "currency": payment.currency},
                    "credit_note_number": credit_note.number if credit_note else None,
                },
                subject=request.order_id,
                correlation_id=due.correlation_id or request.order_id,
            )
            uow.commit()
    except IntegrityError:
        raise RefundRefusedByRules("this payment is refunded already", 409) from None
    runtime.parking.record_action(
        staff,
        "approve_refund",
        refund_id,
        request.note.strip(),
        {
            "service": "payments",
            "order_id": request.order_id,
            "reason": request.reason,
            "amount_cents": amount,
            "credit_note": credit_note.number if credit_note else None,
        },
    )
    log.info("refund.requested", order_id=request.order_id, refund_id=refund_id, by=staff.name)
    return execute_refund(runtime, config, refund_id)


def _invoice_to_credit(uow, config, request) -> tuple[dict | None, bool]:
    """(the data of the order's invoice a credit note needs, or None for a duplicate payment;
    whether the buyer is a business). A credit note needs the issued invoice (409 until then),
    and one still in the active base: an archived invoice's buyer details are in the invoice
    archive only, which payments may not read (the accountant issues that one from the
    archive)."""
    row = BillingDocumentRepository(uow).invoice_of(request.order_id)
    data = None
    if row is not None and row["archived_at"] is None:
        data = invoicing.open_document(row, config.billing()[1]).data
    if request.reason == "duplicate_payment":
        return None, bool(data and data["buyer"].get("business"))
    if row is None:
        raise RefundRefusedByRules(
            "the order's invoice is not issued yet: its credit note cannot be", 409
        )
    if data is None:
        raise RefundRefusedByRules(
            "the order's invoice is archived (the customer's account was erased): its credit "
            "note is issued from the invoice archive",
            409,
        )
    return data, bool(data["buyer"].get("business"))


def _credit_note(uow, config, invoice: dict, amount: int, refund_id: str, request):
    a = invoice["amounts"]
    amounts = Amounts(
        a["net_cents"],
        a["vat_cents"],
        a["total_cents"],
        a["currency"],
        a["vat_rate"],
        a["vat_regime"],
    ).part(amount)
    doc = invoicing.issue(
        uow,
        config,
        CREDIT_NOTE,
        request.order_id,
        lambda number, issued_at: credit_note_data(
            number, issued_at, invoice, amounts, refund_id, REASONS[request.reason]
        ),
        invoice["payment"]["provider"],
        refund_id,
    )
    uow.emit("invoice.issued", invoicing.issued_event(config, doc), subject=request.order_id)
    return doc


def _call_provider(runtime, config: PaymentsConfig, refund: dict) -> RefundOutcome:
    from ..adapters.providers import Providers

    if refund["method"] == "card":
        if not (config.systempay_site_id and config.systempay_rest_key):
            raise RefundRefused("Systempay's REST API is not configured (SYSTEMPAY_REST_KEY)")
        return SystempayRefunds(
            config.systempay_api_url,
            config.systempay_site_id,
            config.systempay_rest_key,
            config.provider_http_timeout,
        ).refund(
            refund["provider_transaction_id"],
            refund["amount_cents"],
            refund["currency"],
            f"refund {refund['id']}",
        )
    if refund["method"] == "paypal":
        try:
            client = Providers(config).paypal()
        except NotConfigured as exc:
            raise RefundRefused(str(exc)) from exc
        return PayPalRefunds(client).refund(
            refund["provider_transaction_id"],
            refund["amount_cents"],
            refund["currency"],
            refund["id"],
        )
    raise RefundRefused(f"no refund API for {refund['method']}")


def _event_money(refund: dict) -> dict:
    return {"amount_cents": refund["amount_cents"], "currency": refund["currency"]}


def execute_refund(runtime, config: PaymentsConfig, refund_id: str) -> dict:
    """Ask the provider to refund (a refund ``requested`` or ``failed``); records the outcome."""
    with runtime.unit_of_work() as uow:
        refund = RefundRepository(uow).get(refund_id)
    if refund is None or refund["status"] not in ("requested", "failed"):
        return refund_view(refund)
    try:
        outcome = _call_provider(runtime, config, refund)
    except RefundRefused as exc:
        with runtime.unit_of_work(correlation_id=refund["order_id"]) as uow:
            RefundRepository(uow).update(
                refund_id, status="failed", failure=str(exc)[:2000], attempts=refund["attempts"] + 1
            )
            uow.emit(
                "refund.failed",
                {
                    "order_id": refund["order_id"],
                    "refund_id": refund_id,
                    "method": refund["method"],
                    "provider": refund["provider"],
                    "reason": str(exc)[:500],
                    "amount": _event_money(refund),
                },
                subject=refund["order_id"],
            )
            uow.commit()
        log.warning("refund.failed", refund_id=refund_id, error=str(exc))
    else:
        _completed(runtime, refund, outcome.provider_refund_id)
    with runtime.unit_of_work() as uow:
        return refund_view(RefundRepository(uow).get(refund_id))


def _completed(runtime, refund: dict, provider_refund_id: str | None) -> None:
    with runtime.unit_of_work(correlation_id=refund["order_id"]) as uow:
        RefundRepository(uow).update(
            refund["id"],
            status="completed",
            completed_at=utcnow(),
            provider_refund_id=provider_refund_id,
            failure=None,
            attempts=refund["attempts"] + 1,
        )
        uow.emit(
            "refund.completed",
            {
                "order_id": refund["order_id"],
                "refund_id": refund["id"],
                "method": refund["method"],
                "provider": refund["provider"],
                "provider_refund_id": provider_refund_id,
                "amount": _event_money(refund),
            },
            subject=refund["order_id"],
        )
        uow.commit()
    log.info("refund.completed", refund_id=refund["id"], provider=refund["provider"])


def complete_transfer(runtime, refund_id: str, staff: Actor, note: str) -> dict | None:
    """Staff uploaded the SEPA file to the bank: the transfer's refund is completed."""
    with runtime.unit_of_work() as uow:
        refund = RefundRepository(uow).get(refund_id)
    if refund is None:
        return None
    if refund["status"] != "file_ready":
        raise RefundRefusedByRules(f"this refund is {refund['status']}", 409)
    _completed(runtime, refund, f"sepa:{refund_id}")
    runtime.parking.record_action(
        staff, "refund_transfer_sent", refund_id, note, {"service": "payments"}
    )
    with runtime.unit_of_work() as uow:
        return refund_view(RefundRepository(uow).get(refund_id))


def sepa_file(runtime, config: PaymentsConfig, refund_id: str, staff: Actor) -> bytes | None:
    with runtime.unit_of_work() as uow:
        refund = RefundRepository(uow).get(refund_id)
    if refund is None or refund["sepa_file"] is None:
        return None
    runtime.parking.record_action(staff, "read_sepa_file", refund_id, None, {"service": "payments"})
    return Cipher(config.billing()[1]).decrypt(refund["sepa_file"], refund_id)


def refund_view(refund: dict | None) -> dict | None:
    if refund is None:
        return None
    view = {k: v for k, v in refund.items() if k != "sepa_file"}
    view["sepa_file"] = refund.get("sepa_file") is not None
    for key in ("requested_at", "completed_at"):
        if view.get(key) is not None:
            from coc_shared.values import as_utc

            view[key] = as_utc(view[key]).isoformat()
    return view


def list_refunds(runtime, order_id: str | None = None, status: str | None = None) -> list[dict]:
    with runtime.unit_of_work() as uow:
        return [refund_view(r) for r in RefundRepository(uow).listed(order_id, status)]
