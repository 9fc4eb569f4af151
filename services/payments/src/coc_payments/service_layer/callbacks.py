"""Use cases of the providers' notifications: the card page's (Systempay), PayPal's webhooks and the
business bank's transaction webhook.

Each is one linear unit of work::

    verify (pure, before any transaction) → claim the notification id → lock and read the payment
    → decide (domain) → register the writes and events → register the callback's audit row → commit

The claim is an immediate ``INSERT … ON CONFLICT DO NOTHING``: a concurrent delivery of the same
notification waits on the key, then finds it claimed and is a ``duplicate`` that changes nothing.
The callback's audit row is written once, with its final verdict; its id is drawn before
(``Payments.callback_ids``) because the claim and the confirmation name it. A call whose proof is
wrong is recorded alone (``rejected``), in a unit of work of its own.

The answer is sent after the commit, so an answered notification has been durably recorded *and*
applied. Use cases return a ``CallbackResult``; the entrypoint maps it to HTTP.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from coc_shared.envelope import utcnow
from coc_shared.logging import get_logger

from ..adapters.bank import Credit
from ..adapters.hosted_page import BadSignature, HostedPaymentPage
from ..adapters.paypal import (
    CAPTURE_KINDS,
    PayPalClient,
    PayPalWebhooks,
    ProviderError,
    capture_notification,
)
from ..adapters.repository import CallbackRepository, PaymentDueRepository, PayPalOrderRepository
from ..config import NotConfigured
from ..domain.callbacks import DUPLICATE, Callback
from ..domain.model import PaymentDue
from ..domain.payments import RECORD
from .context import Payments
from .reports import apply_credit, apply_report

log = get_logger(__name__)
ORDER_APPROVED = "CHECKOUT.ORDER.APPROVED"


@dataclass(frozen=True)
class CallbackResult:
    """What became of a provider's call: ``received`` (with the ``outcome``), ``duplicate`` or
    ``ignored`` (it changed nothing), ``rejected`` (its proof is wrong or missing), ``unreadable``
    (signed, but not a notification we can read), ``try_again`` (it could not be handled now: the
    provider delivers it again; ``outcome`` says what failed: ``unverified`` or
    ``capture_failed``)."""

    status: str
    outcome: str | None = None
    reason: str | None = None

    @classmethod
    def received(cls, outcome: str | None = None) -> CallbackResult:
        return cls("received", outcome)

    @classmethod
    def duplicate(cls) -> CallbackResult:
        return cls("duplicate")

    @classmethod
    def ignored(cls) -> CallbackResult:
        return cls("ignored")

    @classmethod
    def rejected(cls, reason: str) -> CallbackResult:
        return cls("rejected", reason=reason)

    @classmethod
    def unreadable(cls, reason: str) -> CallbackResult:
        return cls("unreadable", reason=reason)

    @classmethod
    def try_again(cls, what: str, reason: str) -> CallbackResult:
        return cls("try_again", what, reason)


def _new_callback(payments: Payments, provider: str, headers: dict, body: bytes) -> Callback:
    return Callback(
        id=payments.callback_ids.next(),
        provider=provider,
        received_at=utcnow(),
        headers=headers,
        body=body,
    )


def _record_alone(payments: Payments, callback: Callback) -> None:
    """A call that applies nothing: its audit row only (one statement)."""
    with payments.unit_of_work() as uow:
        CallbackRepository(uow).add(callback)
        uow.commit()


def _conclude(
    callback: Callback, outcome: str, order_id: str | None = None, detail: str | None = None
) -> Callback:
    """A duplicate keeps its verdict and names only the callback it repeats."""
    return (
        callback if callback.verdict == DUPLICATE else callback.concluded(outcome, order_id, detail)
    )


# --------------------------------------------------------------------------- card (Systempay)
def receive_card_notification(
    payments: Payments,
    page: HostedPaymentPage,
    pairs: list[tuple[str, str]],
    headers: dict,
    body: bytes,
) -> CallbackResult:
    """The card page's notification (IPN): verified, claimed, applied to the order it names."""
    callback = _new_callback(payments, page.provider, headers, body)
    try:
        notification = page.verify_notification(pairs)
    except BadSignature as exc:
        _record_alone(payments, callback.rejected(str(exc)))
        return CallbackResult.rejected(str(exc))
    callback = callback.keyed(notification.dedupe_key)
    with payments.unit_of_work() as uow:
        callbacks = CallbackRepository(uow)
        earlier = callbacks.claim(page.provider, notification.dedupe_key, callback.id)
        if earlier is not None:
            callbacks.add(callback.duplicate_of(earlier))
            uow.commit()
            return CallbackResult.duplicate()
        due = PaymentDueRepository(uow).by_number(notification.order_number or "", lock=True)
        decision = apply_report(uow, notification.report, due, callback.id)
        callbacks.add(
            callback.concluded(decision.action, due.order_id if due else None, decision.reason)
        )
        uow.commit()
    return CallbackResult.received(decision.action)


