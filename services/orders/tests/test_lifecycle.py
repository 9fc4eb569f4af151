"""The order lifecycle: the state machine (unit) and the order driven by real events through the
broker (out of order, duplicated, for an unknown order), shown by GET /v1/orders/{id}."""

from __future__ import annotations

import io
import threading
import uuid

import pytest
from orders_helpers import order_body, order_status, outbox_events, pdf_bytes
from sqlalchemy import select

from coc_orders.domain.lifecycle import (
    RECORDED_ONLY,
    TRANSITIONS,
    Status,
    accepts_documents,
    can_cancel,
    transition,
    why_not_cancellable,
)
from coc_payments.service import definition as payments_definition
from coc_shared.catalogue import lookup
from coc_shared.testing import clear_sent_at, publish_again, staff_client, wait_until
from coc_supplier_gateway.service import definition as supplier_definition

# unit ------------------------------------------------------------------------------------------

HAPPY_PATH = [
    ("payment.confirmed", "paid"),
    ("documents.sent_to_supplier", "sent_to_supplier"),
    ("certificate.received", "certificate_received"),
    ("certificate.shipped", "shipped"),
]


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


@pytest.mark.parametrize(
    "status,event_type",
    [
        ("paid", "payment.failed"),
        ("paid", "payment.confirmed"),
        ("placed", "certificate.shipped"),
        ("placed", "documents.sent_to_supplier"),
        ("sent_to_supplier", "certificate.shipped"),
        ("shipped", "certificate.received"),
        ("cancelled", "payment.confirmed"),
        ("shipped", "order.cancelled"),
    ],
)
def test_an_event_that_does_not_fit_is_not_applied(status, event_type):
    assert not transition(status, event_type).applied


def test_cancelled_only_before_it_was_sent_to_the_supplier():
    assert [s.value for s in Status if can_cancel(s)] == ["placed", "payment_failed", "paid"]


def test_the_supplier_may_ask_for_more_documents_and_the_request_is_sent_again():
    assert (
        transition("sent_to_supplier", "documents.rejected_by_supplier").after
        == Status.SUPPLIER_REJECTED
    )
    assert "supplier.rejected" not in TRANSITIONS
    assert (
        transition("supplier_rejected", "documents.sent_to_supplier").after
        == Status.SENT_TO_SUPPLIER
    )


@pytest.mark.parametrize(
    "status,message",
    [
        ("placed", None),
        ("payment_failed", None),
        ("paid", None),
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
        ("cancelled", "this order is already cancelled"),
        ("refunded", "this order was refunded"),
    ],
)
def test_why_an_order_cannot_be_cancelled_is_told_to_the_customer(status, message):
    assert why_not_cancellable(status) == message


def test_a_refund_a_late_supplier_and_a_stuck_report_are_recorded_and_move_nothing():
    assert RECORDED_ONLY == (
        "payment.refunded",
        "supplier.request_overdue",
        "supplier.request_accepted",
        "invoice.issued",
        "refund.failed",
        "order.stuck",
    )
    assert not set(RECORDED_ONLY) & set(TRANSITIONS)
    for fact in RECORDED_ONLY:
        with pytest.raises(ValueError):
            transition("paid", fact)


def test_documents_are_taken_until_the_order_s_life_is_over():
    assert [s.value for s in Status if not accepts_documents(s)] == [
        "shipped",
        "delivered",
        "cancelled",
        "refunded",
    ]


def test_no_transition_leaves_a_final_state_but_a_cancelled_order_s_refund():
    for event_type, moves in TRANSITIONS.items():
        assert Status.DELIVERED not in moves and Status.REFUNDED not in moves
        assert Status.CANCELLED not in moves or event_type == "refund.completed"


def test_a_sale_given_back_is_refunded_before_the_certificate_came_only():
    assert [s.value for s in Status if transition(s, "refund.completed").applied] == [
        "paid",
        "sent_to_supplier",
        "supplier_rejected",
        "cancelled",
    ]
    assert transition("cancelled", "refund.completed").after == Status.REFUNDED


def test_a_shipped_certificate_is_then_delivered():
    assert transition("shipped", "certificate.delivered").after == Status.DELIVERED
    assert not transition("certificate_received", "certificate.delivered").applied


# through the broker ----------------------------------------------------------------------------


