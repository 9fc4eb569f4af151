"""PayPal: Orders v2 checkout through the real client against a local PayPal, webhooks signed with
a certificate made by the test and verified as PayPal specifies, capture on approval."""

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from payments_testkit import (
    count,
    form_body,
    order_placed,
    outbox_events,
    record_order,
    review_reasons,
    systempay_ipn,
)
from sqlalchemy import select

from coc_payments.adapters import tables


def post_webhook(client, body, headers):
    return client.post("/v1/callbacks/paypal", data=body, headers=headers)


def checkout(client, order_id, token):
    answer = client.post(f"/v1/payments/{order_id}/checkout", headers={"X-Order-Token": token})
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def test_paypal_end_to_end_from_order_placed_to_payment_confirmed(pipeline, client, fake_paypal):
    order, token = pipeline.place("paypal", 24900)
    doc = checkout(client, order["order_id"], token)
    paypal_id = doc["paypal_order_id"]
    assert doc["approval_url"].endswith(f"token={paypal_id}")
    created = fake_paypal.orders[paypal_id]["purchase_units"][0]
    assert created["custom_id"] == order["order_number"] and created["amount"] == {
        "currency_code": "EUR",
        "value": "249.00",
    }
    # a retried checkout creates no second PayPal order
    assert checkout(client, order["order_id"], token)["paypal_order_id"] == paypal_id
    assert sum(1 for c in fake_paypal.calls if c == ("POST", "/v2/checkout/orders")) >= 1
    assert (
        len(
            [
                o
                for o in fake_paypal.orders.values()
                if o["purchase_units"][0]["reference_id"] == order["order_id"]
            ]
        )
        == 1
    )

    body, headers = fake_paypal.webhook(
        "CHECKOUT.ORDER.APPROVED", {"id": paypal_id, "status": "APPROVED"}
    )
    assert post_webhook(client, body, headers).status_code == 200
    assert fake_paypal.orders[paypal_id]["status"] == "COMPLETED"  # captured
    assert (
        pipeline.observer.of("payment.confirmed", order["order_id"]) == []
    )  # only the capture webhook confirms

    body, headers = fake_paypal.capture_completed(paypal_id)
    assert post_webhook(client, body, headers).status_code == 200
    confirmed = pipeline.observer.wait("payment.confirmed", order["order_id"])[0]
    assert confirmed["data"]["provider"] == "paypal" and confirmed["data"]["method"] == "paypal"
    assert confirmed["data"]["provider_transaction_id"] == fake_paypal.capture_of(paypal_id)["id"]


def approved_and_captured(runtime, client, fake_paypal, amount=5000):
    event, token = order_placed("paypal", amount)
    record_order(runtime, event)
    paypal_id = checkout(client, event.data["order_id"], token)["paypal_order_id"]
    body, headers = fake_paypal.webhook("CHECKOUT.ORDER.APPROVED", {"id": paypal_id})
    assert post_webhook(client, body, headers).status_code == 200
    return event, paypal_id


def test_the_same_webhook_five_times_and_a_repeated_approval_capture_and_confirm_once(
    runtime, client, fake_paypal
):
    event, paypal_id = approved_and_captured(runtime, client, fake_paypal)
    again, headers = fake_paypal.webhook("CHECKOUT.ORDER.APPROVED", {"id": paypal_id})
    assert post_webhook(client, again, headers).status_code == 200  # idempotent capture
    captures = [
        c for c in fake_paypal.calls if c == ("POST", f"/v2/checkout/orders/{paypal_id}/capture")
    ]
    assert len(captures) == 1
    body, headers = fake_paypal.capture_completed(paypal_id)
    for _ in range(5):
        assert post_webhook(client, body, headers).status_code == 200
    assert len(outbox_events(runtime, "payment.confirmed", event.data["order_id"])) == 1
    # the same capture announced by another webhook event: no second confirmation, nothing to review
    body2, headers2 = fake_paypal.capture_completed(paypal_id)
    assert post_webhook(client, body2, headers2).status_code == 200
    assert len(outbox_events(runtime, "payment.confirmed", event.data["order_id"])) == 1
    assert review_reasons(runtime, event.data["order_id"]) == []


def test_a_failed_capture_call_is_answered_503_and_retried_on_redelivery(
    runtime, client, fake_paypal
):
    event, token = order_placed("paypal", 5000)
    record_order(runtime, event)
    paypal_id = checkout(client, event.data["order_id"], token)["paypal_order_id"]
    body, headers = fake_paypal.webhook("CHECKOUT.ORDER.APPROVED", {"id": paypal_id})
    fake_paypal.fail_capture = True
    try:
        assert post_webhook(client, body, headers).status_code == 503
    finally:
        fake_paypal.fail_capture = False
    assert post_webhook(client, body, headers).status_code == 200
    assert fake_paypal.orders[paypal_id]["status"] == "COMPLETED"


