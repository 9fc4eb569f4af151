"""A customer's export of their personal data across the five services (GDPR 15 and 20), their
workers as threads on the real RabbitMQ and PostgreSQL: a customer with an account and an order
asks for it; every service contributes; gdpr assembles the document, stores it encrypted and has
the link mailed; the link opens it (with its token only), and it holds every category of the
retention schedule, with the customer's data in each category where the schedule says a service
keeps some for such a customer (their support records too). An export support staff open on the
customer's behalf is mailed to the account's address on file, which orders' contribution gives."""

from __future__ import annotations

import base64
import json
import sys
import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trust_kit import definition_of, order_body, service_extra

from coc_gdpr.adapters import tables as gdpr_tables
from coc_gdpr.service_layer import exports
from coc_notifications.adapters import tables as notifications_tables
from coc_shared.config import SERVICE_NAMES
from coc_shared.service import Runtime
from coc_shared.testing import forget_unsent, purge_queue, staff_headers, wait_until

TOKEN = "the-link-token-" + "x" * 30


@pytest.fixture
def services(settings_factory, tmp_path, monkeypatch):
    monkeypatch.setattr(exports.secrets, "token_urlsafe", lambda _n: TOKEN)
    extra = {"gdpr": {"GDPR_EXPORT_KEY": base64.b64encode(b"x" * 32).decode()}}
    runtimes = {
        name: Runtime(
            definition_of(name),
            settings_factory(name, extra={**service_extra(name, tmp_path), **extra.get(name, {})}),
        )
        for name in SERVICE_NAMES
    }
    for runtime in runtimes.values():
        runtime.migrate()
        runtime.declare_topology()
        purge_queue(runtime)
        forget_unsent(runtime)
    stop = threading.Event()
    threads = [
        thread
        for runtime in runtimes.values()
        for thread in runtime.start_worker_threads(stop, loops=False)
    ]
    yield runtimes
    stop.set()
    for thread in threads:
        thread.join(timeout=15)
    for runtime in runtimes.values():
        runtime.dispose()


def found(rt, query) -> bool:
    with rt.engine.connect() as conn:
        return conn.execute(query).first() is not None


def export_row(gdpr, account_id: str):
    t = gdpr_tables.data_exports
    with gdpr.engine.connect() as conn:
        return conn.execute(select(t).where(t.c.subject == account_id)).first()


def test_the_export_holds_every_category_of_the_schedule_for_the_customer(services):
    orders = services["orders"].create_app().test_client()
    email = f"export.{uuid.uuid4().hex[:10]}@example.org"
    password = "a long enough pass phrase"
    profile = {"marketing_consent": True}
    created = orders.post(
        "/v1/accounts", json={"email": email, "password": password, "profile": profile}
    )
    assert created.status_code == 202, created.get_json()
    login = orders.post("/v1/auth/token", json={"email": email, "password": password})
    bearer = {"Authorization": f"Bearer {login.get_json()['access_token']}"}
    account_id = orders.get("/v1/accounts/me", headers=bearer).get_json()["id"]
    body = order_body()
    body["customer"] = {**body["customer"], "email": email}
    body["marketing_consent"] = True
    placed = orders.post("/v1/orders", json=body, headers=bearer)
    assert placed.status_code == 201, placed.get_json()
    order_id = placed.get_json()["id"]
    m = notifications_tables.order_recipients
    wait_until(  # the order reached notifications before the export is asked for
        lambda: (
            services["notifications"]
            .engine.connect()
            .execute(select(m.c.order_id).where(m.c.order_id == order_id))
            .first()
            is not None
        ),
        timeout=30,
        message="notifications knows the order",
    )

    support = staff_headers("sam", "support")
    recorded = orders.post(
        "/v1/staff/support-records",
        json={"order_id": order_id, "channel": "phone", "summary": "asked for a copy of the data"},
        headers=support,
    )
    assert recorded.status_code == 201, recorded.get_json()

    asked = orders.post("/v1/accounts/me/export", headers=bearer)
    assert asked.status_code == 202, asked.get_json()
    gdpr = services["gdpr"]
    wait_until(
        lambda: (row := export_row(gdpr, account_id)) is not None and row.status == "ready",
        timeout=60,
        message="every service contributed and the export is ready",
    )
    request_id = export_row(gdpr, account_id).request_id
    client = gdpr.create_app().test_client()
    assert client.get(f"/v1/exports/{request_id}").status_code == 403
    answer = client.get(f"/v1/exports/{request_id}", headers={"X-Export-Token": TOKEN})
    assert answer.status_code == 200
    document = json.loads(answer.data)

    schedule = gdpr.config.schedule
    by_name = {c["category"]: c for c in document["categories"]}
    assert list(by_name) == [c.category for c in schedule.categories]  # every category listed
    # the categories the schedule keeps in a service for a customer with an account and an order
    for category, services_holding in {
        "account": {"orders"},
        "order_customer": {"orders", "supplier-gateway"},
        "order_evidence": {"orders", "supplier-gateway"},
        "mail_recipients": {"notifications"},
        "marketing_contact": {"notifications"},
        "support_records": {"orders"},
    }.items():
        assert services_holding <= set(by_name[category]["data"]), category
        where = {w.service for w in schedule.category(category).where}
        assert set(by_name[category]["data"]) <= where, category
    assert by_name["account"]["data"]["orders"][0]["email"] == email
    [support_record] = by_name["support_records"]["data"]["orders"]
    assert support_record["summary"] == "asked for a copy of the data"
    assert by_name["card_data"]["held"] is False
    assert by_name["invoices"]["purpose"] and by_name["invoices"]["retention"]["archive"]

    # the link was mailed to the account's address
    mails = notifications_tables.mails
    wait_until(
        lambda: (
            services["notifications"]
            .engine.connect()
            .execute(
                select(mails.c.id).where(
                    mails.c.template == "data_export_ready", mails.c.account_id == account_id
                )
            )
            .first()
            is not None
        ),
        timeout=30,
        message="the link is mailed",
    )

    # staff open one on the customer's behalf, giving no address: the link goes to the one on file
    made = client.post(
        "/v1/staff/requests-on-behalf",
        json={
            "kind": "export",
            "account_id": account_id,
            "order_id": order_id,
            "channel": "phone",
            "verification": "called from the account's phone number; named the order",
        },
        headers=support,
    )
    assert made.status_code == 201, made.get_json()
    t = gdpr_tables.data_exports
    wait_until(
        lambda: found(
            gdpr,
            select(t.c.request_id).where(
                t.c.request_id == made.get_json()["request_id"], t.c.status == "ready"
            ),
        ),
        timeout=60,
        message="the export opened on the customer's behalf is ready",
    )
    export_mails = select(mails.c.to_address).where(
        mails.c.template == "data_export_ready", mails.c.account_id == account_id
    )

    def export_mail_addresses() -> list[str]:
        with services["notifications"].engine.connect() as conn:
            return list(conn.execute(export_mails).scalars())

    wait_until(
        lambda: len(export_mail_addresses()) == 2, timeout=30, message="its link is mailed too"
    )
    assert export_mail_addresses() == [email, email]
