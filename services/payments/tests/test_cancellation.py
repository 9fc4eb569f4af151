"""order.cancelled through the broker: the payment is no longer due (checkout answers 409), money
that arrives afterwards confirms nothing and goes to the review list (``paid_after_cancellation``),
a paid order that is cancelled is reviewed for a refund (``cancelled_after_payment``), and an
approved PayPal order of a cancelled order is not captured."""

from payments_testkit import (
    count,
    form_body,
    outbox_events,
    qonto_body,
    qonto_headers,
    review_reasons,
    systempay_ipn,
)
from sqlalchemy import select

from coc_payments.adapters import tables

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def ipn(client, fields):
    return client.post("/v1/callbacks/systempay", data=form_body(fields), headers=FORM)


def due_status(runtime, order_id):
    with runtime.engine.connect() as conn:
        return conn.execute(
            select(tables.payments_due.c.status).where(tables.payments_due.c.order_id == order_id)
        ).scalar_one()


def review_items(client, staff_auth, order_id):
    answer = client.get(f"/v1/payments/review?order_id={order_id}", headers=staff_auth)
    assert answer.status_code == 200
    return [
        (i["reason"], i["provider"], i["provider_transaction_id"], i["amount_cents"])
        for i in answer.get_json()["items"]
    ]


def test_a_cancelled_order_cannot_be_paid_and_a_late_card_payment_goes_to_review(
    pipeline, client, staff_auth
):
    order, token = pipeline.place("card", 24900)
    checkout = f"/v1/payments/{order['order_id']}/checkout"
    assert (
        client.post(checkout, headers={"X-Order-Token": token}).status_code == 200
    )  # the form is out
    pipeline.cancel(order["order_id"])
    assert due_status(pipeline.payments, order["order_id"]) == "cancelled"
    refused = client.post(checkout, headers={"X-Order-Token": token})
    assert refused.status_code == 409
    assert refused.get_json()["error"] == {
        **refused.get_json()["error"],
        "code": "conflict",
        "message": "this order was cancelled: nothing is to be paid",
    }

    # the customer paid on the form obtained before the cancellation
    paid = systempay_ipn(order["order_number"], 24900, "AUTHORISED")
    for _ in range(2):  # delivered twice: one review item
        answer = ipn(client, paid)
        assert answer.status_code == 200
    assert answer.get_json()["status"] == "duplicate"
    assert outbox_events(pipeline.payments, "payment.confirmed", order["order_id"]) == []
    assert outbox_events(pipeline.payments, "payment.duplicate_detected", order["order_id"]) == []
    assert due_status(pipeline.payments, order["order_id"]) == "cancelled"
    assert review_items(client, staff_auth, order["order_id"]) == [
        ("paid_after_cancellation", "systempay", paid["vads_trans_uuid"], 24900)
    ]
    assert pipeline.observer.of("payment.confirmed", order["order_id"]) == []


def test_a_paid_order_that_is_cancelled_is_reviewed_for_a_refund(pipeline, client, staff_auth):
    order, token = pipeline.place("card", 15000)
    paid = systempay_ipn(order["order_number"], 15000, "AUTHORISED")
    assert ipn(client, paid).status_code == 200
    pipeline.observer.wait("payment.confirmed", order["order_id"])
    pipeline.cancel(order["order_id"])
    assert due_status(pipeline.payments, order["order_id"]) == "cancelled"
    assert review_items(client, staff_auth, order["order_id"]) == [
        ("cancelled_after_payment", "systempay", paid["vads_trans_uuid"], 15000)
    ]
    # the capture of the same transaction, reported later, is no new payment
    captured = systempay_ipn(
        order["order_number"], 15000, "CAPTURED", trans_uuid=paid["vads_trans_uuid"]
    )
    assert ipn(client, captured).get_json()["outcome"] == "already_applied"
    assert review_reasons(pipeline.payments, order["order_id"]) == ["cancelled_after_payment"]
    assert len(outbox_events(pipeline.payments, "payment.confirmed", order["order_id"])) == 1
    assert (
        client.post(
            f"/v1/payments/{order['order_id']}/checkout", headers={"X-Order-Token": token}
        ).status_code
        == 409
    )


def test_a_paypal_approval_after_the_cancellation_captures_nothing(pipeline, client, fake_paypal):
    order, token = pipeline.place("paypal", 7000)
    answer = client.post(
        f"/v1/payments/{order['order_id']}/checkout", headers={"X-Order-Token": token}
    )
    paypal_id = answer.get_json()["paypal_order_id"]
    pipeline.cancel(order["order_id"])
    body, headers = fake_paypal.webhook(
        "CHECKOUT.ORDER.APPROVED", {"id": paypal_id, "status": "APPROVED"}
    )
    answer = client.post("/v1/callbacks/paypal", data=body, headers=headers)
    assert answer.status_code == 200 and answer.get_json()["outcome"] == "not_captured"
    assert ("POST", f"/v2/checkout/orders/{paypal_id}/capture") not in fake_paypal.calls
    assert fake_paypal.orders[paypal_id]["status"] != "COMPLETED"
    assert (
        count(
            pipeline.payments, tables.callbacks, order_id=order["order_id"], outcome="not_captured"
        )
        == 1
    )
    assert outbox_events(pipeline.payments, "payment.confirmed", order["order_id"]) == []


def test_a_transfer_after_the_cancellation_goes_to_review(pipeline, client, staff_auth):
    order, token = pipeline.place("transfer", 24900)
    reference = client.post(
        f"/v1/payments/{order['order_id']}/checkout", headers={"X-Order-Token": token}
    ).get_json()["reference_compact"]
    pipeline.cancel(order["order_id"], cancelled_by="staff")
    body = qonto_body(reference, 24900)
    answer = client.post("/v1/callbacks/bank-transfer", data=body, headers=qonto_headers(body))
    assert answer.status_code == 200 and answer.get_json()["outcome"] == "review"
    assert [r[0] for r in review_items(client, staff_auth, order["order_id"])] == [
        "paid_after_cancellation"
    ]
    assert outbox_events(pipeline.payments, "payment.confirmed", order["order_id"]) == []
