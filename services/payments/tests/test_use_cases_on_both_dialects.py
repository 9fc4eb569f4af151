"""Each use case of the providers' notifications and of the statements runs on both dialects:
PostgreSQL (where a unit of work's writes go as one generated statement) and SQLite (one by one).
Checked through the HTTP API, in the tables: the claim, the payment's state, the confirmation,
the outbox, and the callback's audit row, written once with its final verdict."""

import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from payments_testkit import (
    IBAN,
    count,
    form_body,
    order_placed,
    outbox_events,
    qonto_body,
    qonto_headers,
    record_order,
    review_reasons,
    systempay_ipn,
)
from sqlalchemy import event, select

from coc_payments.adapters import tables
from coc_shared.testing import staff_headers

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
_CALLBACK_CHANGE = re.compile(r'(UPDATE|DELETE FROM)\s+"?payments"?\."?callbacks"?\b', re.I)


class Statements:
    """The SQL statements a runtime's units of work send (to check what is written, and how)."""

    def __init__(self, runtime):
        self.engine = runtime.worker_engine
        self.sent: list[str] = []
        self._lock = threading.Lock()
        event.listen(self.engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, parameters, context, executemany):
        with self._lock:
            self.sent.append(statement)

    def close(self):
        event.remove(self.engine, "before_cursor_execute", self._record)

    def callback_changes(self) -> list[str]:
        return [s for s in self.sent if _CALLBACK_CHANGE.search(s)]


@pytest.fixture
def statements(any_runtime):
    recorder = Statements(any_runtime)
    yield recorder
    recorder.close()


def ipn(client, fields):
    return client.post("/v1/callbacks/systempay", data=form_body(fields), headers=FORM)


def callback_rows(runtime, **where) -> list:
    t = tables.callbacks
    with runtime.engine.connect() as conn:
        query = select(t).order_by(t.c.id)
        for name, value in where.items():
            query = query.where(t.c[name] == value)
        return conn.execute(query).all()


def due_row(runtime, order_id):
    with runtime.engine.connect() as conn:
        return conn.execute(
            select(tables.payments_due).where(tables.payments_due.c.order_id == order_id)
        ).one()


def claim_of(runtime, provider, dedupe_key) -> int:
    t = tables.callback_keys
    with runtime.engine.connect() as conn:
        return conn.execute(
            select(t.c.callback_id).where(t.c.provider == provider, t.c.dedupe_key == dedupe_key)
        ).scalar_one()


# --------------------------------------------------------------------------- card
def test_a_card_notification_confirms_the_payment(any_runtime, statements):
    client = any_runtime.create_app().test_client()
    event_, _ = order_placed("card", 24900)
    record_order(any_runtime, event_)
    order_id = event_.data["order_id"]
    fields = systempay_ipn(event_.data["order_number"], 24900, "AUTHORISED")
    answer = ipn(client, fields)
    assert answer.status_code == 200 and answer.get_json() == {
        "status": "received",
        "outcome": "confirm",
    }
    due = due_row(any_runtime, order_id)
    assert (due.status, due.paid_provider, due.paid_transaction_id) == (
        "paid",
        "systempay",
        fields["vads_trans_uuid"],
    )
    assert due.paid_at is not None
    [callback] = callback_rows(any_runtime, order_id=order_id)
    assert (callback.verdict, callback.outcome, callback.detail, callback.dedupe_key) == (
        "accepted",
        "confirm",
        "paid",
        f"{fields['vads_trans_uuid']}:AUTHORISED",
    )
    assert claim_of(any_runtime, "systempay", callback.dedupe_key) == callback.id
    [confirmed] = outbox_events(any_runtime, "payment.confirmed", order_id)
    with any_runtime.engine.connect() as conn:
        confirmation = conn.execute(
            select(tables.confirmations).where(tables.confirmations.c.order_id == order_id)
        ).one()
    assert (confirmation.callback_id, confirmation.event_id, confirmation.amount_cents) == (
        callback.id,
        confirmed["id"],
        24900,
    )
    assert (
        confirmed["correlation_id"] == order_id
        and confirmed["data"]["order_number"] == event_.data["order_number"]
    )
    assert statements.callback_changes() == []  # the audit row is written once, never updated
    written = [
        s for s in statements.sent if re.search(r'INSERT INTO "?payments"?\."?callbacks"?', s)
    ]
    if any_runtime.engine.dialect.name == "postgresql":
        # claim, lock and read, then one statement: payment, confirmation, outbox row and audit row
        assert len(statements.sent) == 3 and len(written) == 1
        assert all(t in written[0] for t in ("payments_due", "confirmations", "outbox"))
    else:
        assert len(written) == 1


