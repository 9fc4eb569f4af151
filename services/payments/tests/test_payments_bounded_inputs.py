"""Payments' trust boundaries on the real database: providers' notifications are bounded (64 KiB,
refused before reading, chunked or not), a rejected one keeps only a short prefix of its body,
bodies are kept as bytes, a NUL byte never reaches PostgreSQL's text (no DataError, no request
body in the log), NUL in paths and queries is a 4xx; every answer is no-store and nosniff."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from payments_testkit import (
    count,
    form_body,
    order_placed,
    qonto_headers,
    record_order,
    systempay_ipn,
)
from sqlalchemy import select

from coc_payments.adapters import tables
from coc_payments.domain.callbacks import REJECTED_BODY_PREFIX
from coc_shared.guards import CALLBACK_BODY_LIMIT

CALLBACKS = ["/v1/callbacks/systempay", "/v1/callbacks/paypal", "/v1/callbacks/bank-transfer"]
MARKER = "hostile-" + uuid.uuid4().hex


def callback_count(runtime) -> int:
    return count(runtime, tables.callbacks)


def bodies(runtime) -> list[bytes]:
    with runtime.engine.connect() as conn:
        return [bytes(b) for b in conn.execute(select(tables.callbacks.c.body)).scalars()]


def assert_refused(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and "psycopg" not in text
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    return response.get_json()["error"]


@pytest.mark.parametrize("path", CALLBACKS)
def test_a_16_mib_notification_is_refused_before_reading_and_nothing_is_stored(
    runtime, client, path
):
    before = callback_count(runtime)
    body = b'{"id": "' + b"x" * (16 * 1024 * 1024) + b'"}'
    response = client.post(path, data=body, headers={"Content-Type": "application/json"})
    assert_refused(response, 413)
    assert callback_count(runtime) == before


@pytest.mark.parametrize("path", CALLBACKS)
def test_a_chunked_notification_over_64_kib_is_refused_and_nothing_is_stored(runtime, client, path):
    before = callback_count(runtime)
    response = client.post(
        path,
        input_stream=io.BytesIO(b"a=" + b"x" * CALLBACK_BODY_LIMIT),
        headers={"Transfer-Encoding": "chunked", "Content-Type": "text/plain"},
        environ_overrides={"wsgi.input_terminated": True},  # as gunicorn sets it
    )
    assert_refused(response, 413)
    assert callback_count(runtime) == before


def test_a_rejected_notification_keeps_only_a_short_prefix_of_its_body(runtime, client):
    body = json.dumps({"id": MARKER, "padding": "y" * (CALLBACK_BODY_LIMIT - 1000)}).encode()
    assert len(body) <= CALLBACK_BODY_LIMIT
    response = client.post(
        "/v1/callbacks/bank-transfer",
        data=body,
        headers={"X-Qonto-Signature": "t=1,v1=00", "Content-Type": "application/json"},
    )
    assert_refused(response, 401)
    [kept] = [b for b in bodies(runtime) if MARKER.encode() in b]
    assert kept == body[:REJECTED_BODY_PREFIX]


def test_an_accepted_notification_is_kept_whole_as_bytes(runtime, client):
    event, _ = order_placed("card", 2000)
    record_order(runtime, event)
    fields = systempay_ipn(event.data["order_number"], 2000, vads_extra_result="z" * 3000)
    response = client.post(
        "/v1/callbacks/systempay",
        data=form_body(fields),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200, response.get_json()
    [kept] = [b for b in bodies(runtime) if event.data["order_number"].encode() in b]
    assert kept == form_body(fields) and len(kept) > REJECTED_BODY_PREFIX


@pytest.mark.parametrize(
    "body",
    [
        b'{"event_type": "transaction.created", "data": {"transaction_id": "tx-\\u0000"}}',
        b'{"event_type": "transaction.created", "data": {"label": "a\x00b"}}',
        b'{"id": "WH-\\ud800", "event_type": "PAYMENT.CAPTURE.COMPLETED"}',
        b"[" * 30_000 + b"]" * 30_000,  # deep, and within the 64 KiB of a notification
        b'{"amount_cents": ' + b"9" * 5001 + b"}",
    ],
)
@pytest.mark.parametrize("path", ["/v1/callbacks/paypal", "/v1/callbacks/bank-transfer"])
def test_a_hostile_json_notification_is_a_400_and_never_reaches_postgresql(
    runtime, client, all_logs, path, body
):
    before = callback_count(runtime)
    signed = qonto_headers(body)  # a correct signature: the bank's own key, a hostile body
    response = client.post(path, data=body, headers=signed)
    assert_refused(response, 400)
    assert callback_count(runtime) == before
    logged = all_logs()
    assert "DataError" not in logged and "transaction.created" not in logged


@pytest.mark.parametrize(
    "body",
    [
        b"vads_order_id=%00&signature=x",
        b"vads_order_id=COC\x00&signature=x",
        b"vads_order_id=%ED%A0%80&signature=x",
    ],
)
def test_a_nul_or_a_surrogate_in_a_card_notification_is_a_400(runtime, client, body):
    before = callback_count(runtime)
    response = client.post(
        "/v1/callbacks/systempay",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_refused(response, 400)
    assert callback_count(runtime) == before


@pytest.mark.parametrize(
    "method, path",
    [
        ("POST", "/v1/payments/a%00b/checkout"),
        ("GET", "/v1/staff/payments-due/a%00b"),
        ("GET", "/v1/staff/parked/%00"),
    ],
)
def test_a_nul_in_a_path_is_a_404_without_a_query(runtime, client, staff_auth, method, path):
    response = client.open(path, method=method, headers={**staff_auth, "X-Order-Token": "t"})
    assert assert_refused(response, 404)["fields"]["path"]


def test_a_nul_in_a_staff_query_is_a_400(client, staff_auth):
    response = client.get("/v1/payments/review?order_id=a%00b", headers=staff_auth)
    assert "order_id" in assert_refused(response, 400)["fields"]


def test_a_statement_may_be_larger_than_a_json_body_but_not_than_its_limit(client, staff_auth):
    big = b"<Document>" + b" " * (2 * 1024 * 1024) + b"</Document>"
    response = client.post(
        "/v1/payments/statements",
        data=big,
        headers={**staff_auth, "Content-Type": "application/xml"},
    )
    assert response.status_code == 422  # read (over 1 MiB), and not a camt.053 statement
    too_big = client.post(
        "/v1/payments/statements",
        data=b" " * (20 * 1024 * 1024 + 1),
        headers={**staff_auth, "Content-Type": "application/xml"},
    )
    assert_refused(too_big, 413)


def test_a_405_carries_allow(client):
    response = client.get("/v1/callbacks/paypal")
    assert_refused(response, 405)
    assert "POST" in response.headers["Allow"]
