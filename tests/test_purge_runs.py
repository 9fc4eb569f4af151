"""Purge runs of the retention schedule across the five services, their workers as threads on the
real RabbitMQ and PostgreSQL: gdpr computes each category's cutoff from the schedule and asks every
service; each applies the ends to its own data only (expired rows changed, fresh ones kept) and
reports how much; the run is complete once all have reported, and a second run finds nothing."""

from __future__ import annotations

import io
import json
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from pypdf import PdfWriter
from sqlalchemy import insert, select, update

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trust_kit import order_body, running_services

from coc_gdpr.adapters import tables as gdpr_tables
from coc_gdpr.service_layer.purges import start_purge_run
from coc_notifications.adapters import tables as notifications_tables
from coc_orders.adapters import tables as orders_tables
from coc_payments.adapters import tables as payments_tables
from coc_shared.envelope import utcnow
from coc_shared.tables import parked_messages
from coc_shared.testing import wait_until
from coc_supplier_gateway.adapters import tables as gateway_tables


@pytest.fixture
def services(settings_factory, tmp_path):
    with running_services(settings_factory, tmp_path) as runtimes:
        yield runtimes


def pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def placed_order(orders) -> dict:
    client = orders.create_app().test_client()
    answer = client.post("/v1/orders", json=order_body())
    assert answer.status_code == 201, answer.get_json()
    order = answer.get_json()
    upload = client.post(
        f"/v1/orders/{order['id']}/documents",
        headers={"X-Order-Token": order["access_token"]},
        data={"kind": "id_card", "file": (io.BytesIO(pdf()), "id.pdf", "application/pdf")},
        content_type="multipart/form-data",
    )
    assert upload.status_code == 201, upload.get_json()
    return order


def run_purge(services) -> dict:
    gdpr = services["gdpr"]
    run_id = start_purge_run(gdpr, "command")
    runs = gdpr_tables.purge_runs
    wait_until(
        lambda: _one(gdpr, select(runs.c.completed_at).where(runs.c.run_id == run_id)),
        timeout=60,
        message="every service reported on the run",
    )
    reports = gdpr_tables.purge_reports
    with gdpr.engine.connect() as conn:
        rows = conn.execute(select(reports).where(reports.c.run_id == run_id)).all()
    return {(row.service, item["category"]): item["count"] for row in rows for item in row.purged}


def _one(runtime, query):
    with runtime.engine.connect() as conn:
        return conn.execute(query).scalar()