def test_a_refused_card_fails_the_payment(any_runtime, statements):
    client = any_runtime.create_app().test_client()
    event_, _ = order_placed("card", 3000)
    record_order(any_runtime, event_)
    order_id = event_.data["order_id"]
    answer = ipn(client, systempay_ipn(event_.data["order_number"], 3000, "REFUSED"))
    assert answer.status_code == 200 and answer.get_json() == {
        "status": "received",
        "outcome": "fail",
    }
    assert due_row(any_runtime, order_id).status == "failed"
    assert [
        e["data"]["reason"] for e in outbox_events(any_runtime, "payment.failed", order_id)
    ] == ["REFUSED"]
    [callback] = callback_rows(any_runtime, order_id=order_id)
    assert (callback.verdict, callback.outcome) == ("accepted", "fail")
    # paid on a second try
    assert (
        ipn(client, systempay_ipn(event_.data["order_number"], 3000, "CAPTURED")).get_json()[
            "outcome"
        ]
        == "confirm"
    )
    assert due_row(any_runtime, order_id).status == "paid"
    assert statements.callback_changes() == []


def test_a_card_notification_delivered_again_is_a_duplicate(any_runtime, statements):
    client = any_runtime.create_app().test_client()
    event_, _ = order_placed("card", 1500)
    record_order(any_runtime, event_)
    order_id = event_.data["order_id"]
    fields = systempay_ipn(event_.data["order_number"], 1500, "AUTHORISED")
    assert ipn(client, fields).get_json() == {"status": "received", "outcome": "confirm"}
    again = ipn(client, fields)
    assert again.status_code == 200 and again.get_json() == {"status": "duplicate"}
    first, second = callback_rows(any_runtime, dedupe_key=f"{fields['vads_trans_uuid']}:AUTHORISED")
    assert (first.verdict, first.order_id) == ("accepted", order_id)
    assert (second.verdict, second.detail, second.order_id, second.outcome) == (
        "duplicate",
        f"duplicate_of:{first.id}",
        None,
        None,
    )
    assert len(outbox_events(any_runtime, "payment.confirmed", order_id)) == 1
    assert count(any_runtime, tables.confirmations, order_id=order_id) == 1
    assert statements.callback_changes() == []


def test_a_card_notification_with_a_bad_signature_is_recorded_and_refused(any_runtime):
    client = any_runtime.create_app().test_client()
    event_, _ = order_placed("card", 2000)
    record_order(any_runtime, event_)
    fields = systempay_ipn(event_.data["order_number"], 2000, key="not-the-key")
    assert ipn(client, fields).status_code == 401
    rows = [
        (r.verdict, r.detail)
        for r in callback_rows(any_runtime)
        if event_.data["order_number"].encode() in bytes(r.body)  # a bytea, a BLOB
    ]
    assert rows == [("rejected", "signature mismatch")]
    assert due_row(any_runtime, event_.data["order_id"]).status == "due"


def test_five_identical_notifications_at_once_confirm_once(any_runtime):
    """Concurrent deliveries of one notification wait on its claimed key: one applies it, the
    other four find it claimed."""
    event_, _ = order_placed("card", 1500)
    record_order(any_runtime, event_)
    order_id = event_.data["order_id"]
    app = any_runtime.create_app()
    fields = systempay_ipn(event_.data["order_number"], 1500, "AUTHORISED")
    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(lambda f: ipn(app.test_client(), f).get_json(), [fields] * 5))
    assert sorted(a["status"] for a in answers) == ["duplicate"] * 4 + ["received"]
    rows = callback_rows(any_runtime, dedupe_key=f"{fields['vads_trans_uuid']}:AUTHORISED")
    [applied] = [r for r in rows if r.verdict == "accepted"]
    assert (
        sorted(r.detail for r in rows if r.verdict == "duplicate")
        == [f"duplicate_of:{applied.id}"] * 4
    )
    assert len({r.id for r in rows}) == 5
    assert len(outbox_events(any_runtime, "payment.confirmed", order_id)) == 1
    assert count(any_runtime, tables.confirmations, order_id=order_id) == 1


