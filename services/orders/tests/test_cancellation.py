"""POST /v1/orders/{id}/cancellation: the owner's bearer token or the order's access token; only
before the order was sent to the supplier (409 with a clear JSON error otherwise); order.cancelled
with cancelled_by "customer" written in the same transaction; through the broker, the payment is
no longer due and the supplier request is cancelled."""

from __future__ import annotations

import io
import threading
import uuid

import pytest
from orders_helpers import order_body, order_status, outbox_events, pdf_bytes, place
from sqlalchemy import select

from coc_payments.service import definition as payments_definition
from coc_shared.service import Runtime
from coc_shared.testing import wait_until
from coc_supplier_gateway.service import definition as gateway_definition

PDF = pdf_bytes()


def cancel(client, order_id, headers, reason="ordered by mistake"):
    return client.post(
        f"/v1/orders/{order_id}/cancellation", json={"reason": reason}, headers=headers
    )


def sign_up(client):
    email = f"cancel.{uuid.uuid4().hex[:8]}@example.org"
    assert (
        client.post(
            "/v1/accounts", json={"email": email, "password": "correct horse battery"}
        ).status_code
        == 202
    )
    token = client.post(
        "/v1/auth/token", json={"email": email, "password": "correct horse battery"}
    ).get_json()
    return {"Authorization": f"Bearer {token['access_token']}"}


def test_the_guest_cancels_with_the_access_token_once(runtime, client):
    placed = client.post("/v1/orders", json=order_body()).get_json()
    guest = {"X-Order-Token": placed["access_token"]}
    answer = cancel(client, placed["id"], guest, reason="  ordered\tby   mistake ")
    assert answer.status_code == 200, answer.get_json()
    view = answer.get_json()
    assert view["status"] == "cancelled"
    assert [(e["event"], e["outcome"], e["status"]) for e in view["timeline"]] == [
        ("order.placed", "applied", "placed"),
        ("order.cancelled", "applied", "cancelled"),
    ]
    [event] = outbox_events(runtime, "order.cancelled", placed["id"])
    assert event["data"] == {
        "order_id": placed["id"],
        "reason": "ordered by mistake",
        "cancelled_by": "customer",
    }
    assert event.get("personal") is None and event["correlation_id"] == placed["id"]

    again = cancel(client, placed["id"], guest)
    assert again.status_code == 409
    assert again.get_json()["error"] == {
        "status": 409,
        "code": "conflict",
        "message": "this order is already cancelled",
        "correlation_id": again.headers["X-Correlation-ID"],
    }
    assert len(outbox_events(runtime, "order.cancelled", placed["id"])) == 1
    # a cancelled order takes no more documents
    upload = client.post(
        f"/v1/orders/{placed['id']}/documents",
        headers=guest,
        content_type="multipart/form-data",
        data={"kind": "id_card", "file": (io.BytesIO(PDF), "id.pdf", "application/pdf")},
    )
    assert upload.status_code == 409 and "cancelled" in upload.get_json()["error"]["message"]


def test_the_owner_cancels_with_the_bearer_token_and_nobody_else_can(client):
    owner, stranger = sign_up(client), sign_up(client)
    order = client.post("/v1/orders", json=order_body(), headers=owner).get_json()
    other_guest = client.post("/v1/orders", json=order_body()).get_json()
    assert cancel(client, order["id"], {}).status_code == 401
    assert cancel(client, order["id"], stranger).status_code == 404
    assert (
        cancel(client, order["id"], {"X-Order-Token": other_guest["access_token"]}).status_code
        == 404
    )
    assert cancel(client, str(uuid.uuid4()), owner).status_code == 404
    assert cancel(client, order["id"], owner).get_json()["status"] == "cancelled"


@pytest.mark.parametrize(
    "body,field",
    [
        ({}, "reason"),
        ({"reason": ""}, "reason"),
        ({"reason": "   "}, "reason"),
        ({"reason": "x" * 501}, "reason"),
    ],
)
def test_a_cancellation_needs_a_reason(client, body, field):
    placed = client.post("/v1/orders", json=order_body()).get_json()
    answer = client.post(
        f"/v1/orders/{placed['id']}/cancellation",
        json=body,
        headers={"X-Order-Token": placed["access_token"]},
    )
    assert answer.status_code == 422 and field in answer.get_json()["error"]["fields"]


