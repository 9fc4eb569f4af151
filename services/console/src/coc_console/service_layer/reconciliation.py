"""Stuck orders and the reconciliation, through the services' staff APIs only: the orders
service's stuck list, and every order's status (a page at a time) compared with what payments
and the supplier gateway say of the same page of orders (one call per service and page)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ..adapters.services_client import StaffApiClient
from ..domain.model import InputError, Staff
from ..domain.reconciliation import Disagreement, disagreements

PAGE = 500
# orders one view of the Disagreements page compares (a few seconds; the command compares all)
PAGE_VIEW_ORDERS = 5000
# an order changed more recently than this may have events still in flight between services
SETTLE = timedelta(minutes=10)


def stuck_orders(
    client: StaffApiClient, staff: Staff, after: int = 0, order_id: str | None = None
) -> dict:
    """A page of the orders stuck now (orders' ``GET /v1/staff/orders/stuck``)."""
    params: dict = {"after": str(after), "limit": "200"}
    if order_id:
        params["order_id"] = order_id
    return client.call(
        "orders", "GET", "/v1/staff/orders/stuck", staff.name, staff.role, params=params
    )


def page_after(value: str | None) -> int:
    if not value:
        return 0
    if not value.isdigit() or len(value) > 15:
        raise InputError({"after": "the number to continue after (a whole number)"})
    return int(value)


def settle_of(value: str | None) -> timedelta:
    if not value:
        return SETTLE
    if not value.isdigit() or int(value) > 1440:
        raise InputError({"settle_minutes": "a whole number of minutes from 0 to 1440"})
    return timedelta(minutes=int(value))


@dataclass
class Reconciliation:
    orders_checked: int = 0
    orders_settling: int = 0  # changed too recently to compare
    disagreements: list[Disagreement] = field(default_factory=list)
    next_after: int | None = None  # where to go on (``max_orders`` reached), None: at the end


def reconcile(
    client: StaffApiClient,
    staff: Staff,
    settle: timedelta = SETTLE,
    page: int = PAGE,
    now: datetime | None = None,
    after: int = 0,
    max_orders: int | None = None,
) -> Reconciliation:
    """The disagreements of the orders numbered after ``after`` (all of them, or about
    ``max_orders``: a page view stays within a request's time), ``page`` orders at a time: three
    calls per page (orders' states, then payments' and the gateway's of those orders)."""
    now = now or datetime.now(UTC)
    result = Reconciliation()
    read = 0
    cursor: int | None = after
    while cursor is not None:
        if max_orders is not None and read >= max_orders:
            result.next_after = cursor
            break
        answer = client.call(
            "orders",
            "GET",
            "/v1/staff/order-states",
            staff.name,
            staff.role,
            params={"after": str(cursor), "limit": str(page)},
        )
        read += len(answer["items"])
        orders = [
            o for o in answer["items"] if datetime.fromisoformat(o["updated_at"]) <= now - settle
        ]
        result.orders_settling += len(answer["items"]) - len(orders)
        if orders:
            ids = {"order_ids": [o["order_id"] for o in orders]}
            payments, requests = (
                {
                    item["order_id"]: item
                    for item in client.call(
                        service, "POST", "/v1/staff/order-states", staff.name, staff.role, json=ids
                    )["items"]
                }
                for service in ("payments", "supplier-gateway")
            )
            for order in orders:
                found = disagreements(
                    order, payments.get(order["order_id"]), requests.get(order["order_id"])
                )
                result.disagreements.extend(found)
            result.orders_checked += len(orders)
        cursor = answer["next_after"]
    return result
