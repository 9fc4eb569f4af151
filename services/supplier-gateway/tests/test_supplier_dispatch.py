"""Requests reach the suppliers, on the real RabbitMQ and PostgreSQL: the gateway's worker loops run
as threads connected as the gateway's own broker user, the suppliers read as their own users."""

from __future__ import annotations

import json
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from gateway_helpers import (
    FakeSupplier,
    gateway_extra,
    key_of,
    make_directory,
    ready_order,
    supplier_url,
    take_requests,
)
from sqlalchemy import select

from coc_shared.documents import verify_document_link
from coc_shared.testing import fresh_example, handle, wait_until
from coc_supplier_gateway.adapters import tables
from coc_supplier_gateway.adapters.channels import signature
from coc_supplier_gateway.contract import REQUEST_SCHEMA
from coc_supplier_gateway.service import definition


@pytest.fixture
def http_supplier():
    supplier = FakeSupplier().start()
    yield supplier
    supplier.stop()


@pytest.fixture
def gateway(runtime_factory, tmp_path, http_supplier):
    directory = make_directory(tmp_path, {"renault-coc": http_supplier.port, "bmw-coc": 9})
    rt = runtime_factory(
        definition,
        extra=gateway_extra(
            tmp_path,
            directory,
            SUPPLIER_GATEWAY_BREAKER_FAILURES="2",
            SUPPLIER_GATEWAY_BREAKER_RESET_SECONDS="1.5",
            SUPPLIER_GATEWAY_HTTP_ATTEMPTS="2",
        ),
    )
    rt.declare_topology()
    stop = threading.Event()
    threads = rt.start_worker_threads(stop)
    yield rt
    stop.set()
    for thread in threads:
        thread.join(timeout=10)


def state(rt, order_id: str):
    t = tables.supplier_requests
    with rt.engine.connect() as conn:
        return conn.execute(select(t).where(t.c.order_id == order_id)).one()


def sent_events(rt, order_id: str) -> list[dict]:
    o = rt.outbox
    with rt.engine.connect() as conn:
        bodies = conn.execute(
            select(o.c.body).where(
                o.c.event_type == "documents.sent_to_supplier", o.c.subject == order_id
            )
        ).scalars()
        return [json.loads(b) for b in bodies]


def dispatches(rt, order_id: str):
    d = tables.supplier_dispatches
    with rt.engine.connect() as conn:
        return conn.execute(select(d).where(d.c.order_id == order_id)).all()


def test_a_ready_order_puts_exactly_one_request_on_its_supplier_s_queue_with_only_what_it_needs(
    gateway, broker_accounts, bus_prefix
):
    order_id, documents = ready_order(gateway, kinds=["id_card", "registration_certificate"])
    queue = f"{bus_prefix}coc.supplier.psa-coc"
    wait_until(lambda: state(gateway, order_id).status == "sent", message="request sent")
    mine = lambda body: body["request_id"] == state(gateway, order_id).request_id  # noqa: E731
    [message] = take_requests(supplier_url(broker_accounts, "psa-coc"), queue, match=mine)
    body = json.loads(message.body)
    assert REQUEST_SCHEMA.validate(body) == {}
    assert message.properties["message_id"] == body["request_id"]
    assert message.properties["user_id"] == f"{bus_prefix}coc-supplier-gateway"
    assert message.properties["delivery_mode"] == 2
    # psa-coc needs vin, brand, first registration date and the registration certificate only
    assert set(body) == {
        "request_id",
        "supplier",
        "order_number",
        "sent_at",
        "reply_by",
        "resend",
        "vehicle",
        "documents",
        "ships_to_customer",
    }
    assert "customer" not in body and "shipping_address" not in body
    assert body["vehicle"] == {
        "vin": "VF3ABCDEF12345678",
        "brand": "Peugeot",
        "first_registration_date": "2019-05-14",
    }
    [link] = body["documents"]
    registration = next(d for d in documents if d["kind"] == "registration_certificate")
    assert link["document_id"] == registration["id"] and link["kind"] == "registration_certificate"
    url = urlsplit(link["url"])
    assert url.path == f"/v1/supplier-documents/{registration['id']}"
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert (
        verify_document_link("document-link-secret-" + "z" * 32, registration["id"], query)
        == "psa-coc"
    )
    assert 71.9 * 3600 < int(query["expires"]) - time.time() <= 72 * 3600
    wait_until(lambda: state(gateway, order_id).status == "sent", message="request sent")
    row = state(gateway, order_id)
    assert row.supplier == "psa-coc" and row.request_id == body["request_id"]
    assert (row.due_at - row.sent_at).total_seconds() == 72 * 3600
    [event] = sent_events(gateway, order_id)
    assert event["data"]["supplier_request_id"] == body["request_id"]
    assert event["data"]["document_ids"] == [registration["id"]]
    time.sleep(1.0)  # no second message: the row is marked sent
    assert (
        take_requests(supplier_url(broker_accounts, "psa-coc"), queue, timeout=0.5, match=mine)
        == []
    )
    assert len(sent_events(gateway, order_id)) == 1


