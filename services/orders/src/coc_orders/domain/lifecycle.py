"""The order's life as a state machine (no I/O).

placed ──payment.confirmed──► paid ──documents.sent_to_supplier──► sent_to_supplier
  │  ▲                         │                                     │        ▲
  │  └─ payment.confirmed ─┐   │          documents.rejected_by_supplier  documents.sent_to_supplier
  ▼                        │   │                                     ▼        │
payment_failed ◄─payment.failed (again)               supplier_rejected ──────┘
sent_to_supplier ──certificate.received──► certificate_received ──certificate.shipped──► shipped
shipped ──certificate.delivered──► delivered
placed | payment_failed | paid ──order.cancelled──► cancelled   (never once sent to the supplier)
paid | sent_to_supplier | supplier_rejected | cancelled ──refund.completed──► refunded

An event that does not fit the current state (a late ``payment.failed`` after ``paid``, a
``certificate.shipped`` before ``certificate.received``) is not applied: ``transition`` says so and
the caller logs and ignores it.

``documents.rejected_by_supplier`` also makes the order require the requested documents again
(``Order.request_documents_again``): once the customer uploaded a new complete set,
``order.documents_completed`` is emitted again and the supplier-gateway sends the request again.

``refund.completed`` moves the order to ``refunded`` only when the refund gives the sale back:
the whole total, for a reason that ends the sale (``Refund.ends_the_sale``: cancelled after
payment, or the supplier unable to issue); a duplicate payment's refund (the sale stands) or a
partial one is recorded without moving the order (``Order.refund_settled`` decides). A cancelled
order that was paid ends ``refunded`` once its money went back: its life ended with the
cancellation, only its money still moved. The reason comes with ``refund.requested``, which
payments commits before the refund is even tried; should ``refund.completed`` be handled first
(a retried delivery), it is recorded and the ``refund.requested`` that follows settles the order.

Events recorded in the timeline without moving the order (``RECORDED_ONLY``):
``payment.refunded`` — a refund or a charge-back is a fact about the money, not a step of the
order's life; ``supplier.request_overdue`` — the supplier is late, which staff follow up;
``supplier.request_accepted`` — the supplier took the request on (the order stays
``sent_to_supplier`` until the certificate comes); ``invoice.issued`` — the invoice or a credit
note is ready to download; ``refund.failed`` — the provider refused a refund (staff try it
again); ``order.stuck`` — the orders service's own report of an order past its state's
deadline (``domain.stuck``). A ``payment.refunded``
normally follows a cancellation (the order is ``cancelled`` already); any
other refund or reversal is on the payments service's review list, where staff decide what
becomes of the order. So no status is changed, and the timeline shows it as ``recorded``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    PLACED = "placed"
    PAYMENT_FAILED = "payment_failed"
    PAID = "paid"
    SENT_TO_SUPPLIER = "sent_to_supplier"
    SUPPLIER_REJECTED = "supplier_rejected"
    CERTIFICATE_RECEIVED = "certificate_received"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


S = Status
# event type -> {status before: status after}
TRANSITIONS: dict[str, dict[Status, Status]] = {
    "payment.confirmed": {S.PLACED: S.PAID, S.PAYMENT_FAILED: S.PAID},
    "payment.failed": {S.PLACED: S.PAYMENT_FAILED, S.PAYMENT_FAILED: S.PAYMENT_FAILED},
    "documents.sent_to_supplier": {
        S.PAID: S.SENT_TO_SUPPLIER,
        S.SUPPLIER_REJECTED: S.SENT_TO_SUPPLIER,
    },
    "documents.rejected_by_supplier": {S.SENT_TO_SUPPLIER: S.SUPPLIER_REJECTED},
    "certificate.received": {S.SENT_TO_SUPPLIER: S.CERTIFICATE_RECEIVED},
    "certificate.shipped": {S.CERTIFICATE_RECEIVED: S.SHIPPED},
    "certificate.delivered": {S.SHIPPED: S.DELIVERED},
    "order.cancelled": {S.PLACED: S.CANCELLED, S.PAYMENT_FAILED: S.CANCELLED, S.PAID: S.CANCELLED},
    # only a refund that gives the sale back (Order.refund_settled), before the certificate came
    "refund.completed": {
        S.PAID: S.REFUNDED,
        S.SENT_TO_SUPPLIER: S.REFUNDED,
        S.SUPPLIER_REJECTED: S.REFUNDED,
        S.CANCELLED: S.REFUNDED,
    },
}
FINAL = frozenset({S.DELIVERED, S.CANCELLED, S.REFUNDED})
# documents are taken until the certificate left (then nothing can use them any more)
NO_MORE_DOCUMENTS = frozenset({S.SHIPPED, S.DELIVERED, S.CANCELLED, S.REFUNDED})
# event types recorded in the order's timeline that never change its status
RECORDED_ONLY = (
    "payment.refunded",
    "supplier.request_overdue",
    "supplier.request_accepted",
    "invoice.issued",
    "refund.failed",
    "order.stuck",
)


@dataclass(frozen=True)
class Transition:
    event_type: str
    before: Status
    after: Status | None  # None: the event does not fit the state and is ignored

    @property
    def applied(self) -> bool:
        return self.after is not None


def transition(current: Status | str, event_type: str) -> Transition:
    current = Status(current)
    if event_type not in TRANSITIONS:
        raise ValueError(f"{event_type!r} does not move an order")
    return Transition(event_type, current, TRANSITIONS[event_type].get(current))


def can_cancel(current: Status | str) -> bool:
    return transition(current, "order.cancelled").applied


def why_not_cancellable(current: Status | str) -> str | None:
    """Why an order in ``current`` cannot be cancelled (for the customer), or None when it can."""
    current = Status(current)
    if can_cancel(current):
        return None
    if current == S.CANCELLED:
        return "this order is already cancelled"
    if current == S.REFUNDED:
        return "this order was refunded"
    if current in (S.SHIPPED, S.DELIVERED):
        return "this order can no longer be cancelled: its certificate was shipped"
    return "this order can no longer be cancelled: it was already sent to the supplier"


def accepts_documents(current: Status | str) -> bool:
    """Documents are taken until the order's life is over (cancelled, certificate shipped)."""
    return Status(current) not in NO_MORE_DOCUMENTS
