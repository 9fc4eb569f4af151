"""Event handlers of the orders service: thin, the rules are in ``domain``.

Each runs inside the consumer's transaction through the unit-of-work API of its context
(``ctx.execute`` to read, ``ctx.add``/``ctx.change`` to register writes); the inbox already drops
a redelivered event, and the timeline records each event once, so a handler has one effect per
event.

A lifecycle event moves the order when it fits its state (``domain.lifecycle``); one that does not
fit is logged and recorded as ignored, never applied; a ``payment.confirmed`` whose amount and
currency are not the order's total pays nothing: it is recorded as ``amount_mismatch`` and logged
as an error (``Order.payment_refusal``); one for an order this service does not know
is parked (``PermanentError``): the order is always stored before any other service hears of it.
An event whose content cannot be recorded raises ``InvalidEvent`` (a ``PermanentError`` too).
``documents.rejected_by_supplier``, when applied, also makes the order require the requested
documents again (the ones uploaded of those kinds no longer count). ``payment.refunded``,
``supplier.request_accepted``, ``supplier.request_overdue``, ``invoice.issued`` and
``refund.failed`` are recorded in the timeline and move nothing (``lifecycle.RECORDED_ONLY``).
``refund.requested`` and ``refund.completed`` keep the refund (``Refund``, by its id) and are
recorded in the timeline: once it is both known and completed, ``Order.refund_settled`` says
whether the order is ``refunded`` (whichever of the two events came last shows it).
``account.deactivated`` is recorded once (``coc_shared.deactivation``) and erases the files of the
account's orders' documents (``supplier_documents.erase_account_documents``).
"""

from __future__ import annotations

from coc_shared.consumer import Handler, HandlerContext
from coc_shared.deactivation import adopt_rows, erasure_requested_handler
from coc_shared.documents import open_store
from coc_shared.envelope import Event, utcnow
from coc_shared.errors import PermanentError
from coc_shared.export import export_requested_handler
from coc_shared.logging import get_logger
from coc_shared.retention import purge_requested_handler

from ..adapters import export, tables
from ..adapters.repository import (
    DocumentRepository,
    OrderEventRepository,
    OrderRepository,
    RefundRepository,
)
from ..domain.model import (
    LIFECYCLE_MILESTONES,
    RECORDED_FACTS,
    REFUND_EVENTS,
    Order,
    OrderEvent,
    Refund,
)
from .erasure import account_erasure
from .inactivity import apply_inactivity
from .purges import purges
from .supplier_documents import erase_account_documents

log = get_logger(__name__)


def _order_of(ctx: HandlerContext, event: Event, order_id: str) -> Order:
    order = OrderRepository(ctx).get(order_id, lock=True)
    if order is None:
        raise PermanentError(f"{event.type} for an unknown order {order_id}")
    return order


def apply_order_event(event: Event, ctx: HandlerContext) -> None:
    order_event = OrderEvent.from_message(event.id, event.type, event.occurred_at, event.data)
    timeline = OrderEventRepository(ctx)
    if timeline.seen(order_event.event_id):
        return
    order = _order_of(ctx, event, order_event.order_id)
    if event.type == "payment.confirmed":
        refusal = order.payment_refusal(event.data.get("amount"))
        if refusal is not None:
            _payment_refused(order, event, refusal)
            timeline.add(order_event, outcome=refusal, status_after=None)
            return
    result = order.apply(event.type)
    if result.applied:
        if event.type == "documents.rejected_by_supplier":
            _documents_requested_again(ctx, order, event)
        OrderRepository(ctx).save_status(order)
        log.info(
            "order.status_changed",
            order_id=order.id,
            event_type=event.type,
            before=result.before.value,
            after=order.status,
        )
    else:
        log.warning(
            "order.event_ignored",
            order_id=order.id,
            event_type=event.type,
            status=order.status,
            reason="does not fit the order's state",
        )
    timeline.add(
        order_event,
        outcome="applied" if result.applied else "ignored",
        status_after=order.status if result.applied else None,
    )


def _payment_refused(order: Order, event: Event, refusal: str) -> None:
    amount = event.data.get("amount") if isinstance(event.data.get("amount"), dict) else {}
    log.error(
        "order.payment_refused",
        order_id=order.id,
        event_id=event.id,
        reason=refusal,
        status=order.status,
        expected_cents=order.total_cents,
        expected_currency=order.currency,
        confirmed_cents=amount.get("amount_cents"),
        confirmed_currency=amount.get("currency"),
        provider=event.data.get("provider"),
        provider_transaction_id=event.data.get("provider_transaction_id"),
    )


