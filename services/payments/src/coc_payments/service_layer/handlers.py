"""Event handlers of the payments service: thin, the rules are in ``domain``.

Each runs inside the consumer's transaction (``ctx.conn``); the inbox already drops a redelivered
event, and the repositories record each fact once, so a handler has one effect per event.
"""
from __future__ import annotations

from dataclasses import replace

from coc_shared.consumer import Handler, HandlerContext, PermanentError
from coc_shared.envelope import Event
from coc_shared.logging import get_logger

from ..adapters.repository import (
    AccountDeactivationRepository, OrderCancellationRepository, PaymentDueRepository, ReviewRepository,
)
from ..domain.model import CANCELLED, AccountDeactivation, InvalidEvent, OrderCancellation, PaymentDue
from ..domain.payments import CANCEL, CANCEL_AND_REFUND, on_cancellation, paid_report

log = get_logger(__name__)


def record_payment_due(event: Event, ctx: HandlerContext) -> None:
    try:
        due = replace(PaymentDue.from_order_placed(event.data), correlation_id=event.correlation_id)
    except InvalidEvent as exc:
        raise PermanentError(str(exc)) from exc
    if OrderCancellationRepository(ctx.conn).cancelled(due.order_id):
        # order.cancelled was handled first (e.g. this event came back from a delayed retry)
        due = replace(due, status=CANCELLED)
    PaymentDueRepository(ctx.conn).add(due, event_id=event.id)


def cancel_payment(event: Event, ctx: HandlerContext) -> None:
    """``order.cancelled``: the payment is no longer due; one already paid goes to the review list
    to be refunded. Recorded even before the payment row exists (see ``record_payment_due``)."""
    try:
        cancellation = OrderCancellation.from_message(event.id, event.occurred_at, event.data)
    except InvalidEvent as exc:
        raise PermanentError(str(exc)) from exc
    OrderCancellationRepository(ctx.conn).add(cancellation)
    dues = PaymentDueRepository(ctx.conn)
    due = dues.get(cancellation.order_id, lock=True)
    if due is None:
        log.info("payment.cancelled_before_due", order_id=cancellation.order_id)
        return
    decision = on_cancellation(due)
    if decision.action in (CANCEL, CANCEL_AND_REFUND):
        dues.mark_cancelled(due.order_id)
    if decision.action == CANCEL_AND_REFUND:
        ReviewRepository(ctx.conn).add(decision.reason, paid_report(due), due.order_id, None)
        log.warning("payment.refund_needed", order_id=due.order_id, reason=decision.reason,
                    provider=due.paid_provider)
    log.info("payment.order_cancelled", order_id=due.order_id, before=due.status, outcome=decision.action)


def record_account_deactivated(event: Event, ctx: HandlerContext) -> None:
    try:
        deactivation = AccountDeactivation.from_message(event.id, event.data)
    except InvalidEvent as exc:
        raise PermanentError(str(exc)) from exc
    AccountDeactivationRepository(ctx.conn).add(deactivation)


def handlers(_runtime=None) -> dict[str, Handler]:
    """The event types the payments service consumes (the catalogue's ``consumers``) and their handlers."""
    return {"order.placed": record_payment_due, "order.cancelled": cancel_payment,
            "account.deactivated": record_account_deactivated}
