"""Event handlers of the supplier gateway: thin, the rules are in ``domain``.

Each runs inside the consumer's transaction through ``ctx`` (the unit-of-work API); the inbox
already drops a redelivered event, and applying the same fact twice to a supplier request changes
nothing, so a handler has one effect per event. When a request becomes ready, the handler records
it "to send" (a ``supplier_dispatches`` row) in the same transaction: the sender loops send it
(``dispatch``), never the handler.
"""

from __future__ import annotations

from collections.abc import Callable

from coc_shared.consumer import Handler, HandlerContext
from coc_shared.deactivation import ErasureReport, adopt_rows, erasure_requested_handler
from coc_shared.envelope import Event, utcnow
from coc_shared.export import export_requested_handler
from coc_shared.logging import get_logger
from coc_shared.retention import purge_requested_handler

from ..adapters import export, tables
from ..adapters.repository import DispatchRepository, HistoryRepository, SupplierRequestRepository
from ..domain.model import REVIEW, SupplierRequest, order_id_of

log = get_logger(__name__)


def maker_of(vin: str | None) -> str | None:
    """The maker vininfo reads from the VIN's manufacturer code (None when it knows none)."""
    if not vin:
        return None
    try:
        from vininfo import Vin

        return Vin(vin).manufacturer or None
    except Exception:  # vininfo refuses a VIN it cannot read
        return None


def config_of(runtime):
    if runtime is not None and runtime.config is not None:
        return runtime.config
    from ..config import GatewayConfig

    return GatewayConfig.from_env()


def prepare(ctx, request: SupplierRequest, directory, actor: str = "gateway") -> None:
    """Let the directory decide once everything is known: a ready request gets its request id and
    a "to send" row; one that cannot go is put on the review list with the reason."""
    before = request.status
    if request.prepare(directory):
        now = utcnow()
        supplier = directory.get(request.supplier)
        requests = SupplierRequestRepository(ctx)
        requests.add_request_id(request, now)
        DispatchRepository(ctx).add(request, supplier.channel, "request", now)
        HistoryRepository(ctx).add(
            request, "ready", {"supplier": supplier.code, "round": request.round}, actor
        )
        log.info(
            "supplier_request.ready",
            order_id=request.order_id,
            supplier=supplier.code,
            request_id=request.request_id,
            round=request.round,
        )
    elif request.status == REVIEW and before != REVIEW:
        HistoryRepository(ctx).add(request, "review", {"reason": request.review_reason}, actor)
        log.warning(
            "supplier_request.review", order_id=request.order_id, reason=request.review_reason
        )


def _update_request(runtime, change: Callable[[SupplierRequest, Event, object], None]) -> Handler:
    def handle(event: Event, ctx: HandlerContext) -> None:
        config = config_of(runtime)
        requests = SupplierRequestRepository(ctx)
        request = requests.get_or_new(order_id_of(event.type, event.data))
        change(request, event, config)
        prepare(ctx, request, config.directory)
        requests.save(request)

    handle.__name__ = change.__name__
    return handle


def order_placed(request: SupplierRequest, event: Event, config) -> None:
    request.order_was_placed(event.data, event.personal, maker_of(event.data.get("vin")))
    request.keep_only_needed_personal_data(config.directory)


def payment_confirmed(request: SupplierRequest, event: Event, config) -> None:
    request.payment_was_confirmed()


def documents_completed(request: SupplierRequest, event: Event, config) -> None:
    request.documents_were_completed(event.data)


def order_cancelled(request: SupplierRequest, event: Event, config) -> None:
    before = request.status
    if request.order_was_cancelled():
        log.info(
            "supplier_request.cancelled",
            order_id=request.order_id,
            before=before,
            cancelled_by=event.data.get("cancelled_by"),
        )
    else:
        log.error(
            "supplier_request.cancellation_ignored",
            order_id=request.order_id,
            status=request.status,
            reason="the request is with the supplier already",
        )


def erase_personal_data(ctx, deactivation) -> ErasureReport:
    """``account.erasure_requested``: the name and shipping address kept for the account's
    requests are erased (a request still needing them goes on without: staff see it in its
    history). The exchange with the supplier (VIN, dates, tracking) stays as evidence, without
    them (Code de commerce L110-4)."""
    requests = SupplierRequestRepository(ctx)
    history = HistoryRepository(ctx)
    now = utcnow()
    erased = 0
    for request in requests.of_account(deactivation.account_id):
        if request.customer_name is None and request.shipping_address is None:
            continue
        request.erase_personal_data(now)
        requests.save(request)
        history.add(request, "personal_data_erased", {"account_id": deactivation.account_id})
        erased += 1
    return ErasureReport(erased={"names_and_shipping_addresses": erased})


def purge_ended_requests(ctx, cutoff) -> int:
    """The retention schedule's end for the customer's name and address on a request: a year
    after its story ended (delivered or cancelled), they are erased; the exchange stays."""
    requests, history = SupplierRequestRepository(ctx), HistoryRepository(ctx)
    now = utcnow()
    ended = requests.ended_with_personal_data(cutoff)
    for request in ended:
        request.erase_personal_data(now)
        requests.save(request)
        history.add(request, "personal_data_erased", {"reason": "retention"})
    return len(ended)


def handlers(runtime=None) -> dict[str, Handler]:
    """The event types the supplier gateway consumes (the catalogue's ``consumers``) and their
    handlers."""
    return {
        "order.placed": _update_request(runtime, order_placed),
        "payment.confirmed": _update_request(runtime, payment_confirmed),
        "order.documents_completed": _update_request(runtime, documents_completed),
        "order.cancelled": _update_request(runtime, order_cancelled),
        "account.erasure_requested": erasure_requested_handler(
            tables.account_deactivations, erase_personal_data, adopt_rows(tables.supplier_requests)
        ),
        "account.export_requested": export_requested_handler(export.collect),
        "retention.purge_requested": purge_requested_handler(
            {"order_customer": purge_ended_requests}, runtime
        ),
    }
