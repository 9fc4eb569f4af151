"""The deactivation saga across the five services, their workers as threads on the real RabbitMQ
and PostgreSQL: a customer with an account and an order asks for deactivation; log-in is refused
at once; gdpr asks every service to erase; each erases its part and reports what it erased and
what it keeps (with the legal basis and until when); gdpr closes the request and the customer's
summary mail is recorded, to the address the request carried."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trust_kit import order_body, running_services

from coc_gdpr.adapters import tables as gdpr_tables
from coc_notifications.adapters import tables as notifications_tables
from coc_orders.adapters import tables as orders_tables
from coc_shared.catalogue import ERASING_SERVICES
from coc_shared.testing import wait_until


@pytest.fixture
def services(settings_factory, tmp_path):
    with running_services(settings_factory, tmp_path) as runtimes:
        yield runtimes


def request_row(gdpr, account_id: str):
    t = gdpr_tables.deactivation_requests
    with gdpr.engine.connect() as conn:
        return conn.execute(select(t).where(t.c.account_id == account_id)).first()


def test_a_deactivated_account_is_erased_everywhere_and_its_owner_gets_the_summary(services):
    orders = services["orders"].create_app().test_client()
    email = f"saga.{uuid.uuid4().hex[:10]}@example.org"
    password = "a long enough pass phrase"
    assert orders.post("/v1/accounts", json={"email": email, "password": password}).status_code
    login = orders.post("/v1/auth/token", json={"email": email, "password": password})
    assert login.status_code == 200, login.get_json()
    bearer = {"Authorization": f"Bearer {login.get_json()['access_token']}"}
    account_id = orders.get("/v1/accounts/me", headers=bearer).get_json()["id"]
    body = order_body()
    body["customer"] = {**body["customer"], "email": email}
    placed = orders.post("/v1/orders", json=body, headers=bearer)
    assert placed.status_code == 201, placed.get_json()
    order_id = placed.get_json()["id"]

    assert orders.post("/v1/accounts/me/deactivation", headers=bearer).status_code == 202
    # at once: no more log-in
    again = orders.post("/v1/auth/token", json={"email": email, "password": password})
    assert again.status_code == 401

    gdpr = services["gdpr"]
    wait_until(
        lambda: (row := request_row(gdpr, account_id)) is not None and row.status == "done",
        timeout=60,
        message="every service reported and the request is done",
    )
    row = request_row(gdpr, account_id)
    assert (row.email, row.first_name) == (None, None)  # the address went with the summary
    t = gdpr_tables.erasure_reports
    with gdpr.engine.connect() as conn:
        reports = {
            r.service: r
            for r in conn.execute(select(t).where(t.c.request_id == row.event_id)).all()
        }
    assert set(reports) == set(ERASING_SERVICES)
    assert {"category": "account", "count": 1} in reports["orders"].erased
    [evidence] = reports["orders"].retained
    assert evidence["category"] == "order_evidence" and "L110-4" in evidence["legal_basis"]

    # orders: the account is gone, the order stays as evidence without the person
    o, a = orders_tables.orders, orders_tables.accounts
    with services["orders"].engine.connect() as conn:
        assert conn.execute(select(a).where(a.c.id == account_id)).first() is None
        order = conn.execute(select(o).where(o.c.id == order_id)).one()
    assert (order.account_id, order.customer, order.shipping_address) == (None, {}, {})
    assert order.vin == body["vehicle"]["vin"]
    assert orders.get("/v1/accounts/me", headers=bearer).status_code in (401, 404)

    # notifications: the summary is the one mail left for the address, listing what is kept
    m = notifications_tables.mails

    def mails_to_the_address() -> list[str]:
        with services["notifications"].engine.connect() as conn:
            return [r.template for r in conn.execute(select(m).where(m.c.to_address == email))]

    # account.deactivated leaves gdpr as the request is done: notifications records it just after
    wait_until(mails_to_the_address, timeout=30, message="the summary recorded")
    assert mails_to_the_address() == ["account_deactivated"]
