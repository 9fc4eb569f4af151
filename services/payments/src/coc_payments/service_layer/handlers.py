"""Event handlers of the payments service: thin, the rules are in ``domain``.

Each runs inside the consumer's transaction (``ctx.conn``); the inbox already drops a redelivered
event, and the repositories record each fact once, so a handler has one effect per event.
"""
from __future__ import annotations

from dataclasses import replace

from coc_shared.consumer import Handler, HandlerContext, PermanentError
from coc_shared.envelope import Event

from ..adapters.repository import AccountDeactivationRepository, PaymentDueRepository
from ..domain.model import AccountDeactivation, InvalidEvent, PaymentDue


def record_payment_due(event: Event, ctx: HandlerContext) -> None:
    try:
        due = replace(PaymentDue.from_order_placed(event.data), correlation_id=event.correlation_id)
    except InvalidEvent as exc:
        raise PermanentError(str(exc)) from exc
    PaymentDueRepository(ctx.conn).add(due, event_id=event.id)


def record_account_deactivated(event: Event, ctx: HandlerContext) -> None:
    try:
        deactivation = AccountDeactivation.from_message(event.id, event.data)
    except InvalidEvent as exc:
        raise PermanentError(str(exc)) from exc
    AccountDeactivationRepository(ctx.conn).add(deactivation)


def handlers(_runtime=None) -> dict[str, Handler]:
    """The event types the payments service consumes (the catalogue's ``consumers``) and their handlers."""
    return {"order.placed": record_payment_due, "account.deactivated": record_account_deactivated}
