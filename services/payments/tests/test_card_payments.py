"""Card payments on the bank's hosted page (Systempay / Lyra): checkout form, signed instant
payment notifications, end to end from order.placed to payment.confirmed through the broker."""

import uuid

import pytest
from payments_testkit import (
    CUSTOMER_SECRET,
    SITE_ID,
    SYSTEMPAY_PRODUCTION_KEY,
    SYSTEMPAY_TEST_KEY,
    count,
    form_body,
    order_placed,
    outbox_events,
    payments_extra,
    record_order,
    review_reasons,
    systempay_ipn,
    systempay_signature,
)
from sqlalchemy import select

from coc_payments.adapters import tables
from coc_payments.service import definition
from coc_shared.tokens import issue_customer_token

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def ipn(client, fields):
    return client.post("/v1/callbacks/systempay", data=form_body(fields), headers=FORM)


def test_card_end_to_end_from_order_placed_to_payment_confirmed(pipeline, client):
    order, token = pipeline.place("card", 24900)
    answer = client.post(
        f"/v1/payments/{order['order_id']}/checkout", headers={"X-Order-Token": token}
    )
    assert answer.status_code == 200, answer.get_json()
    doc = answer.get_json()
    form = doc["form"]
    assert (
        doc["method"] == "card"
        and form["url"] == "https://bank.test/vads-payment/"
        and form["method"] == "POST"
    )
    fields = form["fields"]
    assert fields["vads_order_id"] == order["order_number"] and fields["vads_amount"] == "24900"
    assert (
        fields["vads_currency"] == "978"
        and fields["vads_ctx_mode"] == "TEST"
        and fields["vads_site_id"] == SITE_ID
    )
    assert len(fields["vads_trans_id"]) == 6 and fields["vads_trans_id"].isdigit()
    assert fields["vads_url_check"] == "https://payments.test/v1/callbacks/systempay"
    assert fields["signature"] == systempay_signature(fields, SYSTEMPAY_TEST_KEY)
    # nothing personal goes to the bank
    assert not any(k.startswith(("vads_cust_", "vads_ship_")) for k in fields)
    second = client.post(
        f"/v1/payments/{order['order_id']}/checkout", headers={"X-Order-Token": token}
    ).get_json()
    assert second["form"]["fields"]["vads_trans_id"] != fields["vads_trans_id"]

    notification = systempay_ipn(order["order_number"], 24900, "AUTHORISED")
    response = ipn(client, notification)
    assert response.status_code == 200, response.get_json()
    confirmed = pipeline.observer.wait("payment.confirmed", order["order_id"])[0]
    assert confirmed["data"] == {
        **confirmed["data"],
        "order_id": order["order_id"],
        "method": "card",
        "provider": "systempay",
        "provider_transaction_id": notification["vads_trans_uuid"],
        "amount": {"amount_cents": 24900, "currency": "EUR"},
    }
    assert confirmed["correlation_id"] == order["order_id"]
    assert (
        client.post(
            f"/v1/payments/{order['order_id']}/checkout", headers={"X-Order-Token": token}
        ).status_code
        == 409
    )


def test_the_same_notification_five_times_confirms_once(runtime, client):
    event, _ = order_placed("card", 1500)
    record_order(runtime, event)
    notification = systempay_ipn(event.data["order_number"], 1500, "CAPTURED")
    for _ in range(5):
        assert ipn(client, notification).status_code == 200
    assert len(outbox_events(runtime, "payment.confirmed", event.data["order_id"])) == 1
    assert count(runtime, tables.callbacks, order_id=event.data["order_id"]) == 1
    assert (
        count(runtime, tables.callbacks, dedupe_key=f"{notification['vads_trans_uuid']}:CAPTURED")
        == 5
    )
    # AUTHORISED then CAPTURED of the same transaction: still one confirmation, nothing to review
    ipn(
        client,
        {
            **systempay_ipn(
                event.data["order_number"],
                1500,
                "AUTHORISED",
                trans_uuid=notification["vads_trans_uuid"],
            )
        },
    )
    assert len(outbox_events(runtime, "payment.confirmed", event.data["order_id"])) == 1
    assert review_reasons(runtime, event.data["order_id"]) == []


