"""The states of a batch of orders' supplier requests (the console's reconciliation)."""

from __future__ import annotations

from ..adapters.order_states import request_states


def order_states(runtime, order_ids: list[str]) -> list[dict]:
    """One item per order that has a supplier request (an order without one is absent)."""
    with runtime.unit_of_work() as uow:
        return request_states(uow, order_ids)