@pytest.mark.parametrize(
    "case",
    [
        "outside_host",
        "other_scheme",
        "userinfo_trick",
        "wrong_key",
        "altered_body",
        "other_webhook_id",
        "missing_headers",
    ],
)
def test_a_webhook_without_valid_proof_is_refused(runtime, client, fake_paypal, case):
    event, paypal_id = approved_and_captured(runtime, client, fake_paypal)
    base = fake_paypal.url
    kw = {
        "outside_host": {"cert_url": "https://evil.example/v1/notifications/certs/CERT-1"},
        "other_scheme": {
            "cert_url": base.replace("http://", "https://") + "/v1/notifications/certs/CERT-1"
        },
        "userinfo_trick": {
            "cert_url": base.replace("http://", "http://evil@") + "/v1/notifications/certs/CERT-1"
        },
        "wrong_key": {"key": rsa.generate_private_key(public_exponent=65537, key_size=2048)},
        "other_webhook_id": {"webhook_id": "WH-SOMEONE-ELSE"},
    }.get(case, {})
    downloads = fake_paypal.cert_downloads
    body, headers = fake_paypal.capture_completed(paypal_id, **kw)
    if case == "altered_body":
        body = body.replace(b'"COMPLETED"', b'"COMPLETED" ', 1)
    if case == "missing_headers":
        headers = {"Content-Type": "application/json"}
    answer = post_webhook(client, body, headers)
    assert answer.status_code == 401
    if case in ("outside_host", "other_scheme", "userinfo_trick"):
        assert fake_paypal.cert_downloads == downloads  # nothing fetched from there
    assert outbox_events(runtime, "payment.confirmed", event.data["order_id"]) == []
    with runtime.engine.connect() as conn:
        assert (
            conn.execute(
                select(tables.payments_due.c.status).where(
                    tables.payments_due.c.order_id == event.data["order_id"]
                )
            ).scalar_one()
            == "due"
        )


def test_the_certificate_is_downloaded_once_and_cached(runtime, client, fake_paypal):
    event, paypal_id = approved_and_captured(runtime, client, fake_paypal)
    before = fake_paypal.cert_downloads
    for _ in range(3):
        body, headers = fake_paypal.webhook(
            "PAYMENT.CAPTURE.PENDING",
            {"id": "CAPX", "status": "PENDING", "custom_id": event.data["order_number"]},
        )
        assert post_webhook(client, body, headers).status_code == 200
    assert fake_paypal.cert_downloads == before
    assert (
        outbox_events(runtime, "payment.confirmed", event.data["order_id"]) == []
    )  # PENDING confirms nothing


def test_a_denied_capture_fails_the_payment(runtime, client, fake_paypal):
    event, paypal_id = approved_and_captured(runtime, client, fake_paypal)
    capture = dict(fake_paypal.capture_of(paypal_id), status="DECLINED")
    body, headers = fake_paypal.webhook("PAYMENT.CAPTURE.DENIED", capture)
    assert post_webhook(client, body, headers).status_code == 200
    assert [
        e["data"]["reason"]
        for e in outbox_events(runtime, "payment.failed", event.data["order_id"])
    ] == ["DECLINED"]
    assert outbox_events(runtime, "payment.confirmed", event.data["order_id"]) == []


def test_refunds_and_reversals_are_recorded_for_review(runtime, client, fake_paypal):
    event, paypal_id = approved_and_captured(runtime, client, fake_paypal)
    body, headers = fake_paypal.capture_completed(paypal_id)
    assert post_webhook(client, body, headers).status_code == 200
    capture = fake_paypal.capture_of(paypal_id)
    refund = {
        "id": "REF123",
        "status": "COMPLETED",
        "amount": capture["amount"],
        "custom_id": capture["custom_id"],
        "links": [{"rel": "up", "href": f"{fake_paypal.url}/v2/payments/captures/{capture['id']}"}],
    }
    body, headers = fake_paypal.webhook("PAYMENT.CAPTURE.REFUNDED", refund)
    assert post_webhook(client, body, headers).status_code == 200
    body, headers = fake_paypal.webhook(
        "PAYMENT.CAPTURE.REVERSED", dict(capture, status="REVERSED")
    )
    assert post_webhook(client, body, headers).status_code == 200
    assert review_reasons(runtime, event.data["order_id"]) == ["refunded", "reversed"]
    assert len(outbox_events(runtime, "payment.confirmed", event.data["order_id"])) == 1


def test_two_providers_confirming_the_same_order_confirm_once_and_report_a_duplicate(
    pipeline, client, fake_paypal
):
    order, token = pipeline.place("paypal", 7000)
    paypal_id = checkout(client, order["order_id"], token)["paypal_order_id"]
    body, headers = fake_paypal.webhook("CHECKOUT.ORDER.APPROVED", {"id": paypal_id})
    assert post_webhook(client, body, headers).status_code == 200
    body, headers = fake_paypal.capture_completed(paypal_id)
    assert post_webhook(client, body, headers).status_code == 200
    # the customer also paid by card on another tab
    card = systempay_ipn(order["order_number"], 7000, "AUTHORISED")
    assert (
        client.post(
            "/v1/callbacks/systempay",
            data=form_body(card),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ).status_code
        == 200
    )
    duplicate = pipeline.observer.wait("payment.duplicate_detected", order["order_id"])[0]
    assert duplicate["data"]["provider"] == "systempay"
    assert duplicate["data"]["provider_transaction_id"] == card["vads_trans_uuid"]
    assert len(pipeline.observer.of("payment.confirmed", order["order_id"])) == 1
    assert review_reasons(pipeline.payments, order["order_id"]) == ["duplicate_payment"]
    assert count(pipeline.payments, tables.confirmations, order_id=order["order_id"]) == 1
