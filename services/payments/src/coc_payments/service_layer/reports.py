"""What a verified report does to the payment an order awaits, registered on a unit of work.

``domain.payments.decide`` says what follows from a report; ``apply_report`` registers it: the
payment's new state (a change guarded by the state read under the row lock), the confirmation,
the review item, and the events, written together at the commit. Shared by the providers'
notifications (``callbacks``) and the bank statements (``statements``).
"""

from __future__ import annotations

from coc_shared.logging import get_logger

from ..adapters.bank import Credit
from ..adapters.repository import ConfirmationRepository, PaymentDueRepository, ReviewRepository
from ..domain.model import PaymentDue
from ..domain.payments import (
    ALREADY,
    CONFIRM,
    DUPLICATE,
    FAIL,
    RECORD,
    REVERSAL,
    REVIEW,
    Decision,
    PaymentReport,
    decide,
)
from ..domain.references import references_in

log = get_logger(__name__)
TRANSFER_PROVIDER = "bank-transfer"


def _money(report: PaymentReport) -> dict:
    return {"amount_cents": report.amount_cents, "currency": report.currency}


def _story(due: PaymentDue) -> str:
    """The correlation id of the order's story (order.placed's), for the events about it."""
    return due.correlation_id or due.order_id


def _confirm(
    uow, decision: Decision, report: PaymentReport, due: PaymentDue, callback_id, label
) -> None:
    PaymentDueRepository(uow).save(due, due.paid(report.provider, report.provider_transaction_id))
    event = uow.emit(
        "payment.confirmed",
        {
            "order_id": due.order_id,
            "method": report.method,
            "provider": report.provider,
            "provider_transaction_id": report.provider_transaction_id,
            "amount": _money(report),
            "order_number": due.order_number,
        },
        subject=due.order_id,
        correlation_id=_story(due),
    )
    ConfirmationRepository(uow).add(due.order_id, report, callback_id, event.id)
    log.info(
        "payment.confirmed", order_id=due.order_id, provider=report.provider, event_id=event.id
    )


def _fail(
    uow, decision: Decision, report: PaymentReport, due: PaymentDue, callback_id, label
) -> None:
    PaymentDueRepository(uow).save(due, due.failed())
    uow.emit(
        "payment.failed",
        {
            "order_id": due.order_id,
            "method": report.method,
            "provider": report.provider,
            "reason": decision.reason,
            "provider_transaction_id": report.provider_transaction_id,
        },
        subject=due.order_id,
        correlation_id=_story(due),
    )


def _review(
    uow, decision: Decision, report: PaymentReport, due: PaymentDue | None, callback_id, label
) -> None:
    order_id = due.order_id if due else None
    ReviewRepository(uow).add(decision.reason, report, order_id, callback_id, label)
    log.warning(
        "payment.review", order_id=order_id, reason=decision.reason, provider=report.provider
    )


def _duplicate(
    uow, decision: Decision, report: PaymentReport, due: PaymentDue, callback_id, label
) -> None:
    ReviewRepository(uow).add(decision.reason, report, due.order_id, callback_id, label)
    uow.emit(
        "payment.duplicate_detected",
        {
            "order_id": due.order_id,
            "provider": report.provider,
            "method": report.method,
            "provider_transaction_id": report.provider_transaction_id,
            "amount": _money(report),
        },
        subject=due.order_id,
        correlation_id=_story(due),
    )
    log.warning("payment.duplicate_detected", order_id=due.order_id, provider=report.provider)


def _reversal(
    uow, decision: Decision, report: PaymentReport, due: PaymentDue, callback_id, label
) -> None:
    ReviewRepository(uow).add(decision.reason, report, due.order_id, callback_id, label)
    uow.emit(
        "payment.refunded",
        {
            "order_id": due.order_id,
            "method": report.method,
            "provider": report.provider,
            "kind": report.kind,
            "provider_transaction_id": report.provider_transaction_id,
            "amount": _money(report),
        },
        subject=due.order_id,
        correlation_id=_story(due),
    )


def _nothing(*_args) -> None:
    """Kept in the callback's audit row only."""


_APPLY = {
    CONFIRM: _confirm,
    FAIL: _fail,
    REVIEW: _review,
    DUPLICATE: _duplicate,
    REVERSAL: _reversal,
    ALREADY: _nothing,
    RECORD: _nothing,
}


def apply_report(
    uow,
    report: PaymentReport,
    due: PaymentDue | None,
    callback_id: int | None,
    label: str | None = None,
    unknown_reason: str | None = None,
) -> Decision:
    """Apply a verified report to ``due`` (read under its row lock; None: no order matched) as the
    domain decides. ``unknown_reason`` names a review of a report that matched no order."""
    decision = decide(due, report)
    if decision.action == REVIEW and due is None and unknown_reason:
        decision = Decision(REVIEW, unknown_reason)
    _APPLY[decision.action](uow, decision, report, due, callback_id, label)
    return decision


def apply_credit(uow, credit: Credit, callback_id: int) -> tuple[Decision, PaymentDue | None]:
    """An incoming transfer (bank webhook or statement line), matched by the RF reference in its
    label; returns the decision and the payment it matched."""
    if not credit.credit:
        return Decision(RECORD, "debit"), None
    if not credit.booked:
        return Decision(RECORD, "not_booked"), None
    report = PaymentReport(
        provider=TRANSFER_PROVIDER,
        method="transfer",
        kind="succeeded",
        provider_transaction_id=credit.transaction_id,
        amount_cents=credit.amount_cents,
        currency=credit.currency,
    )
    references, mistyped = references_in(credit.label)
    due = PaymentDueRepository(uow).by_reference(references, lock=True)
    decision = apply_report(
        uow,
        report,
        due,
        callback_id,
        label=credit.label[:500],
        unknown_reason="invalid_reference" if mistyped else "unmatched_credit",
    )
    return decision, due
