"""Event handlers of the supplier gateway: thin, the rules are in ``domain``.

Each runs inside the consumer's transaction (``ctx.conn``); the inbox already drops a redelivered
event, and applying the same fact twice to a supplier request changes nothing, so a handler has
one effect per event.
"""
from __future__ import annotations

from typing import Callable

from coc_shared.consumer import Handler, HandlerContext, PermanentError
from coc_shared.envelope import Event
from coc_shared.logging import get_logger

from ..adapters.repository import AccountDeactivationRepository, SupplierRequestRepository
from ..domain.model import AccountDeactivation, InvalidEvent, SupplierRequest, order_id_of

log = get_logger(__name__)

def _update_request(change: Callable[[SupplierRequest, Event], None]) -> Handler:
    def handle(event: Event, ctx: HandlerContext) -> None:
        requests = SupplierRequestRepository(ctx.conn)
        try:
            request = requests.get_or_new(order_id_of(event.type, event.data))
            change(request, event)
        except InvalidEvent as exc:
            raise PermanentError(str(exc)) from exc
        requests.save(request)
    handle.__name__ = change.__name__
    return handle


@_update_request
def order_placed(request: SupplierRequest, event: Event) -> None:
    request.order_was_placed(event.data)


@_update_request
def payment_confirmed(request: SupplierRequest, event: Event) -> None:
    request.payment_was_confirmed()


@_update_request
def documents_completed(request: SupplierRequest, event: Event) -> None:
    request.documents_were_completed(event.data)


@_update_request
def order_cancelled(request: SupplierRequest, event: Event) -> None:
    before = request.status
    if request.order_was_cancelled():
        log.info("supplier_request.cancelled", order_id=request.order_id, before=before,
                 cancelled_by=event.data.get("cancelled_by"))
    else:
        log.info("supplier_request.cancellation_ignored", order_id=request.order_id, status=request.status)


def account_deactivated(event: Event, ctx: HandlerContext) -> None:
    try:
        deactivation = AccountDeactivation.from_message(event.id, event.data)
    except InvalidEvent as exc:
        raise PermanentError(str(exc)) from exc
    AccountDeactivationRepository(ctx.conn).add(deactivation)


def handlers(_runtime=None) -> dict[str, Handler]:
    """The event types the supplier gateway consumes (the catalogue's ``consumers``) and their handlers."""
    return {
        "order.placed": order_placed,
        "payment.confirmed": payment_confirmed,
        "order.documents_completed": documents_completed,
        "order.cancelled": order_cancelled,
        "account.deactivated": account_deactivated,
    }