@pytest.mark.parametrize(
    "tamper",
    [
        "wrong_key",
        "altered_amount",
        "altered_blank_field",
        "no_signature",
        "other_mode_key",
        "unknown_mode",
        "other_shop",
    ],
)
def test_a_notification_without_a_valid_signature_is_refused_and_applies_nothing(
    runtime, client, tamper
):
    event, _ = order_placed("card", 2000)
    record_order(runtime, event)
    fields = systempay_ipn(event.data["order_number"], 2000)
    if tamper == "wrong_key":
        fields = systempay_ipn(event.data["order_number"], 2000, key="not-the-key")
    elif tamper == "altered_amount":
        fields["vads_amount"] = "1"  # signature over the original fields
    elif tamper == "altered_blank_field":
        fields["vads_extra_result"] = "X"  # blank fields are signed too
    elif tamper == "no_signature":
        del fields["signature"]
    elif tamper == "other_mode_key":
        fields = systempay_ipn(
            event.data["order_number"], 2000, mode="PRODUCTION", key=SYSTEMPAY_TEST_KEY
        )
    elif tamper == "unknown_mode":
        fields = systempay_ipn(
            event.data["order_number"], 2000, mode="DEMO", key=SYSTEMPAY_TEST_KEY
        )
    elif tamper == "other_shop":
        fields = systempay_ipn(event.data["order_number"], 2000, vads_site_id="99999999")
    response = ipn(client, fields)
    assert response.status_code == 401
    assert response.get_json()["error"]["status"] == 401
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
        verdicts = (
            conn.execute(
                select(tables.callbacks.c.verdict).where(
                    tables.callbacks.c.body.contains(event.data["order_number"].encode())
                )
            )
            .scalars()
            .all()
        )
    assert verdicts == ["rejected"]  # kept for audit


@pytest.fixture
def production_shop(runtime_factory, fake_paypal):
    """The service configured for a shop in PRODUCTION mode (it holds both keys)."""
    return runtime_factory(
        definition,
        customer_token_secret=CUSTOMER_SECRET,
        extra={**payments_extra(fake_paypal.url), "SYSTEMPAY_MODE": "PRODUCTION"},
    )


def test_a_production_shop_takes_a_notification_signed_with_the_production_key(production_shop):
    event, _ = order_placed("card", 2000)
    record_order(production_shop, event)
    fields = systempay_ipn(
        event.data["order_number"], 2000, mode="PRODUCTION", key=SYSTEMPAY_PRODUCTION_KEY
    )
    assert ipn(production_shop.create_app().test_client(), fields).status_code == 200
    assert len(outbox_events(production_shop, "payment.confirmed", event.data["order_id"])) == 1


def rejected_details(runtime, order_number: str) -> list[tuple[str, str]]:
    with runtime.engine.connect() as conn:
        rows = conn.execute(
            select(tables.callbacks.c.verdict, tables.callbacks.c.detail, tables.callbacks.c.body)
        ).all()
    return [(r.verdict, r.detail) for r in rows if order_number.encode() in bytes(r.body)]


def test_a_production_shop_refuses_a_test_signed_notification_and_records_it(production_shop):
    """The key is the configured mode's: a notification signed with the TEST key (known to more
    people than the production one) never pays an order of a shop in PRODUCTION."""
    event, _ = order_placed("card", 2000)
    record_order(production_shop, event)
    fields = systempay_ipn(event.data["order_number"], 2000, mode="TEST", key=SYSTEMPAY_TEST_KEY)
    answer = ipn(production_shop.create_app().test_client(), fields)
    assert answer.status_code == 401
    assert outbox_events(production_shop, "payment.confirmed", event.data["order_id"]) == []
    [(verdict, detail)] = rejected_details(production_shop, event.data["order_number"])
    assert verdict == "rejected" and "'TEST'" in detail and "PRODUCTION" in detail