@pytest.fixture
def pipeline(runtime, start_with_producer, runtime_factory):
    """The orders consumer and relay, and the relays of the services that produce what it
    consumes (payments; supplier-gateway): each event goes through the real broker to the orders
    queue, published by the producer the catalogue names."""
    producers = {"payments": start_with_producer(runtime, payments_definition)}
    producers["supplier-gateway"] = runtime_factory(supplier_definition)
    stop = threading.Event()
    threads = producers["supplier-gateway"].start_worker_threads(stop, consume=False)
    yield producers
    stop.set()
    for thread in threads:
        thread.join(timeout=10)


DATA = {
    "payment.confirmed": {
        "method": "card",
        "provider": "systempay",
        "provider_transaction_id": "tx-1",
        "amount": {"amount_cents": 24900, "currency": "EUR"},
    },
    "payment.failed": {"method": "card", "provider": "systempay", "reason": "REFUSED"},
    "documents.sent_to_supplier": {"supplier": "psa-coc", "supplier_request_id": "REQ-1"},
    "certificate.received": {"supplier": "psa-coc", "certificate_document_id": "cert-1"},
    "certificate.shipped": {"carrier": "colissimo", "tracking_number": "6A123"},
    "documents.rejected_by_supplier": {
        "supplier": "psa-coc",
        "reason": "registration certificate unreadable",
        "documents_requested": ["registration_certificate"],
    },
    "payment.refunded": {
        "method": "card",
        "provider": "systempay",
        "kind": "refunded",
        "provider_transaction_id": "tx-1",
        "amount": {"amount_cents": 24900, "currency": "EUR"},
    },
    "supplier.request_accepted": {
        "supplier": "psa-coc",
        "supplier_request_id": "REQ-1",
        "accepted_at": "2026-12-05T10:00:00+00:00",
    },
    "invoice.issued": {
        "kind": "invoice",
        "number": "FA-00000001",
        "issued_at": "2026-12-05T10:00:00+00:00",
        "total": {"amount_cents": 24900, "currency": "EUR"},
        "vat": {"amount_cents": 4150, "currency": "EUR"},
        "vat_regime": "standard",
        "pdf_url": "https://payments.example/v1/orders/o/invoices/FA-00000001.pdf",
        "list_url": "https://payments.example/v1/orders/o/invoices",
    },
    "refund.requested": {
        "reason": "cancelled_after_payment",
        "method": "card",
        "provider": "systempay",
        "provider_transaction_id": "tx-1",
        "amount": {"amount_cents": 24900, "currency": "EUR"},
        "credit_note_number": "AV-00000001",
    },
    "refund.completed": {
        "method": "card",
        "provider": "systempay",
        "provider_refund_id": "rf-1",
        "amount": {"amount_cents": 24900, "currency": "EUR"},
    },
    "refund.failed": {
        "method": "card",
        "provider": "systempay",
        "reason": "Systempay: PSP_100",
        "amount": {"amount_cents": 24900, "currency": "EUR"},
    },
}


def emit(producers, order_id: str, event_type: str, **changes):
    """``event_type`` for the order from its producer's outbox (``DATA``, with ``changes``)."""
    producer = producers[lookup(event_type, 1).producer]
    data = {"order_id": order_id, **DATA[event_type], **changes}
    with producer.unit_of_work(correlation_id=order_id) as uow:
        event = uow.emit(event_type, data, subject=order_id)
        uow.commit()
    return event


def timeline(client, order_id, token):
    answer = client.get(f"/v1/orders/{order_id}", headers={"X-Order-Token": token})
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def handled(runtime, event_id) -> bool:
    with runtime.engine.connect() as conn:
        return (
            conn.execute(
                select(runtime.inbox.c.event_id).where(runtime.inbox.c.event_id == event_id)
            ).first()
            is not None
        )