def test_a_supplier_needing_the_customer_s_name_and_address_gets_them_over_http(
    gateway, http_supplier
):
    order_id, _ = ready_order(gateway, vin="VF1AB000123456789", brand="Renault")
    wait_until(lambda: http_supplier.received, message="the http supplier's request")
    headers, body = http_supplier.received[0]
    assert REQUEST_SCHEMA.validate(body) == {}
    assert body["customer"] == {"first_name": "Émilie", "last_name": "Dupont-Lefèvre"}
    assert body["shipping_address"]["city"] == "Paris" and body["ships_to_customer"] is True
    assert {d["kind"] for d in body["documents"]} == {"id_card", "registration_certificate"}
    assert headers["Idempotency-Key"] == body["request_id"]
    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=True).encode()
    assert headers["X-COC-Signature"] == signature(
        key_of("renault-coc"), headers["X-COC-Timestamp"], raw
    )
    assert abs(int(headers["X-COC-Timestamp"]) - time.time()) < 30
    wait_until(lambda: state(gateway, order_id).status == "sent", message="request sent")
    assert len(sent_events(gateway, order_id)) == 1


def test_an_http_supplier_down_then_up_gets_the_request_once_and_its_breaker_opens_and_closes(
    gateway, http_supplier
):
    http_supplier.status = 503
    order_id, _ = ready_order(gateway, vin="VF1AB000123456789", brand="Renault")
    breaker = lambda: gateway.http_channel.breaker("renault-coc").current_state  # noqa: E731
    wait_until(lambda: breaker() == "open", timeout=20, message="the breaker opened")
    # the failed attempt is recorded on the row just after the breaker counted it
    wait_until(
        lambda: dispatches(gateway, order_id)[0].attempts >= 1, message="the failure recorded"
    )
    failures = dispatches(gateway, order_id)[0]
    assert failures.sent_at is None and failures.attempts >= 1
    assert "503" in failures.last_error or "circuit breaker" in failures.last_error
    assert state(gateway, order_id).status == "ready" and http_supplier.received == []
    http_supplier.status = 202  # the supplier is back
    wait_until(lambda: state(gateway, order_id).status == "sent", timeout=20, message="sent")
    wait_until(lambda: breaker() == "closed", message="the breaker closed")
    time.sleep(1.0)
    assert len(http_supplier.received) == 1
    assert len(sent_events(gateway, order_id)) == 1
    [row] = dispatches(gateway, order_id)
    assert row.sent_at is not None


def test_one_supplier_s_outage_does_not_hold_up_the_others(
    gateway, http_supplier, broker_accounts, bus_prefix
):
    http_supplier.status = 503
    down, _ = ready_order(gateway, vin="VF1AB000123456789", brand="Renault")
    up, _ = ready_order(gateway)
    take_requests(supplier_url(broker_accounts, "psa-coc"), f"{bus_prefix}coc.supplier.psa-coc")
    wait_until(lambda: state(gateway, up).status == "sent", timeout=10, message="psa sent")
    assert state(gateway, down).status == "ready"


def test_an_order_whose_maker_has_no_supplier_goes_to_the_review_list(gateway):
    order_id, _ = ready_order(gateway, vin="ZFA31200000123456", brand="Fiat")
    row = state(gateway, order_id)
    assert row.status == "review" and "no supplier serves" in row.review_reason
    assert dispatches(gateway, order_id) == []
    missing, _ = ready_order(gateway, kinds=["id_card"])  # psa-coc needs the registration
    assert "registration_certificate" in state(gateway, missing).review_reason


def test_a_request_cancelled_before_it_is_sent_is_never_sent(gateway, broker_accounts, bus_prefix):
    placed = fresh_example("order.placed")
    order_id = placed.data["order_id"]
    cancelled = fresh_example("order.cancelled")
    cancelled.data = {**cancelled.data, "order_id": order_id}
    handle(gateway, placed)
    handle(gateway, cancelled)
    paid = fresh_example("payment.confirmed")
    paid.data = {**paid.data, "order_id": order_id}
    handle(gateway, paid)
    assert state(gateway, order_id).status == "cancelled"
    assert dispatches(gateway, order_id) == []