# --------------------------------------------------------------------------- PayPal
def receive_paypal_webhook(
    payments: Payments,
    webhooks: PayPalWebhooks,
    paypal: Callable[[], PayPalClient],
    headers,
    raw: bytes,
    body: bytes,
    audit_headers: dict,
) -> CallbackResult:
    """A PayPal webhook: verified, claimed, applied.

    ``CHECKOUT.ORDER.APPROVED`` decides a capture, which this use case runs itself *after* the
    commit (a call to PayPal, outside any transaction; ``paypal`` gives the client): when it fails
    the result is ``try_again``, and PayPal's next delivery of the webhook (a duplicate, which
    still requests the capture while the PayPal order is not captured) tries again; PayPal
    captures an order once whatever the number of calls (one request id per order).
    ``PAYMENT.CAPTURE.*`` webhooks confirm, fail or reverse the payment."""
    callback = _new_callback(payments, "paypal", audit_headers, body)
    try:
        doc = webhooks.verify(headers, raw)
    except BadSignature as exc:
        _record_alone(payments, callback.rejected(str(exc)))
        return CallbackResult.rejected(str(exc))
    except ProviderError as exc:  # PayPal's certificate could not be fetched now
        _record_alone(payments, callback.unverified(str(exc)))
        return CallbackResult.try_again("unverified", str(exc))
    callback = callback.keyed(doc["id"])
    with payments.unit_of_work() as uow:
        earlier = CallbackRepository(uow).claim("paypal", doc["id"], callback.id)
        if earlier is not None:
            callback = callback.duplicate_of(earlier)
        callback, result, capture = _apply_webhook(uow, doc, callback)
        CallbackRepository(uow).add(callback)
        uow.commit()
    if capture is not None:
        try:
            capture_paypal_order(payments, paypal, capture)
        except (ProviderError, NotConfigured) as exc:
            log.warning("paypal.capture_failed", paypal_order_id=capture, error=str(exc))
            return CallbackResult.try_again("capture_failed", str(exc))
    return result


def _apply_webhook(
    uow, doc: dict, callback: Callback
) -> tuple[Callback, CallbackResult, str | None]:
    """Returns the concluded audit record, the result, and the PayPal order to capture (or None)."""
    event_type = doc["event_type"]
    if event_type == ORDER_APPROVED:
        return _order_approved(uow, doc, callback)
    if callback.verdict == DUPLICATE:
        return callback, CallbackResult.duplicate(), None
    if event_type in CAPTURE_KINDS:
        callback, result = _capture_reported(uow, doc, callback)
        return callback, result, None
    return (
        callback.concluded(RECORD, detail=f"not handled: {event_type}"),
        CallbackResult.received(),
        None,
    )


