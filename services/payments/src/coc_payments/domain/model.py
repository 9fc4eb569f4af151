"""What the payments service knows, as plain values (no I/O).

A placed order makes a payment due: its number, the method the customer chose and the amount.
A cancelled order's payment is no longer due (``cancelled``): nothing can be paid for it any more,
and money that arrives all the same is reviewed for a refund (see ``domain.payments``).
Nothing personal is kept here (no name, e-mail or address: the order's ``personal`` part is
never read), so the payment records need no erasure when an account is deactivated.

A payment changes state only through its methods (``paid``, ``failed``, ``cancelled_now``), which
return the new value; the service layer decides with ``domain.payments`` which one applies and
saves the change guarded by the state it read under the row lock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime

from coc_shared.errors import InvalidEvent
from coc_shared.tokens import access_token_matches
from coc_shared.transfer import creditor_reference
from coc_shared.values import aware_datetime

PAYMENT_METHODS = ("card", "paypal", "transfer")
DUE, FAILED, PAID, CANCELLED = "due", "failed", "paid", "cancelled"
CANCELLED_BY = ("customer", "staff")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


__all__ = [
    "InvalidEvent",
    "PaymentDue",
    "OrderCancellation",
    "NotPayable",
    "OrderCancelled",
    "AlreadyPaid",
]


class NotPayable(Exception):
    """Nothing is to be paid for this order (any more)."""


class OrderCancelled(NotPayable):
    """The order was cancelled: nothing is to be paid."""


class AlreadyPaid(NotPayable):
    """The order is paid already."""


@dataclass(frozen=True)
class PaymentDue:
    """The payment an order awaits. One per order: a second ``order.placed`` of the same order
    changes nothing."""

    order_id: str
    order_number: str
    method: str
    amount_cents: int
    currency: str
    status: str = DUE  # due | failed (may pay again) | paid | cancelled (the order was cancelled)
    account_id: str | None = None
    access_token_sha256: str | None = None
    reference: str | None = None  # ISO 11649 creditor reference of a transfer
    correlation_id: str | None = None
    paid_provider: str | None = None
    paid_transaction_id: str | None = None

    def __post_init__(self):
        if not self.order_id or not self.order_number:
            raise InvalidEvent("a payment due needs an order id and an order number")
        if self.method not in PAYMENT_METHODS:
            raise InvalidEvent(f"unknown payment method {self.method!r}")
        if (
            isinstance(self.amount_cents, bool)
            or not isinstance(self.amount_cents, int)
            or self.amount_cents < 0
        ):
            raise InvalidEvent(
                f"the amount must be a whole number of cents >= 0, not {self.amount_cents!r}"
            )
        if not isinstance(self.currency, str) or not _CURRENCY.match(self.currency):
            raise InvalidEvent(f"the currency must be an ISO 4217 code, not {self.currency!r}")

    @classmethod
    def from_order_placed(cls, data: dict) -> PaymentDue:
        """Built from the ``data`` part of ``order.placed`` only (its ``personal`` part is not
        needed)."""
        total = data.get("total")
        if not isinstance(total, dict):
            raise InvalidEvent("order.placed carries no total")
        order_number = data.get("order_number") or ""
        return cls(
            order_id=data.get("order_id") or "",
            order_number=order_number,
            method=data.get("payment_method"),
            amount_cents=total.get("amount_cents"),
            currency=total.get("currency"),
            account_id=data.get("account_id") or None,
            access_token_sha256=data.get("access_token_sha256") or None,
            reference=creditor_reference(order_number) if order_number else None,
        )

    @property
    def payable(self) -> bool:
        return self.status in (DUE, FAILED)

    def ensure_payable(self) -> None:
        """Raises ``OrderCancelled`` or ``AlreadyPaid`` when the customer may not pay (again)."""
        if self.cancelled:
            raise OrderCancelled(self.order_id)
        if not self.payable:
            raise AlreadyPaid(self.order_id)

    def visible_to(self, account_id: str | None, order_token: str | None) -> bool:
        """The owner's account, or whoever holds the order's access token, may see and pay it."""
        return (account_id is not None and self.account_id == account_id) or access_token_matches(
            order_token, self.access_token_sha256
        )

    # state changes (the service layer decides which applies: ``domain.payments``)
    def paid(self, provider: str, provider_transaction_id: str) -> PaymentDue:
        self.ensure_payable()
        return replace(
            self, status=PAID, paid_provider=provider, paid_transaction_id=provider_transaction_id
        )

    def failed(self) -> PaymentDue:
        """A failed attempt: the customer may pay again."""
        self.ensure_payable()
        return replace(self, status=FAILED)

    def cancelled_now(self) -> PaymentDue:
        """The order was cancelled: no longer due (what was paid stays recorded, to be refunded)."""
        return replace(self, status=CANCELLED)

    @property
    def cancelled(self) -> bool:
        return self.status == CANCELLED

    def paid_by(self, provider: str, provider_transaction_id: str) -> bool:
        """True when this provider's transaction is the one that paid the order (before or after
        a cancellation)."""
        return (
            self.paid_transaction_id is not None
            and self.paid_provider == provider
            and self.paid_transaction_id == provider_transaction_id
        )


@dataclass(frozen=True)
class OrderCancellation:
    """An order the orders service cancelled (``order.cancelled``). Its free-text reason is not
    kept: payments has no use for it."""

    order_id: str
    event_id: str
    cancelled_by: str
    cancelled_at: datetime

    @classmethod
    def from_message(
        cls, event_id: str, occurred_at: datetime | str, data: dict
    ) -> OrderCancellation:
        order_id = data.get("order_id")
        if not isinstance(order_id, str) or not order_id:
            raise InvalidEvent("order.cancelled carries no order_id")
        cancelled_by = data.get("cancelled_by")
        if cancelled_by not in CANCELLED_BY:
            raise InvalidEvent(
                f"order.cancelled: cancelled_by must be one of {', '.join(CANCELLED_BY)}"
            )
        return cls(
            order_id=order_id,
            event_id=event_id,
            cancelled_by=cancelled_by,
            cancelled_at=aware_datetime(occurred_at, "occurred_at", InvalidEvent),
        )
