"""Event handlers of the supplier gateway: thin, the rules are in ``domain``.

Each runs inside the consumer's transaction (``ctx.conn``); the inbox already drops a redelivered
event, and applying the same fact twice to a supplier request changes nothing, so a handler has
one effect per event.
"""

from __future__ import annotations

from collections.abc import Callable

from coc_shared.consumer import Handler, HandlerContext
from coc_shared.deactivation import account_deactivated_handler
from coc_shared.envelope import Event
from coc_shared.logging import get_logger

from ..adapters import tables
from ..adapters.repository import SupplierRequestRepository
from ..domain.model import SupplierRequest, order_id_of

log = get_logger(__name__)


def _update_request(change: Callable[[SupplierRequest, Event], None]) -> Handler:
    def handle(event: Event, ctx: HandlerContext) -> None:
        requests = SupplierRequestRepository(ctx)
        request = requests.get_or_new(order_id_of(event.type, event.data))
        change(request, event)
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
        log.info(
            "supplier_request.cancelled",
            order_id=request.order_id,
            before=before,
            cancelled_by=event.data.get("cancelled_by"),
        )
    else:
        log.info(
            "supplier_request.cancellation_ignored",
            order_id=request.order_id,
            status=request.status,
        )


# The gateway keeps nothing personal of an account yet (the documents it will fetch and send are
# erased in the step that handles them): the deactivation is only recorded.
account_deactivated = account_deactivated_handler(tables.account_deactivations)


def handlers(_runtime=None) -> dict[str, Handler]:
    """The event types the supplier gateway consumes (the catalogue's ``consumers``) and their
    handlers."""
    return {
        "order.placed": order_placed,
        "payment.confirmed": payment_confirmed,
        "order.documents_completed": documents_completed,
        "order.cancelled": order_cancelled,
        "account.deactivated": account_deactivated,
    }