def test_a_purge_run_applies_the_schedule_s_ends_in_every_service_and_twice_does_nothing(
    services,
):
    now = utcnow()
    orders, payments = services["orders"], services["payments"]
    old, fresh = placed_order(orders), placed_order(orders)
    o, e, d = orders_tables.orders, orders_tables.order_events, orders_tables.order_documents
    with orders.engine.begin() as conn:
        # old: placed 200 days ago (IP kept 90 days), certificate issued 40 days ago (30 days)
        conn.execute(
            update(o).where(o.c.id == old["id"]).values(placed_at=now - timedelta(days=200))
        )
        for order, days in ((old, 40), (fresh, 2)):
            conn.execute(
                insert(e).values(
                    event_id=str(uuid.uuid4()),
                    order_id=order["id"],
                    event_type="certificate.received",
                    occurred_at=now - timedelta(days=days),
                    recorded_at=now,
                    outcome="applied",
                    status_after="certificate_received",
                )
            )
    c = payments_tables.callbacks
    with payments.engine.begin() as conn:
        callback_ids = [
            conn.execute(
                insert(c)
                .values(
                    # an id of its own: payments takes its ids by blocks (coc_shared.ids), not
                    # from the column's sequence
                    id=10**15 + uuid.uuid4().int % 10**12,
                    provider="paypal",
                    received_at=now - timedelta(days=days),
                    headers={"paypal-transmission-id": "x"},
                    body=b'{"payer": "Emilie Dupont"}',
                    verdict="accepted",
                )
                .returning(c.c.id)
            ).scalar_one()
            for days in (420, 10)
        ]
    contacts = notifications_tables.contacts
    with services["notifications"].engine.begin() as conn:
        contact_ids = [str(uuid.uuid4()), str(uuid.uuid4())]
        for contact_id, days in zip(contact_ids, (4 * 365, 30), strict=True):
            conn.execute(
                insert(contacts).values(
                    id=contact_id,
                    address_hash=uuid.uuid4().hex,
                    email=f"{contact_id[:8]}@example.org",
                    consented_at=now - timedelta(days=days),
                    updated_at=now - timedelta(days=days),
                )
            )
    requests = gateway_tables.supplier_requests
    gateway = services["supplier-gateway"]
    with gateway.engine.begin() as conn:
        request_ids = [str(uuid.uuid4()), str(uuid.uuid4())]
        for order_id, days in zip(request_ids, (500, 20), strict=True):
            conn.execute(
                insert(requests).values(
                    order_id=order_id,
                    order_placed=True,
                    paid=True,
                    documents_completed=True,
                    document_ids=[],
                    status="delivered",
                    created_at=now - timedelta(days=days),
                    updated_at=now - timedelta(days=days),
                    customer_name={"first_name": "Émilie", "last_name": "Dupont"},
                    shipping_address={"line1": "1 rue de la Paix", "city": "Paris"},
                )
            )
    parked_ids = []
    with payments.parking.engine.begin() as conn:
        for days in (45, 1):
            parked_ids.append(
                conn.execute(
                    insert(parked_messages)
                    .values(
                        service=payments.settings.service,
                        host="test",
                        queue="q",
                        routing_key="order.placed",
                        event_type="order.placed",
                        body=json.dumps(
                            {"type": "order.placed", "personal": {"email": "e@example.org"}}
                        ).encode(),
                        headers={},
                        properties={},
                        error_type="RuntimeError",
                        error_message="test",
                        attempts=1,
                        first_failed_at=now - timedelta(days=days),
                        last_failed_at=now - timedelta(days=days),
                        parked_at=now - timedelta(days=days),
                        status="parked",
                    )
                    .returning(parked_messages.c.id)
                ).scalar_one()
            )

    counts = run_purge(services)
    assert counts[("orders", "order_client_traces")] >= 1
    assert counts[("orders", "identity_documents")] >= 1
    assert counts[("payments", "provider_callbacks")] >= 1
    assert counts[("notifications", "marketing_contact")] >= 1
    assert counts[("supplier-gateway", "order_customer")] >= 1
    assert counts[("payments", "parked_messages")] >= 1

    with orders.engine.connect() as conn:
        traces = dict(
            conn.execute(
                select(o.c.id, o.c.client_ip).where(o.c.id.in_([old["id"], fresh["id"]]))
            ).all()
        )
        erased = dict(
            conn.execute(
                select(d.c.order_id, d.c.erased_at).where(
                    d.c.order_id.in_([old["id"], fresh["id"]])
                )
            ).all()
        )
    assert traces[old["id"]] is None and traces[fresh["id"]] is not None
    assert erased[old["id"]] is not None and erased[fresh["id"]] is None
    with payments.engine.connect() as conn:
        bodies = dict(conn.execute(select(c.c.id, c.c.body).where(c.c.id.in_(callback_ids))).all())
    assert bytes(bodies[callback_ids[0]]) == b"" and b"Emilie" in bytes(bodies[callback_ids[1]])
    with services["notifications"].engine.connect() as conn:
        left = set(
            conn.execute(select(contacts.c.id).where(contacts.c.id.in_(contact_ids))).scalars()
        )
    assert left == {contact_ids[1]}
    with gateway.engine.connect() as conn:
        names = dict(
            conn.execute(
                select(requests.c.order_id, requests.c.customer_name).where(
                    requests.c.order_id.in_(request_ids)
                )
            ).all()
        )
    assert names[request_ids[0]] is None and names[request_ids[1]] is not None
    with payments.parking.engine.connect() as conn:
        parked = dict(
            conn.execute(
                select(parked_messages.c.id, parked_messages.c.body).where(
                    parked_messages.c.id.in_(parked_ids)
                )
            ).all()
        )
    assert json.loads(bytes(parked[parked_ids[0]]))["personal"] is None
    assert json.loads(bytes(parked[parked_ids[1]]))["personal"] == {"email": "e@example.org"}

    # a second run: everything expired is already gone
    again = run_purge(services)
    for key in (
        ("orders", "order_client_traces"),
        ("orders", "identity_documents"),
        ("payments", "provider_callbacks"),
        ("notifications", "marketing_contact"),
        ("supplier-gateway", "order_customer"),
        ("payments", "parked_messages"),
    ):
        assert again[key] == 0, key