def test_a_test_shop_refuses_a_production_signed_notification(runtime, client):
    event, _ = order_placed("card", 2000)
    record_order(runtime, event)
    fields = systempay_ipn(
        event.data["order_number"], 2000, mode="PRODUCTION", key=SYSTEMPAY_PRODUCTION_KEY
    )
    assert ipn(client, fields).status_code == 401
    assert outbox_events(runtime, "payment.confirmed", event.data["order_id"]) == []
    assert [v for v, _ in rejected_details(runtime, event.data["order_number"])] == ["rejected"]


@pytest.mark.parametrize("status", ["REFUSED", "CANCELLED", "EXPIRED", "ABANDONED"])
def test_a_refused_card_fails_the_payment_and_the_customer_may_pay_again(runtime, client, status):
    event, token = order_placed("card", 3000)
    record_order(runtime, event)
    assert ipn(client, systempay_ipn(event.data["order_number"], 3000, status)).status_code == 200
    failed = outbox_events(runtime, "payment.failed", event.data["order_id"])
    assert [e["data"]["reason"] for e in failed] == [status]
    assert outbox_events(runtime, "payment.confirmed", event.data["order_id"]) == []
    assert (
        client.post(
            f"/v1/payments/{event.data['order_id']}/checkout", headers={"X-Order-Token": token}
        ).status_code
        == 200
    )
    assert (
        ipn(client, systempay_ipn(event.data["order_number"], 3000, "AUTHORISED")).status_code
        == 200
    )
    assert len(outbox_events(runtime, "payment.confirmed", event.data["order_id"])) == 1


def test_other_statuses_are_recorded_and_wait(runtime, client):
    event, _ = order_placed("card", 3000)
    record_order(runtime, event)
    for status in ("WAITING_AUTHORISATION", "AUTHORISED_TO_VALIDATE", "UNDER_VERIFICATION"):
        assert (
            ipn(client, systempay_ipn(event.data["order_number"], 3000, status)).status_code == 200
        )
    assert outbox_events(runtime, "payment.confirmed", event.data["order_id"]) == []
    assert outbox_events(runtime, "payment.failed", event.data["order_id"]) == []
    assert count(runtime, tables.callbacks, order_id=event.data["order_id"], outcome="record") == 3


@pytest.mark.parametrize(
    "change,reason",
    [({"vads_amount": "100"}, "amount_mismatch"), ({"vads_currency": "840"}, "currency_mismatch")],
)
def test_an_amount_or_currency_mismatch_goes_to_review_and_confirms_nothing(
    runtime, client, staff_auth, change, reason
):
    event, _ = order_placed("card", 24900)
    record_order(runtime, event)
    fields = systempay_ipn(event.data["order_number"], 24900, **change)
    assert ipn(client, fields).status_code == 200
    assert outbox_events(runtime, "payment.confirmed", event.data["order_id"]) == []
    assert review_reasons(runtime, event.data["order_id"]) == [reason]
    assert client.get("/v1/payments/review").status_code == 401
    items = client.get(
        f"/v1/payments/review?order_id={event.data['order_id']}", headers=staff_auth
    ).get_json()["items"]
    assert [(i["reason"], i["provider"], i["provider_transaction_id"]) for i in items] == [
        (reason, "systempay", fields["vads_trans_uuid"])
    ]


def test_a_notification_for_no_known_order_goes_to_review(runtime, client):
    fields = systempay_ipn("COC-NO-SUCH-ORDER", 1000)
    assert ipn(client, fields).status_code == 200
    with runtime.engine.connect() as conn:
        reasons = (
            conn.execute(
                select(tables.review_items.c.reason).where(
                    tables.review_items.c.provider_transaction_id == fields["vads_trans_uuid"]
                )
            )
            .scalars()
            .all()
        )
    assert reasons == ["unknown_order"]