# --------------------------------------------------------------------------- PayPal
def test_a_paypal_approval_captures_and_the_capture_webhook_confirms(
    any_runtime, fake_paypal, statements
):
    client = any_runtime.create_app().test_client()
    event_, token = order_placed("paypal", 5000)
    record_order(any_runtime, event_)
    order_id = event_.data["order_id"]
    paypal_id = client.post(
        f"/v1/payments/{order_id}/checkout", headers={"X-Order-Token": token}
    ).get_json()["paypal_order_id"]
    body, headers = fake_paypal.webhook("CHECKOUT.ORDER.APPROVED", {"id": paypal_id})
    answer = client.post("/v1/callbacks/paypal", data=body, headers=headers)
    assert answer.status_code == 200 and answer.get_json() == {
        "status": "received",
        "outcome": "capture_requested",
    }
    with any_runtime.engine.connect() as conn:
        row = conn.execute(
            select(tables.paypal_orders).where(tables.paypal_orders.c.paypal_order_id == paypal_id)
        ).one()
    assert (row.status, row.capture_id) == ("captured", fake_paypal.capture_of(paypal_id)["id"])
    body, headers = fake_paypal.capture_completed(paypal_id)
    answer = client.post("/v1/callbacks/paypal", data=body, headers=headers)
    assert answer.get_json() == {"status": "received", "outcome": "confirm"}
    assert client.post("/v1/callbacks/paypal", data=body, headers=headers).get_json() == {
        "status": "duplicate"
    }
    assert due_row(any_runtime, order_id).status == "paid"
    assert len(outbox_events(any_runtime, "payment.confirmed", order_id)) == 1
    assert [(r.outcome, r.verdict) for r in callback_rows(any_runtime, order_id=order_id)] == [
        ("capture_requested", "accepted"),
        ("confirm", "accepted"),
    ]
    assert statements.callback_changes() == []


def test_a_paypal_webhook_that_cannot_be_verified_now_is_recorded_and_answered_503(
    any_runtime, fake_paypal
):
    client = any_runtime.create_app().test_client()
    event_, _ = order_placed("paypal", 5000)
    record_order(any_runtime, event_)
    capture = {
        "id": f"CAP{uuid.uuid4().hex[:10]}",
        "status": "COMPLETED",
        "custom_id": event_.data["order_number"],
        "amount": {"currency_code": "EUR", "value": "50.00"},
    }
    body, headers = fake_paypal.webhook(
        "PAYMENT.CAPTURE.COMPLETED",
        capture,
        cert_url=f"{fake_paypal.url}/v1/notifications/certs/CERT-{uuid.uuid4().hex}",
    )
    fake_paypal.fail_certificates = True
    try:
        answer = client.post("/v1/callbacks/paypal", data=body, headers=headers)
    finally:
        fake_paypal.fail_certificates = False
    assert answer.status_code == 503
    assert (
        answer.get_json()["error"]["message"]
        == "the notification could not be verified now; deliver again"
    )
    verdicts = [
        r.verdict
        for r in callback_rows(any_runtime, provider="paypal")
        if capture["id"].encode() in r.body
    ]
    assert verdicts == ["unverified"]
    # delivered again: verified, applied
    assert client.post("/v1/callbacks/paypal", data=body, headers=headers).get_json() == {
        "status": "received",
        "outcome": "confirm",
    }
    assert len(outbox_events(any_runtime, "payment.confirmed", event_.data["order_id"])) == 1


