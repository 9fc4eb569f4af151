"""A guest's erasure, the five services' workers as threads on the real RabbitMQ and PostgreSQL:
a customer who ordered without an account asks, with the order's access token, for their data to
be erased; gdpr runs the same saga as for an account (the order standing for the account); every
service erases the order's personal data and reports; the order stays as evidence without the
person, and the summary is mailed to the order's address."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_deactivation_saga import request_row, services  # noqa: F401 (the fixture)
from trust_kit import order_body

from coc_gdpr.adapters import tables as gdpr_tables
from coc_notifications.adapters import tables as notifications_tables
from coc_orders.adapters import tables as orders_tables
from coc_shared.catalogue import ERASING_SERVICES
from coc_shared.testing import wait_until
from coc_supplier_gateway.adapters import tables as gateway_tables


def test_a_guest_erases_the_data_of_its_order_with_the_order_token(services):  # noqa: F811
    orders = services["orders"].create_app().test_client()
    email = f"guest.{uuid.uuid4().hex[:10]}@example.org"
    body = order_body()
    body["customer"] = {**body["customer"], "email": email}
    placed = orders.post("/v1/orders", json=body)
    assert placed.status_code == 201, placed.get_json()
    order_id, token = placed.get_json()["id"], placed.get_json()["access_token"]
    path = f"/v1/orders/{order_id}/deactivation"
    assert orders.post(path, headers={"X-Order-Token": "not-the-token"}).status_code == 404
    asked = orders.post(path, headers={"X-Order-Token": token})
    assert asked.status_code == 202, asked.get_json()
    assert asked.get_json()["order_id"] == order_id

    gdpr = services["gdpr"]
    wait_until(
        lambda: (row := request_row(gdpr, order_id)) is not None and row.status == "done",
        timeout=60,
        message="every service reported on the guest's order and the request is done",
    )
    row = request_row(gdpr, order_id)
    t = gdpr_tables.erasure_reports
    with gdpr.engine.connect() as conn:
        reports = {
            r.service: r
            for r in conn.execute(select(t).where(t.c.request_id == row.event_id)).all()
        }
    assert set(reports) == set(ERASING_SERVICES)
    assert {"category": "order_personal_data", "count": 1} in reports["orders"].erased

    o = orders_tables.orders
    with services["orders"].engine.connect() as conn:
        order = conn.execute(select(o).where(o.c.id == order_id)).one()
    assert (order.customer, order.shipping_address, order.client_ip) == ({}, {}, None)
    assert order.vin == body["vehicle"]["vin"]  # the evidence stays, without the person
    s = gateway_tables.supplier_requests
    with services["supplier-gateway"].engine.connect() as conn:
        request = conn.execute(select(s).where(s.c.order_id == order_id)).first()
    assert request is None or (request.customer_name, request.shipping_address) == (None, None)
    m = notifications_tables.mails

    def mails_to_the_guest() -> list[str]:
        with services["notifications"].engine.connect() as conn:
            return [r.template for r in conn.execute(select(m).where(m.c.to_address == email))]

    # account.deactivated leaves gdpr as the request is done: its mail comes a moment later
    wait_until(mails_to_the_guest, timeout=30, message="the summary recorded for the guest")
    assert mails_to_the_guest() == ["account_deactivated"]
    # once erased, the order's token opens nothing personal to erase again
    again = orders.post(path, headers={"X-Order-Token": token})
    assert again.status_code in (202, 404)
