"""Bodies and small helpers shared by the orders tests."""

from __future__ import annotations

import copy
import json

from sqlalchemy import select

VALID_ORDER = {
    "customer": {
        "first_name": "Émilie",
        "last_name": "Dupont-Lefèvre",
        "email": "emilie@example.org",
        "phone": "06 12 34 56 78",
    },
    "shipping_address": {
        "line1": "1 rue de la Paix",
        "postal_code": "75002",
        "city": "Paris",
        "country": "FR",
    },
    "vehicle": {"vin": "VF3ABCDEF12345678", "first_registration_date": "2019-05-14"},
    "payment_method": "card",
}


def order_body(**changes) -> dict:
    body = copy.deepcopy(VALID_ORDER)
    for path, value in changes.items():
        node = body
        parts = path.split("__")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        if value is ...:
            node.pop(parts[-1], None)
        else:
            node[parts[-1]] = value
    return body


def outbox_events(rt, event_type: str, subject: str | None = None) -> list[dict]:
    o = rt.outbox
    query = select(o.c.body).where(o.c.event_type == event_type)
    if subject is not None:
        query = query.where(o.c.subject == subject)
    with rt.engine.connect() as conn:
        return [json.loads(b) for b in conn.execute(query.order_by(o.c.seq)).scalars()]


def app_context(rt):
    """The context the API builds for ``rt`` (brands, number allocator, cipher...), built once per
    runtime, for tests that call the use cases directly."""
    from coc_orders.entrypoints.context import OrdersApp

    if getattr(rt, "_orders_app", None) is None:
        rt._orders_app = OrdersApp.build(rt)
    return rt._orders_app


def place_order(rt, body: dict | None = None, **kwargs):
    """``PlaceOrder`` through the use case as the API runs it (``app_context(rt)``); returns the
    ``PlacedOrder``. ``kwargs``: the command's other fields (account_id, idempotency_key...)."""
    from coc_orders.entrypoints.schemas import OrderRequestSchema
    from coc_orders.service_layer.orders import PlaceOrder
    from coc_orders.service_layer.orders import place_order as place_order_uc

    app = app_context(rt)
    body = OrderRequestSchema().load(body if body is not None else order_body())
    return place_order_uc(
        rt,
        PlaceOrder(body=body, **kwargs),
        brands=app.brands,
        numbers=app.numbers,
        idempotency_ttl=app.config.idempotency_ttl,
    )


def place(rt, status: str = "placed", **changes) -> str:
    """An order placed through the use case (guest), then put in ``status``; returns its id."""
    from sqlalchemy import update

    from coc_orders.adapters import tables

    order_id = place_order(rt, order_body(**changes)).order.id
    if status != "placed":
        with rt.engine.begin() as conn:
            conn.execute(
                update(tables.orders).where(tables.orders.c.id == order_id).values(status=status)
            )
    return order_id


def order_status(rt, order_id: str) -> str:
    from coc_orders.adapters import tables

    with rt.engine.connect() as conn:
        return conn.execute(
            select(tables.orders.c.status).where(tables.orders.c.id == order_id)
        ).scalar_one()
