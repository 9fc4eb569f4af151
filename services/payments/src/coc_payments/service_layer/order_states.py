"""The states of a batch of orders as payments knows them (the console's reconciliation)."""

from __future__ import annotations

from ..adapters.order_states import payment_states
from .context import Payments


def order_states(payments: Payments, order_ids: list[str]) -> list[dict]:
    """One item per order payments knows (an order it never heard of is absent)."""
    with payments.unit_of_work() as uow:
        found = payment_states(uow, order_ids)
    return [
        {"order_id": order_id, **found[order_id]} for order_id in order_ids if order_id in found
    ]