def test_card_numbers_are_masked_in_the_audit_log(runtime, client):
    event, _ = order_placed("card", 1000)
    record_order(runtime, event)
    fields = systempay_ipn(event.data["order_number"], 1000, vads_card_number="4970101234560055")
    fields["signature"] = systempay_signature(fields, SYSTEMPAY_TEST_KEY)
    assert ipn(client, fields).status_code == 200
    with runtime.engine.connect() as conn:
        row = conn.execute(
            select(tables.callbacks).where(tables.callbacks.c.order_id == event.data["order_id"])
        ).one()
    assert b"4970101234560055" not in row.body and b"497010XXXXXX0055" in row.body
    assert fields["vads_trans_date"].encode() in row.body  # dates are left alone
    assert row.verdict == "accepted" and row.outcome == "confirm"
    assert row.headers["Content-Type"] == FORM["Content-Type"]


def test_checkout_needs_the_order_token_or_the_owner_bearer_token(runtime, client):
    account = str(uuid.uuid4())
    event, _ = order_placed("card", 1000, account_id=account)
    record_order(runtime, event)
    guest, guest_token = order_placed("card", 1000)
    record_order(runtime, guest)
    path = f"/v1/payments/{event.data['order_id']}/checkout"
    owner, _ = issue_customer_token(CUSTOMER_SECRET, account)
    other, _ = issue_customer_token(CUSTOMER_SECRET, str(uuid.uuid4()))
    assert client.post(path).status_code == 401
    assert client.post(path, headers={"Authorization": "Bearer not-a-jwt"}).status_code == 401
    assert client.post(path, headers={"Authorization": f"Bearer {owner}"}).status_code == 200
    assert client.post(path, headers={"Authorization": f"Bearer {other}"}).status_code == 404
    assert (
        client.post(path, headers={"X-Order-Token": guest_token}).status_code == 404
    )  # another order's token
    unknown = client.post(
        f"/v1/payments/{uuid.uuid4()}/checkout", headers={"Authorization": f"Bearer {owner}"}
    )
    assert unknown.status_code == 404 and unknown.get_json()["error"]["message"] == "no such order"
    guest_path = f"/v1/payments/{guest.data['order_id']}/checkout"
    assert client.post(guest_path, headers={"X-Order-Token": guest_token}).status_code == 200
    assert client.post(guest_path, headers={"X-Order-Token": "wrong"}).status_code == 404


def test_the_same_notification_five_times_at_once_and_a_second_transaction_confirm_once(runtime):
    from concurrent.futures import ThreadPoolExecutor

    event, _ = order_placed("card", 1500)
    record_order(runtime, event)
    app = runtime.create_app()
    same = systempay_ipn(event.data["order_number"], 1500)
    other = systempay_ipn(event.data["order_number"], 1500)  # a second successful transaction
    with ThreadPoolExecutor(6) as pool:
        answers = list(
            pool.map(lambda f: ipn(app.test_client(), f).status_code, [same] * 5 + [other])
        )
    assert answers == [200] * 6
    assert len(outbox_events(runtime, "payment.confirmed", event.data["order_id"])) == 1
    assert len(outbox_events(runtime, "payment.duplicate_detected", event.data["order_id"])) == 1
    assert review_reasons(runtime, event.data["order_id"]) == ["duplicate_payment"]


def test_without_a_shop_id_card_checkout_answers_503_and_notifications_401(
    runtime_factory, fake_paypal
):
    from payments_testkit import payments_extra

    from coc_payments.service import definition

    rt = runtime_factory(
        definition, extra={**payments_extra(fake_paypal.url), "SYSTEMPAY_SITE_ID": ""}
    )
    client = rt.create_app().test_client()
    event, token = order_placed("card", 1000)
    record_order(rt, event)
    answer = client.post(
        f"/v1/payments/{event.data['order_id']}/checkout", headers={"X-Order-Token": token}
    )
    assert (
        answer.status_code == 503
        and answer.get_json()["error"]["message"] == "card payments are not available now"
    )
    assert ipn(client, systempay_ipn(event.data["order_number"], 1000)).status_code == 401
    assert outbox_events(rt, "payment.confirmed", event.data["order_id"]) == []