def _documents_requested_again(ctx: HandlerContext, order: Order, event: Event) -> None:
    documents = DocumentRepository(ctx)
    requested = event.data.get("documents_requested") or []
    kinds = order.request_documents_again(requested)
    refused = [d for d in documents.for_order(order.id) if d.valid and d.kind in kinds]
    documents.reject(refused, utcnow())
    log.info(
        "order.documents_requested_again",
        order_id=order.id,
        kinds=kinds,
        documents_refused=len(refused),
        unknown_kinds=sorted(set(requested) - set(kinds)) or None,
    )


def apply_refund_event(event: Event, ctx: HandlerContext) -> None:
    """``refund.requested`` or ``refund.completed``: the refund learns it; the order is
    ``refunded`` when the refund, now known and completed, gave the sale back."""
    order_event = OrderEvent.from_message(event.id, event.type, event.occurred_at, event.data)
    timeline = OrderEventRepository(ctx)
    if timeline.seen(order_event.event_id):
        return
    order = _order_of(ctx, event, order_event.order_id)  # locked: the order's refunds one by one
    refunds = RefundRepository(ctx)
    known = refunds.get(str(event.data.get("refund_id") or ""))
    refund = Refund.learn(known, event.type, event.data, order_event.occurred_at)
    if known is None:
        refunds.add(refund)
    else:
        refunds.save(refund)
    result = order.refund_settled(refund)
    if result is None:
        outcome, status_after = "recorded", None
    elif result.applied:
        OrderRepository(ctx).save_status(order)
        outcome, status_after = "applied", order.status
        log.info(
            "order.status_changed",
            order_id=order.id,
            event_type=event.type,
            before=result.before.value,
            after=order.status,
            refund_id=refund.refund_id,
        )
    else:
        outcome, status_after = "ignored", None
        log.warning(
            "order.event_ignored",
            order_id=order.id,
            event_type=event.type,
            status=order.status,
            reason="the sale was given back in a state that cannot be refunded",
            refund_id=refund.refund_id,
        )
    log.info(
        "order.refund_recorded",
        order_id=order.id,
        event_type=event.type,
        refund_id=refund.refund_id,
        reason=refund.reason,
        refund_status=refund.status,
    )
    timeline.add(order_event, outcome=outcome, status_after=status_after)


def record_order_fact(event: Event, ctx: HandlerContext) -> None:
    """An event of the order's story that moves nothing (``lifecycle.RECORDED_ONLY``): timeline
    only."""
    order_event = OrderEvent.from_message(event.id, event.type, event.occurred_at, event.data)
    timeline = OrderEventRepository(ctx)
    if timeline.seen(order_event.event_id):
        return
    order = _order_of(ctx, event, order_event.order_id)
    log.info(
        "order.fact_recorded",
        order_id=order.id,
        event_type=event.type,
        status=order.status,
        kind=event.data.get("kind"),
    )
    timeline.add(order_event, outcome="recorded", status_after=None)


def document_store(runtime):
    """The document store, opened at its first use; None without a runtime (unit tests)."""
    if runtime is None or runtime.config is None:
        return None
    store = {}

    def storage():
        if "store" not in store:
            store["store"] = open_store(runtime.config.store, runtime.settings.embedded)
        return store["store"]

    return storage


def document_erasure(runtime):
    """``account.erasure_requested``'s erasure of documents: the files of the account's orders'
    documents are deleted from the store and the documents marked erased (a supplier's link to
    one answers 404). Without a runtime (unit tests) nothing is erased."""
    storage = document_store(runtime)
    if storage is None:
        return None

    def erase(uow, deactivation) -> int:
        erased = erase_account_documents(storage, uow, deactivation.account_id)
        if erased:
            log.info(
                "account.documents_erased", account_id=deactivation.account_id, documents=erased
            )
        return erased

    return erase


def handlers(runtime=None) -> dict[str, Handler]:
    """The event types the orders service consumes (the catalogue's ``consumers``) and their
    handlers."""
    table: dict[str, Handler] = {
        event_type: apply_order_event for event_type in LIFECYCLE_MILESTONES
    }
    table.update({event_type: record_order_fact for event_type in RECORDED_FACTS})
    table.update({event_type: apply_refund_event for event_type in REFUND_EVENTS})
    table["account.erasure_requested"] = erasure_requested_handler(
        tables.account_deactivations,
        account_erasure(document_erasure(runtime)),
        adopt_rows(tables.orders, "id"),  # a guest's order
    )
    table["account.export_requested"] = export_requested_handler(export.collect)
    table["retention.purge_requested"] = purge_requested_handler(
        purges(document_store(runtime)), runtime, also=apply_inactivity
    )
    return table
