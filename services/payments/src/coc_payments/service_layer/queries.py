"""Reads for support staff (nothing is written)."""

from __future__ import annotations

from ..adapters.repository import PaymentDueRepository, ReviewRepository
from ..domain.model import PaymentDue
from .context import Payments


def payment_due(payments: Payments, order_id: str) -> PaymentDue | None:
    with payments.unit_of_work() as uow:
        return PaymentDueRepository(uow).get(order_id)


def review_items(
    payments: Payments,
    status: str | None = "open",
    reason: str | None = None,
    order_id: str | None = None,
    limit: int = 100,
) -> list[dict]:
    """The review list, newest first."""
    with payments.unit_of_work() as uow:
        return ReviewRepository(uow).list(
            status=status, reason=reason, order_id=order_id, limit=limit
        )
