"""Event handlers of the orders service: thin, the rules are in ``domain``.

Each runs inside the consumer's transaction (``ctx.conn``); the inbox already drops a redelivered
event, and the repositories record each fact once, so a handler has one effect per event.

A lifecycle event moves the order when it fits its state (``domain.lifecycle``); one that does not
fit is logged and recorded as ignored, never applied; one for an order this service does not know
is parked (``PermanentError``): the order is always stored before any other service hears of it.
"""
from __future__ import annotations

from coc_shared.consumer import Handler, HandlerContext, PermanentError
from coc_shared.envelope import Event
from coc_shared.logging import get_logger

from ..adapters.repository import AccountDeactivationRepository, OrderEventRepository, OrderRepository
from ..domain.model import LIFECYCLE_MILESTONES, AccountDeactivation, InvalidEvent, OrderEvent

log = get_logger(__name__)


def apply_order_event(event: Event, ctx: HandlerContext) -> None:
    try:
        order_event = OrderEvent.from_message(event.id, event.type, event.occurred_at, event.data)
    except InvalidEvent as exc:
        raise PermanentError(str(exc)) from exc
    events = OrderEventRepository(ctx.conn)
    if events.seen(order_event.event_id):
        return
    orders = OrderRepository(ctx.conn)
    order = orders.get(order_event.order_id, for_update=True)
    if order is None:
        raise PermanentError(f"{event.type} for an unknown order {order_event.order_id}")
    result = order.apply(event.type)
    if result.applied:
        orders.save_status(order)
        log.info("order.status_changed", order_id=order.id, event_type=event.type, before=result.before.value,
                 after=order.status)
    else:
        log.warning("order.event_ignored", order_id=order.id, event_type=event.type, status=order.status,
                    reason="does not fit the order's state")
    events.add(order_event, outcome="applied" if result.applied else "ignored",
               status_after=order.status if result.applied else None)


# Kept for the name the skeleton used.
record_order_event = apply_order_event


def record_account_deactivated(event: Event, ctx: HandlerContext) -> None:
    try:
        deactivation = AccountDeactivation.from_message(event.id, event.data)
    except InvalidEvent as exc:
        raise PermanentError(str(exc)) from exc
    AccountDeactivationRepository(ctx.conn).add(deactivation)


def handlers(_runtime=None) -> dict[str, Handler]:
    """The event types the orders service consumes (the catalogue's ``consumers``) and their handlers."""
    table: dict[str, Handler] = {event_type: apply_order_event for event_type in LIFECYCLE_MILESTONES}
    table["account.deactivated"] = record_account_deactivated
    return table
