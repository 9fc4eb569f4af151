"""Event handlers of the orders service: thin, the rules are in ``domain``.

Each runs inside the consumer's transaction (``ctx.conn``); the inbox already drops a redelivered
event, and the repositories record each fact once, so a handler has one effect per event.
"""
from __future__ import annotations

from coc_shared.consumer import Handler, HandlerContext, PermanentError
from coc_shared.envelope import Event

from ..adapters.repository import AccountDeactivationRepository, OrderEventRepository
from ..domain.model import LIFECYCLE_MILESTONES, AccountDeactivation, InvalidEvent, OrderEvent


def record_order_event(event: Event, ctx: HandlerContext) -> None:
    try:
        order_event = OrderEvent.from_message(event.id, event.type, event.occurred_at, event.data)
    except InvalidEvent as exc:
        raise PermanentError(str(exc)) from exc
    OrderEventRepository(ctx.conn).add(order_event)


def record_account_deactivated(event: Event, ctx: HandlerContext) -> None:
    try:
        deactivation = AccountDeactivation.from_message(event.id, event.data)
    except InvalidEvent as exc:
        raise PermanentError(str(exc)) from exc
    AccountDeactivationRepository(ctx.conn).add(deactivation)


def handlers(_runtime=None) -> dict[str, Handler]:
    """The event types the orders service consumes (the catalogue's ``consumers``) and their handlers."""
    table: dict[str, Handler] = {event_type: record_order_event for event_type in LIFECYCLE_MILESTONES}
    table["account.deactivated"] = record_account_deactivated
    return table
