"""Bodies and small helpers shared by the orders tests."""

from __future__ import annotations

import base64
import copy
import os

from sqlalchemy import select

from coc_shared.testing import opened

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
        bodies = conn.execute(query.order_by(o.c.seq)).scalars().all()
    return [opened(rt, b) for b in bodies]  # the personal part opened, as a consumer sees it


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
        vies=app.vies.check,
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


# real files, as the parsers want them ------------------------------------------------------------


def pdf_bytes(pages: int = 1, content: bytes = b"", extra: dict | None = None) -> bytes:
    """A PDF of ``pages`` blank pages; ``content``: the first page's content stream, stored
    uncompressed (to make a file of a given size); ``extra``: entries added to the document's
    catalogue (e.g. an /OpenAction)."""
    import io

    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, NameObject

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(595, 842)
    if content:
        stream = DecodedStreamObject()
        stream.set_data(content)
        writer.pages[0][NameObject("/Contents")] = writer._add_object(stream)
    for key, value in (extra or {}).items():
        writer._root_object[NameObject(key)] = value
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def pdf_of_size(size: int) -> bytes:
    """A valid one-page PDF of exactly ``size`` bytes (its content stream is spaces)."""
    spaces = size - len(pdf_bytes(content=b" "))
    for _ in range(5):  # the stream's /Length (and so the offsets after it) grows with it
        padded = pdf_bytes(content=b" " * spaces)
        if len(padded) == size:
            return padded
        spaces -= len(padded) - size
    raise AssertionError(f"no PDF of {size} bytes")


def image_bytes(image_format: str = "JPEG", size=(64, 48), mode: str = "RGB") -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new(mode, size, color=120 if mode in ("L", "1") else (200, 30, 60)).save(
        out, image_format
    )
    return out.getvalue()


# Settings of the tests (imported by conftest.py and the tests: test modules never import
# conftest, whose name every test folder shares).
CUSTOMER_SECRET = "customer-secret-" + "y" * 32
DOCUMENT_KEY = base64.b64encode(b"k" * 32).decode()
DOCUMENT_LINK_SECRET = "document-link-secret-" + "z" * 32
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