def _order_approved(
    uow, doc: dict, callback: Callback
) -> tuple[Callback, CallbackResult, str | None]:
    paypal_order_id = (doc.get("resource") or {}).get("id")
    orders = PayPalOrderRepository(uow)
    row = orders.get(paypal_order_id, lock=True) if paypal_order_id else None
    if row is None:
        return _conclude(callback, "unknown_paypal_order"), CallbackResult.ignored(), None
    due = PaymentDueRepository(uow).get(row["order_id"], lock=True)
    capturable = row["status"] in ("created", "approved")
    if capturable:
        orders.update(paypal_order_id, status="approved")
    if capturable and due is not None and due.cancelled:
        # Cancelled after the checkout: take no money (an approved PayPal order that is never
        # captured expires at PayPal by itself).
        log.warning("paypal.not_captured", order_id=row["order_id"], reason="order_cancelled")
        return (
            _conclude(callback, "not_captured", row["order_id"], "order_cancelled"),
            CallbackResult.received("not_captured"),
            None,
        )
    return (
        _conclude(callback, "capture_requested", row["order_id"]),
        CallbackResult.received("capture_requested"),
        paypal_order_id if capturable else None,
    )


def _capture_reported(uow, doc: dict, callback: Callback) -> tuple[Callback, CallbackResult]:
    notification, paypal_order_id = capture_notification(doc)
    due = _paypal_due(uow, notification.order_number, paypal_order_id)
    decision = apply_report(uow, notification.report, due, callback.id)
    if paypal_order_id and notification.report.kind in ("succeeded", "pending"):
        PayPalOrderRepository(uow).update(
            paypal_order_id,
            status="captured",
            capture_id=notification.report.provider_transaction_id,
            capture_status=doc["resource"].get("status"),
        )
    return (
        callback.concluded(decision.action, due.order_id if due else None, decision.reason),
        CallbackResult.received(decision.action),
    )


def _paypal_due(uow, order_number: str | None, paypal_order_id: str | None) -> PaymentDue | None:
    """The payment a capture is about (locked): by our order number, else by PayPal's order id."""
    dues = PaymentDueRepository(uow)
    due = dues.by_number(order_number, lock=True) if order_number else None
    if due is None and paypal_order_id:
        row = PayPalOrderRepository(uow).get(paypal_order_id)
        if row is not None:
            due = dues.get(row["order_id"], lock=True)
    return due


def capture_paypal_order(
    payments: Payments, paypal: Callable[[], PayPalClient], paypal_order_id: str
) -> None:
    """Capture an approved PayPal order (idempotent: one PayPal-Request-Id per order). The
    confirmation itself comes with the PAYMENT.CAPTURE.COMPLETED webhook."""
    capture = paypal().capture(paypal_order_id)
    with payments.unit_of_work() as uow:
        PayPalOrderRepository(uow).update(
            paypal_order_id,
            status="captured",
            capture_id=capture.capture_id,
            capture_status=capture.status,
        )
        uow.commit()
    log.info("paypal.captured", paypal_order_id=paypal_order_id, capture_status=capture.status)


# --------------------------------------------------------------------------- the business bank
def receive_bank_webhook(
    payments: Payments,
    verify: Callable[[], None],
    parse: Callable[[bytes], tuple[Credit, str]],
    headers: dict,
    raw: bytes,
    body: bytes,
) -> CallbackResult:
    """The bank's transaction webhook: ``verify()`` checks its signature, ``parse(raw)`` reads the
    credit and its notification id; a credit is matched to an order by its RF reference."""
    callback = _new_callback(payments, "qonto", headers, body)
    try:
        verify()
        credit, dedupe_key = parse(raw)
    except BadSignature as exc:
        _record_alone(payments, callback.rejected(str(exc)))
        return CallbackResult.rejected(str(exc))
    except (ValueError, TypeError, AttributeError) as exc:
        _record_alone(payments, callback.unreadable(str(exc)))
        return CallbackResult.unreadable(str(exc))
    callback = callback.keyed(dedupe_key)
    with payments.unit_of_work() as uow:
        callbacks = CallbackRepository(uow)
        earlier = callbacks.claim("qonto", dedupe_key, callback.id)
        if earlier is not None:
            callbacks.add(callback.duplicate_of(earlier))
            uow.commit()
            return CallbackResult.duplicate()
        decision, due = apply_credit(uow, credit, callback.id)
        callbacks.add(
            callback.concluded(decision.action, due.order_id if due else None, decision.reason)
        )
        uow.commit()
    return CallbackResult.received(decision.action)
