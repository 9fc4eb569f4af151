"""Event handlers of the payments service: thin, the rules are in ``domain``.

Each acts through the consumer's transaction with the unit-of-work API of its ``HandlerContext``
(repositories read with ``ctx.execute`` and register writes with ``ctx.add``/``ctx.change``); the
inbox already drops a redelivered event, and the repositories record each fact once, so a
handler has one effect per event. An event that cannot be recorded raises
``coc_shared.errors.InvalidEvent`` (a ``PermanentError``: parked at once).
"""

from __future__ import annotations

from dataclasses import replace

from coc_shared.consumer import Handler, HandlerContext
from coc_shared.deactivation import (
    ErasureReport,
    Retained,
    adopt_rows,
    erasure_requested_handler,
)
from coc_shared.envelope import Event
from coc_shared.export import export_requested_handler
from coc_shared.logging import get_logger
from coc_shared.retention import purge_requested_handler

from ..adapters import export, tables
from ..adapters.billing_repository import SaleRepository
from ..adapters.purges import PurgeRepository
from ..adapters.repository import (
    OrderCancellationRepository,
    PaymentDueRepository,
    ReviewRepository,
)
from ..config import PaymentsConfig
from ..domain.billing import INVOICES_LEGAL_BASIS, invoices_kept_until
from ..domain.model import OrderCancellation, PaymentDue
from ..domain.payments import CANCEL, CANCEL_AND_REFUND, on_cancellation, paid_report
from . import archiving, invoicing

log = get_logger(__name__)


def record_payment_due(event: Event, ctx: HandlerContext, config: PaymentsConfig) -> None:
    """``order.placed``: the payment due, and what its invoice will need (``invoicing``)."""
    due = replace(PaymentDue.from_order_placed(event.data), correlation_id=event.correlation_id)
    if OrderCancellationRepository(ctx).cancelled(due.order_id):
        # order.cancelled was handled first (e.g. this event came back from a delayed retry)
        due = due.cancelled_now()
    PaymentDueRepository(ctx).add(due, event_id=event.id)
    invoicing.record_sale(ctx, event, config)


def cancel_payment(event: Event, ctx: HandlerContext) -> None:
    """``order.cancelled``: the payment is no longer due; one already paid goes to the review list
    to be refunded. Recorded even before the payment row exists (see ``record_payment_due``)."""
    cancellation = OrderCancellation.from_message(event.id, event.occurred_at, event.data)
    OrderCancellationRepository(ctx).add(cancellation)
    dues = PaymentDueRepository(ctx)
    due = dues.get(cancellation.order_id, lock=True)
    if due is None:
        log.info("payment.cancelled_before_due", order_id=cancellation.order_id)
        return
    decision = on_cancellation(due)
    if decision.action in (CANCEL, CANCEL_AND_REFUND):
        dues.save(due, due.cancelled_now())
    if decision.action == CANCEL_AND_REFUND:
        ReviewRepository(ctx).add(decision.reason, paid_report(due), due.order_id, None)
        log.warning(
            "payment.refund_needed",
            order_id=due.order_id,
            reason=decision.reason,
            provider=due.paid_provider,
        )
    log.info(
        "payment.order_cancelled", order_id=due.order_id, before=due.status, outcome=decision.action
    )


def erase_account(ctx, deactivation, config: PaymentsConfig) -> ErasureReport:
    """An erased account: the buyer details kept for invoices not issued (never paid) go; issued
    invoices and credit notes move to the invoice archive (kept ten years, Code de commerce
    L123-22, readable by the archive role only: ``archiving``), which the report says; the raw
    provider notifications and review labels of its orders are emptied."""
    account_id = deactivation.account_id
    sales, purges = SaleRepository(ctx), PurgeRepository(ctx)
    order_ids = sorted(
        {*purges.orders_of(account_id), *sales.orders_of(account_id), *deactivation.order_ids}
    )
    archiving.require_issued(ctx, order_ids)  # before any sale goes
    erased = {"uninvoiced_sales": sales.erase_uninvoiced(account_id)}
    last_invoice = sales.last_invoice_issued_at(account_id)
    erased.update(archiving.archive_account(ctx, config, account_id, deactivation.erased_at))
    erased.update(purges.empty_for_orders(order_ids))
    retained = ()
    if last_invoice is not None:
        until = invoices_kept_until(last_invoice)
        retained = (Retained("invoices", INVOICES_LEGAL_BASIS, until),)
    return ErasureReport(erased=erased, retained=retained)


def empty_old_callbacks(uow, cutoff) -> int:
    """The retention schedule's end for provider notifications: their raw bodies go."""
    return PurgeRepository(uow).empty_callbacks(cutoff)


def handlers(runtime=None) -> dict[str, Handler]:
    """The event types the payments service consumes (the catalogue's ``consumers``) and their
    handlers. Its own ``payment.confirmed`` comes back to it to issue the order's invoice."""
    config = runtime.config if runtime is not None else PaymentsConfig.from_env()
    return {
        "order.placed": lambda event, ctx: record_payment_due(event, ctx, config),
        "order.cancelled": cancel_payment,
        "payment.confirmed": lambda event, ctx: invoicing.issue_invoice(event, ctx, config),
        "account.erasure_requested": erasure_requested_handler(
            tables.account_deactivations,
            lambda ctx, deactivation: erase_account(ctx, deactivation, config),
            adopt_rows(tables.sales),
        ),
        "account.export_requested": export_requested_handler(export.collect),
        "retention.purge_requested": purge_requested_handler(
            {
                "provider_callbacks": lambda uow, cutoff: PurgeRepository(uow).empty_callbacks(
                    cutoff
                )
            },
            runtime,
        ),
    }