@pytest.mark.parametrize("status", ["payment_failed", "paid"])
def test_an_order_not_yet_sent_to_the_supplier_can_be_cancelled(runtime, client, status):
    order_id = place(runtime, status)
    answer = cancel_as_owner_of(runtime, client, order_id)
    assert answer.status_code == 200 and order_status(runtime, order_id) == "cancelled"


@pytest.mark.parametrize(
    "status,message",
    [
        (
            "sent_to_supplier",
            "this order can no longer be cancelled: it was already sent to the supplier",
        ),
        (
            "supplier_rejected",
            "this order can no longer be cancelled: it was already sent to the supplier",
        ),
        (
            "certificate_received",
            "this order can no longer be cancelled: it was already sent to the supplier",
        ),
        ("shipped", "this order can no longer be cancelled: its certificate was shipped"),
    ],
)
def test_once_sent_to_the_supplier_a_cancellation_answers_409(runtime, client, status, message):
    order_id = place(runtime, status)
    answer = cancel_as_owner_of(runtime, client, order_id)
    assert answer.status_code == 409
    error = answer.get_json()["error"]
    assert (error["status"], error["code"], error["message"]) == (409, "conflict", message)
    assert order_status(runtime, order_id) == status
    assert outbox_events(runtime, "order.cancelled", order_id) == []


def cancel_as_owner_of(runtime, client, order_id):
    """Give the (guest) order placed by ``place`` a known access token, then cancel with it."""
    from sqlalchemy import update

    from coc_orders.adapters import tables
    from coc_shared.tokens import new_order_access_token

    token, token_hash = new_order_access_token()
    with runtime.engine.begin() as conn:
        conn.execute(
            update(tables.orders)
            .where(tables.orders.c.id == order_id)
            .values(access_token_sha256=token_hash)
        )
    return cancel(client, order_id, {"X-Order-Token": token})


# through the broker ----------------------------------------------------------------------------


@pytest.fixture
def consumers(runtime, settings_factory):
    """The orders relay, and the consumers of payments and the supplier gateway, on the real
    broker."""
    payments = Runtime(payments_definition, settings_factory("payments", outbox_poll_seconds=0.2))
    gateway = Runtime(
        gateway_definition, settings_factory("supplier-gateway", outbox_poll_seconds=0.2)
    )
    for rt in (payments, gateway):
        rt.migrate()
        rt.declare_topology()
    stop = threading.Event()
    threads = (
        runtime.start_worker_threads(stop, consume=False)
        + payments.start_worker_threads(stop, relay=False)
        + gateway.start_worker_threads(stop, relay=False)
    )
    yield payments, gateway
    stop.set()
    for t in threads:
        t.join(timeout=10)
    for rt in (payments, gateway):
        rt.engine.dispose()


def test_a_cancellation_reaches_payments_and_the_supplier_gateway(runtime, client, consumers):
    payments, gateway = consumers
    placed = client.post("/v1/orders", json=order_body()).get_json()
    guest = {"X-Order-Token": placed["access_token"]}

    payments_due = payments.definition.metadata.tables["payments.payments_due"]
    supplier_requests = gateway.definition.metadata.tables["supplier_gateway.supplier_requests"]

    def payment_status():
        with payments.engine.connect() as conn:
            return conn.execute(
                select(payments_due.c.status).where(payments_due.c.order_id == placed["id"])
            ).scalar_one_or_none()

    def request_status():
        with gateway.engine.connect() as conn:
            return conn.execute(
                select(supplier_requests.c.status).where(
                    supplier_requests.c.order_id == placed["id"]
                )
            ).scalar_one_or_none()

    wait_until(
        lambda: payment_status() == "due" and request_status() == "pending",
        message="order.placed handled",
    )
    assert cancel(client, placed["id"], guest).status_code == 200
    wait_until(lambda: payment_status() == "cancelled", message="payment cancelled")
    wait_until(lambda: request_status() == "cancelled", message="supplier request cancelled")
    checkout = (
        payments.create_app()
        .test_client()
        .post(f"/v1/payments/{placed['id']}/checkout", headers=guest)
    )
    assert checkout.status_code == 409