# --------------------------------------------------------------------------- the business bank
def transfer_order(runtime, amount):
    event_, _ = order_placed("transfer", amount)
    record_order(runtime, event_)
    return event_.data["order_id"], due_row(runtime, event_.data["order_id"]).reference


def test_a_bank_webhook_confirms_a_transfer_once(any_runtime, statements):
    client = any_runtime.create_app().test_client()
    order_id, reference = transfer_order(any_runtime, 24900)
    body = qonto_body(f"virement {reference}", 24900)
    answer = client.post("/v1/callbacks/bank-transfer", data=body, headers=qonto_headers(body))
    assert answer.status_code == 200 and answer.get_json() == {
        "status": "received",
        "outcome": "confirm",
    }
    again = client.post("/v1/callbacks/bank-transfer", data=body, headers=qonto_headers(body))
    assert again.get_json() == {"status": "duplicate"}
    assert due_row(any_runtime, order_id).status == "paid"
    assert len(outbox_events(any_runtime, "payment.confirmed", order_id)) == 1
    [applied] = callback_rows(any_runtime, order_id=order_id)
    assert (applied.provider, applied.verdict, applied.outcome) == ("qonto", "accepted", "confirm")
    assert statements.callback_changes() == []


def test_a_bank_webhook_refused_or_unreadable_is_recorded_with_its_verdict(any_runtime):
    client = any_runtime.create_app().test_client()
    order_id, reference = transfer_order(any_runtime, 1000)
    body = qonto_body(reference, 1000)
    assert (
        client.post(
            "/v1/callbacks/bank-transfer",
            data=body,
            headers=qonto_headers(body, secret="another-secret"),
        ).status_code
        == 401
    )
    unreadable = b'{"data": {"side": "credit"}}'  # signed, but no transaction id
    answer = client.post(
        "/v1/callbacks/bank-transfer", data=unreadable, headers=qonto_headers(unreadable)
    )
    assert answer.status_code == 422 and "body" in answer.get_json()["error"]["fields"]
    verdicts = [r.verdict for r in callback_rows(any_runtime, provider="qonto")]
    assert "rejected" in verdicts and "unreadable" in verdicts
    assert due_row(any_runtime, order_id).status == "due"


def test_a_camt053_import_confirms_once_and_a_second_import_changes_nothing(
    any_runtime, statements
):
    from test_transfer_payments import CAMT, entry

    client = any_runtime.create_app().test_client()
    staff = {**staff_headers("ann", "admin"), "Content-Type": "application/xml"}
    paid_id, paid_ref = transfer_order(any_runtime, 24900)
    partial_id, partial_ref = transfer_order(any_runtime, 24900)
    n = time.time_ns()
    xml = CAMT.format(
        n=n,
        iban=IBAN,
        entries="".join(
            [
                entry(f"D{n}-1", "249.00", f"VIR {paid_ref}"),
                entry(f"D{n}-2", "100.00", partial_ref),
                entry(f"D{n}-3", "249.00", paid_ref, side="DBIT"),
            ]
        ),
    )
    summary = client.post(
        "/v1/payments/statements?filename=s.xml", data=xml, headers=staff
    ).get_json()
    assert (summary["credits"], summary["confirmed"], summary["review"], summary["ignored"]) == (
        2,
        1,
        1,
        0 + 1,
    )
    assert due_row(any_runtime, paid_id).status == "paid"
    assert review_reasons(any_runtime, partial_id) == ["partial_transfer"]
    [item] = client.get(f"/v1/payments/review?order_id={partial_id}", headers=staff).get_json()[
        "items"
    ]
    assert item["created_at"].endswith("+00:00") and item["label"] == partial_ref
    [imported] = callback_rows(any_runtime, provider="camt053", outcome="imported")[-1:]
    assert imported.headers == {"imported-by": "ann", "file": "s.xml"}
    assert claim_of(any_runtime, "camt053", f"D{n}-1") == imported.id
    again = client.post("/v1/payments/statements", data=xml, headers=staff).get_json()
    assert (again["confirmed"], again["review"], again["already_imported"]) == (0, 0, 2)
    assert len(outbox_events(any_runtime, "payment.confirmed", paid_id)) == 1
    assert statements.callback_changes() == []
