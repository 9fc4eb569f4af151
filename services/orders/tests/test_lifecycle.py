"""The order lifecycle: the state machine (unit) and the order driven by real events through the
broker (out of order, duplicated, for an unknown order), shown by GET /v1/orders/{id}."""
from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import select, update

from coc_orders.domain.lifecycle import TRANSITIONS, Status, can_cancel, transition
from coc_payments.service import definition as payments_definition
from coc_shared.service import Runtime
from coc_shared.testing import wait_until

from orders_helpers import order_body, order_status


# unit ------------------------------------------------------------------------------------------

HAPPY_PATH = [("payment.confirmed", "paid"), ("documents.sent_to_supplier", "sent_to_supplier"),
              ("certificate.received", "certificate_received"), ("certificate.shipped", "shipped")]


def test_the_happy_path():
    status = Status.PLACED
    for event_type, expected in HAPPY_PATH:
        result = transition(status, event_type)
        assert result.applied and result.after.value == expected
        status = result.after


def test_a_failed_payment_may_be_paid_again():
    assert transition("placed", "payment.failed").after == Status.PAYMENT_FAILED
    assert transition("payment_failed", "payment.failed").after == Status.PAYMENT_FAILED
    assert transition("payment_failed", "payment.confirmed").after == Status.PAID


@pytest.mark.parametrize("status,event_type", [
    ("paid", "payment.failed"), ("paid", "payment.confirmed"), ("placed", "certificate.shipped"),
    ("placed", "documents.sent_to_supplier"), ("sent_to_supplier", "certificate.shipped"),
    ("shipped", "certificate.received"), ("cancelled", "payment.confirmed"), ("shipped", "order.cancelled"),
])
def test_an_event_that_does_not_fit_is_not_applied(status, event_type):
    assert not transition(status, event_type).applied


def test_cancelled_only_before_it_was_sent_to_the_supplier():
    assert [s.value for s in Status if can_cancel(s)] == ["placed", "payment_failed", "paid"]


def test_the_supplier_may_ask_for_more_documents_and_the_request_is_sent_again():
    assert transition("sent_to_supplier", "supplier.rejected").after == Status.SUPPLIER_REJECTED
    assert transition("supplier_rejected", "documents.sent_to_supplier").after == Status.SENT_TO_SUPPLIER


def test_no_transition_leaves_a_final_state():
    for moves in TRANSITIONS.values():
        assert Status.SHIPPED not in moves and Status.CANCELLED not in moves


# through the broker ----------------------------------------------------------------------------

@pytest.fixture
def pipeline(runtime, settings_factory):
    """The orders consumer and relay, and a producer's relay (payments' outbox stands for every
    producer: events go through the real broker to the orders queue)."""
    producer = Runtime(payments_definition, settings_factory("payments", outbox_poll_seconds=0.2))
    producer.migrate()
    runtime.declare_topology()
    stop = threading.Event()
    threads = runtime.start_worker_threads(stop) + producer.start_worker_threads(stop, consume=False)
    yield producer
    stop.set()
    for t in threads:
        t.join(timeout=10)
    producer.engine.dispose()


DATA = {
    "payment.confirmed": {"method": "card", "provider": "systempay", "provider_transaction_id": "tx-1",
                          "amount": {"amount_cents": 24900, "currency": "EUR"}},
    "payment.failed": {"method": "card", "provider": "systempay", "reason": "REFUSED"},
    "documents.sent_to_supplier": {"supplier": "psa-coc", "supplier_request_id": "REQ-1"},
    "certificate.received": {"supplier": "psa-coc", "certificate_document_id": "cert-1"},
    "certificate.shipped": {"carrier": "colissimo", "tracking_number": "6A123"},
}


def emit(producer, order_id: str, event_type: str):
    with producer.transaction(correlation_id=order_id) as tx:
        return tx.emit(event_type, {"order_id": order_id, **DATA[event_type]}, subject=order_id)


def timeline(client, order_id, token):
    answer = client.get(f"/v1/orders/{order_id}", headers={"X-Order-Token": token})
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def handled(runtime, event_id) -> bool:
    with runtime.engine.connect() as conn:
        return conn.execute(select(runtime.inbox.c.event_id).where(runtime.inbox.c.event_id == event_id)).first() is not None


def test_the_lifecycle_driven_by_real_events_with_late_early_and_duplicated_ones(runtime, client, pipeline):
    placed = client.post("/v1/orders", json=order_body()).get_json()
    order_id, token = placed["id"], placed["access_token"]

    failed = emit(pipeline, order_id, "payment.failed")
    wait_until(lambda: order_status(runtime, order_id) == "payment_failed", message="payment_failed")
    early = emit(pipeline, order_id, "certificate.shipped")  # out of order: not yet received
    wait_until(lambda: handled(runtime, early.id), message="early certificate.shipped handled")
    assert order_status(runtime, order_id) == "payment_failed"
    confirmed = emit(pipeline, order_id, "payment.confirmed")
    wait_until(lambda: order_status(runtime, order_id) == "paid", message="paid")
    late = emit(pipeline, order_id, "payment.failed")  # a late failure after the payment
    wait_until(lambda: handled(runtime, late.id), message="late payment.failed handled")
    assert order_status(runtime, order_id) == "paid"

    # the same payment.confirmed published again (a relay crash before marking it sent)
    with pipeline.engine.begin() as conn:
        conn.execute(update(pipeline.outbox).where(pipeline.outbox.c.event_id == confirmed.id).values(sent_at=None))
    for event_type in ("documents.sent_to_supplier", "certificate.received", "certificate.shipped"):
        emit(pipeline, order_id, event_type)
    wait_until(lambda: order_status(runtime, order_id) == "shipped", message="shipped")

    view = timeline(client, order_id, token)
    assert view["status"] == "shipped"
    entries = [(e["event"], e["outcome"], e["status"]) for e in view["timeline"]]
    assert entries == [
        ("order.placed", "applied", "placed"),
        ("payment.failed", "applied", "payment_failed"),
        ("certificate.shipped", "ignored", None),
        ("payment.confirmed", "applied", "paid"),
        ("payment.failed", "ignored", None),
        ("documents.sent_to_supplier", "applied", "sent_to_supplier"),
        ("certificate.received", "applied", "certificate_received"),
        ("certificate.shipped", "applied", "shipped"),
    ]
    assert all(e["at"] for e in view["timeline"])
    assert view["vehicle"]["vin"] == "VF3ABCDEF12345678" and view["total"]["amount_cents"] == 24900
    assert failed.id and handled(runtime, confirmed.id)


def test_an_event_for_an_unknown_order_is_parked(runtime, pipeline):
    unknown = str(uuid.uuid4())
    event = emit(pipeline, unknown, "payment.confirmed")
    wait_until(lambda: runtime.parking.list(service="orders", order_id=unknown), message="parked")
    [parked] = runtime.parking.list(service="orders", order_id=unknown)
    assert parked["event_id"] == event.id and parked["error_type"] == "PermanentError"
    assert "unknown order" in parked["error_message"]