def test_the_lifecycle_driven_by_real_events_with_late_early_and_duplicated_ones(
    runtime, client, pipeline
):
    placed = client.post("/v1/orders", json=order_body()).get_json()
    order_id, token = placed["id"], placed["access_token"]

    failed = emit(pipeline, order_id, "payment.failed")
    wait_until(
        lambda: order_status(runtime, order_id) == "payment_failed", message="payment_failed"
    )
    early = emit(pipeline, order_id, "certificate.shipped")  # out of order: not yet received
    wait_until(lambda: handled(runtime, early.id), message="early certificate.shipped handled")
    assert order_status(runtime, order_id) == "payment_failed"
    confirmed = emit(pipeline, order_id, "payment.confirmed")
    wait_until(lambda: order_status(runtime, order_id) == "paid", message="paid")
    late = emit(pipeline, order_id, "payment.failed")  # a late failure after the payment
    wait_until(lambda: handled(runtime, late.id), message="late payment.failed handled")
    assert order_status(runtime, order_id) == "paid"

    # the same payment.confirmed published again (a relay crash before marking it sent)
    clear_sent_at(pipeline["payments"], confirmed.id)
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


PDF = pdf_bytes()


def upload(client, order, kind):
    answer = client.post(
        f"/v1/orders/{order['id']}/documents",
        headers={"X-Order-Token": order["access_token"]},
        data={"kind": kind, "file": (io.BytesIO(PDF), "scan.pdf", "application/pdf")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def test_the_supplier_asks_for_a_document_again_and_a_new_complete_set_is_announced(
    runtime, client, pipeline
):
    order = client.post("/v1/orders", json=order_body()).get_json()
    order_id = order["id"]
    id_card = upload(client, order, "id_card")["document"]
    first = upload(client, order, "registration_certificate")
    assert first["documents_completed"] is True
    emit(pipeline, order_id, "payment.confirmed")
    wait_until(lambda: order_status(runtime, order_id) == "paid", message="paid")
    early = emit(pipeline, order_id, "documents.rejected_by_supplier")  # not sent yet: does not fit
    wait_until(lambda: handled(runtime, early.id), message="early rejection handled")
    assert timeline(client, order_id, order["access_token"])["documents_required"] == []

    emit(pipeline, order_id, "documents.sent_to_supplier")
    wait_until(
        lambda: order_status(runtime, order_id) == "sent_to_supplier", message="sent_to_supplier"
    )
    emit(pipeline, order_id, "documents.rejected_by_supplier")
    wait_until(
        lambda: order_status(runtime, order_id) == "supplier_rejected", message="supplier_rejected"
    )
    view = timeline(client, order_id, order["access_token"])
    assert view["documents_required"] == ["registration_certificate"]
    rejected = {d["id"]: d["rejected_at"] for d in view["documents"]}
    assert rejected[id_card["id"]] is None and rejected[first["document"]["id"]] is not None

    again = upload(client, order, "registration_certificate")
    assert again["documents_completed"] is True and again["documents_required"] == []
    completed = outbox_events(runtime, "order.documents_completed", order_id)
    assert [e["data"]["document_ids"] for e in completed] == [
        [id_card["id"], first["document"]["id"]],
        [id_card["id"], again["document"]["id"]],
    ]
    emit(pipeline, order_id, "documents.sent_to_supplier")
    wait_until(lambda: order_status(runtime, order_id) == "sent_to_supplier", message="sent again")
    entries = [
        (e["event"], e["outcome"], e["status"])
        for e in timeline(client, order_id, order["access_token"])["timeline"]
    ]
    assert entries == [
        ("order.placed", "applied", "placed"),
        ("order.documents_completed", "applied", "placed"),
        ("payment.confirmed", "applied", "paid"),
        ("documents.rejected_by_supplier", "ignored", None),
        ("documents.sent_to_supplier", "applied", "sent_to_supplier"),
        ("documents.rejected_by_supplier", "applied", "supplier_rejected"),
        ("order.documents_completed", "applied", "supplier_rejected"),
        ("documents.sent_to_supplier", "applied", "sent_to_supplier"),
    ]


def test_a_refund_is_recorded_in_the_timeline_and_moves_nothing(runtime, client, pipeline):
    placed = client.post("/v1/orders", json=order_body()).get_json()
    order_id, token = placed["id"], placed["access_token"]
    emit(pipeline, order_id, "payment.confirmed")
    wait_until(lambda: order_status(runtime, order_id) == "paid", message="paid")
    refunded = emit(pipeline, order_id, "payment.refunded")
    wait_until(lambda: handled(runtime, refunded.id), message="payment.refunded handled")
    view = timeline(client, order_id, token)
    assert view["status"] == "paid"
    assert (
        view["timeline"][-1]["event"],
        view["timeline"][-1]["outcome"],
        view["timeline"][-1]["status"],
    ) == ("payment.refunded", "recorded", None)
    # after a cancellation, the refund that follows is recorded the same way
    assert (
        client.post(
            f"/v1/orders/{order_id}/cancellation",
            json={"reason": "too late"},
            headers={"X-Order-Token": token},
        ).status_code
        == 200
    )
    second = emit(pipeline, order_id, "payment.refunded")
    wait_until(lambda: handled(runtime, second.id), message="second payment.refunded handled")
    assert [(e["event"], e["outcome"]) for e in timeline(client, order_id, token)["timeline"]][
        -2:
    ] == [("order.cancelled", "applied"), ("payment.refunded", "recorded")]
    assert order_status(runtime, order_id) == "cancelled"


def test_a_confirmation_of_another_amount_does_not_pay_the_order(runtime, client, pipeline):
    """Before: a payment.confirmed of 1 cent (forged, or a provider's partial payment) moved the
    order to paid. Now only the order's total in its currency pays it; anything else is recorded
    as amount_mismatch in the timeline (the customer's and the staff's) and the order stays."""
    placed = client.post("/v1/orders", json=order_body()).get_json()
    order_id, token = placed["id"], placed["access_token"]
    cent = emit(
        pipeline, order_id, "payment.confirmed", amount={"amount_cents": 1, "currency": "EUR"}
    )
    dollars = emit(
        pipeline, order_id, "payment.confirmed", amount={"amount_cents": 24900, "currency": "USD"}
    )
    wait_until(
        lambda: handled(runtime, cent.id) and handled(runtime, dollars.id), message="handled"
    )
    assert order_status(runtime, order_id) == "placed"
    entries = [
        (e["event"], e["outcome"], e["status"])
        for e in timeline(client, order_id, token)["timeline"]
    ]
    assert entries == [
        ("order.placed", "applied", "placed"),
        ("payment.confirmed", "amount_mismatch", None),
        ("payment.confirmed", "amount_mismatch", None),
    ]
    staff, auth = staff_client(runtime)
    items = staff.get(f"/v1/staff/orders/{order_id}/events", headers=auth).get_json()["items"]
    assert [(i["event_id"], i["outcome"]) for i in items[1:]] == [
        (cent.id, "amount_mismatch"),
        (dollars.id, "amount_mismatch"),
    ]
    # the order's own total still pays it
    emit(pipeline, order_id, "payment.confirmed")
    wait_until(lambda: order_status(runtime, order_id) == "paid", message="paid")


def entries_of(client, order_id, token) -> list[tuple]:
    return [
        (e["event"], e["outcome"], e["status"])
        for e in timeline(client, order_id, token)["timeline"]
    ]


def test_the_supplier_s_acceptance_and_the_invoice_are_steps_of_the_timeline(
    runtime, client, pipeline
):
    placed = client.post("/v1/orders", json=order_body()).get_json()
    order_id, token = placed["id"], placed["access_token"]
    emit(pipeline, order_id, "payment.confirmed")
    wait_until(lambda: order_status(runtime, order_id) == "paid", message="paid")
    invoice = emit(pipeline, order_id, "invoice.issued")
    emit(pipeline, order_id, "documents.sent_to_supplier")
    wait_until(lambda: order_status(runtime, order_id) == "sent_to_supplier", message="sent")
    accepted = emit(pipeline, order_id, "supplier.request_accepted")
    wait_until(
        lambda: handled(runtime, accepted.id) and handled(runtime, invoice.id), message="handled"
    )
    assert order_status(runtime, order_id) == "sent_to_supplier"
    assert entries_of(client, order_id, token)[1:] == [
        ("payment.confirmed", "applied", "paid"),
        ("invoice.issued", "recorded", None),
        ("documents.sent_to_supplier", "applied", "sent_to_supplier"),
        ("supplier.request_accepted", "recorded", None),
    ]


def test_an_order_cancelled_after_payment_is_refunded_once_its_money_went_back(
    runtime, client, pipeline
):
    placed = client.post("/v1/orders", json=order_body()).get_json()
    order_id, token = placed["id"], placed["access_token"]
    emit(pipeline, order_id, "payment.confirmed")
    wait_until(lambda: order_status(runtime, order_id) == "paid", message="paid")
    assert (
        client.post(
            f"/v1/orders/{order_id}/cancellation",
            json={"reason": "ordered twice"},
            headers={"X-Order-Token": token},
        ).status_code
        == 200
    )
    refund_id = str(uuid.uuid4())
    requested = emit(pipeline, order_id, "refund.requested", refund_id=refund_id)
    failed = emit(pipeline, order_id, "refund.failed", refund_id=refund_id)
    wait_until(
        lambda: handled(runtime, requested.id) and handled(runtime, failed.id), message="handled"
    )
    assert order_status(runtime, order_id) == "cancelled"  # asked, not given back yet
    completed = emit(pipeline, order_id, "refund.completed", refund_id=refund_id)
    wait_until(lambda: order_status(runtime, order_id) == "refunded", message="refunded")
    # the same refund.completed published again: one effect
    publish_again(pipeline["payments"], completed.id)
    again = emit(pipeline, order_id, "invoice.issued", kind="credit_note", number="AV-00000001")
    wait_until(lambda: handled(runtime, again.id), message="credit note handled")
    assert entries_of(client, order_id, token)[1:] == [
        ("payment.confirmed", "applied", "paid"),
        ("order.cancelled", "applied", "cancelled"),
        ("refund.requested", "recorded", None),
        ("refund.failed", "recorded", None),
        ("refund.completed", "applied", "refunded"),
        ("invoice.issued", "recorded", None),
    ]
    view = timeline(client, order_id, token)
    assert view["status"] == "refunded"
    # a refunded order takes no more documents
    refused = client.post(
        f"/v1/orders/{order_id}/documents",
        headers={"X-Order-Token": token},
        data={"kind": "id_card", "file": (io.BytesIO(PDF), "scan.pdf", "application/pdf")},
        content_type="multipart/form-data",
    )
    assert refused.status_code == 409, refused.get_json()


def test_a_refund_completed_before_its_request_is_handled_settles_the_order_with_the_request(
    runtime, client, pipeline
):
    placed = client.post("/v1/orders", json=order_body()).get_json()
    order_id, token = placed["id"], placed["access_token"]
    emit(pipeline, order_id, "payment.confirmed")
    wait_until(lambda: order_status(runtime, order_id) == "paid", message="paid")
    emit(pipeline, order_id, "documents.sent_to_supplier")
    wait_until(lambda: order_status(runtime, order_id) == "sent_to_supplier", message="sent")
    refund_id = str(uuid.uuid4())
    completed = emit(pipeline, order_id, "refund.completed", refund_id=refund_id)
    wait_until(lambda: handled(runtime, completed.id), message="refund.completed handled")
    assert order_status(runtime, order_id) == "sent_to_supplier"  # the reason is not known yet
    emit(pipeline, order_id, "refund.requested", refund_id=refund_id, reason="supplier_unable")
    wait_until(lambda: order_status(runtime, order_id) == "refunded", message="refunded")
    assert entries_of(client, order_id, token)[-2:] == [
        ("refund.completed", "recorded", None),
        ("refund.requested", "applied", "refunded"),
    ]


@pytest.mark.parametrize(
    "changes",
    [
        {"reason": "duplicate_payment"},  # the sale stands
        {"amount": {"amount_cents": 4900, "currency": "EUR"}},  # a part of the total
    ],
)
def test_a_duplicate_payment_s_or_a_partial_refund_leaves_the_order_as_it_is(
    runtime, client, pipeline, changes
):
    placed = client.post("/v1/orders", json=order_body()).get_json()
    order_id, token = placed["id"], placed["access_token"]
    emit(pipeline, order_id, "payment.confirmed")
    wait_until(lambda: order_status(runtime, order_id) == "paid", message="paid")
    refund_id = str(uuid.uuid4())
    emit(pipeline, order_id, "refund.requested", refund_id=refund_id, **changes)
    amount = {"amount": changes["amount"]} if "amount" in changes else {}
    completed = emit(pipeline, order_id, "refund.completed", refund_id=refund_id, **amount)
    wait_until(lambda: handled(runtime, completed.id), message="refund.completed handled")
    assert order_status(runtime, order_id) == "paid"
    assert entries_of(client, order_id, token)[-2:] == [
        ("refund.requested", "recorded", None),
        ("refund.completed", "recorded", None),
    ]
