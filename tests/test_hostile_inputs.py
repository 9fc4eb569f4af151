"""Issue 8's hostile inputs, each as the attacker sent it, against the five services on this run's
PostgreSQL: every one answers a 4xx in the shared JSON error shape (never a 5xx, never a
traceback), and stores nothing (or, for a refused provider call, nothing beyond a short prefix).

Findings refused here: JSON nested 100,000 deep and an integer of 5,001 digits to POST /v1/orders
(RecursionError, ValueError); a lone surrogate in an order's address and in PATCH
/v1/accounts/me (stored, then every order using the profile answered 500); a NUL byte in every
content type, merge-patch+json included; %00 in POST /v1/payments/a%00b/checkout and in the staff
routes of all five services; a 16 MiB body to a callback and a chunked one to /paypal (stored
whole); bodies over the JSON APIs' 1 MiB. Plus: 405 carries Allow, and every answer is no-store
and nosniff.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))

from trust_kit import (
    STAFF_ROUTES,
    assert_answered_safely,
    make_stack,
    order_body,
)

from coc_orders.adapters import tables as orders_tables
from coc_payments.adapters import tables as payments_tables
from coc_shared.config import SERVICE_NAMES

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def stack(settings_factory, tmp_path_factory):
    stack = make_stack(settings_factory, tmp_path_factory.mktemp("hostile"))
    yield stack
    stack.dispose()


def rows(runtime, table) -> int:
    with runtime.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def orders_stored(stack) -> int:
    return rows(stack.runtimes["orders"], orders_tables.orders)


def callbacks_stored(stack) -> int:
    return rows(stack.runtimes["payments"], payments_tables.callbacks)


def refused(response, status: int, what: str) -> dict:
    assert_answered_safely(response, what)
    assert response.status_code == status, f"{what}: {response.get_data(as_text=True)[:300]}"
    return response.get_json()["error"]


# --------------------------------------------------------------------------- JSON
def test_an_order_nested_100000_deep_is_a_400_and_stores_nothing(stack):
    before = orders_stored(stack)
    body = "[" * 100_000 + "]" * 100_000
    answer = stack.client("orders").post("/v1/orders", data=body, content_type="application/json")
    assert refused(answer, 400, "deep JSON")["fields"]["body"]
    nested = {"vehicle": {"extra": {}}}
    node = nested["vehicle"]["extra"]
    for _ in range(200):
        node["a"] = {}
        node = node["a"]
    answer = stack.client("orders").post("/v1/orders", json={**order_body(), **nested})
    refused(answer, 400, "deep JSON in an order")
    assert orders_stored(stack) == before


@pytest.mark.parametrize("where", ["top", "vehicle"])
def test_an_integer_of_5001_digits_is_a_400(stack, where):
    before = orders_stored(stack)
    body = json.dumps(order_body())
    big = "9" * 5001
    if where == "top":
        body = body[:-1] + f', "n": {big}}}'
    else:
        body = body.replace('"vehicle": {', f'"vehicle": {{"mileage": {big}, ', 1)
    answer = stack.client("orders").post("/v1/orders", data=body, content_type="application/json")
    assert refused(answer, 400, "long integer")["fields"]["body"]
    assert orders_stored(stack) == before


def test_a_lone_surrogate_in_an_order_is_a_400_naming_the_field(stack):
    before = orders_stored(stack)
    body = json.dumps(order_body()).replace("1 rue de la Paix", "\\ud800")
    answer = stack.client("orders").post("/v1/orders", data=body, content_type="application/json")
    error = refused(answer, 400, "lone surrogate")
    assert "shipping_address.line1" in error["fields"]
    assert orders_stored(stack) == before


@pytest.mark.parametrize("mimetype", ["application/json", "application/merge-patch+json"])
@pytest.mark.parametrize("text", ["\\ud800", "\\udfff", "a\\u0000b"])
def test_the_profile_takes_no_lone_surrogate_nor_nul_and_orders_stay_readable(
    stack, mimetype, text
):
    client = stack.client("orders")
    before = client.get("/v1/accounts/me", headers=stack.customer)
    body = '{"shipping_address": {"line1": "' + text + '", "postal_code": "75002", '
    body += '"city": "Paris", "country": "FR"}}'
    answer = client.patch(
        "/v1/accounts/me", data=body, headers={**stack.customer, "Content-Type": mimetype}
    )
    assert "shipping_address.line1" in refused(answer, 400, "profile")["fields"]
    after = client.get("/v1/accounts/me", headers=stack.customer)
    assert after.status_code == before.status_code and after.get_json() == before.get_json()
    order = client.get(f"/v1/orders/{stack.order_id}", headers=stack.customer)
    assert order.status_code == 200, order.get_json()


# --------------------------------------------------------------------------- NUL in every type
@pytest.mark.parametrize(
    "content_type, body",
    [
        ("application/json", json.dumps(order_body()).replace("Paris", "Par\\u0000is")),
        ("application/json", json.dumps(order_body()).replace("Paris", "Par\x00is")),
        ("application/merge-patch+json", '{"customer": {"first_name": "a\\u0000"}}'),
        ("application/x-www-form-urlencoded", "payment_method=card%00&x=1"),
        ("text/plain", "hello\x00"),
        ("application/xml", "<a>\x00</a>"),
        ("application/octet-stream", "\x00"),
    ],
)
def test_a_nul_in_any_content_type_is_a_400_and_stores_nothing(stack, content_type, body):
    before = orders_stored(stack)
    answer = stack.client("orders").post(
        "/v1/orders", data=body.encode(), headers={"Content-Type": content_type}
    )
    refused(answer, 400, content_type)
    assert orders_stored(stack) == before


def test_a_nul_in_a_multipart_field_is_a_400(stack):
    answer = stack.client("orders").post(
        f"/v1/orders/{stack.order_id}/documents",
        data={"kind": "registration\x00", "file": (io.BytesIO(b"%PDF-1.4\n"), "a.pdf")},
        headers=stack.customer,
        content_type="multipart/form-data",
    )
    assert "kind" in refused(answer, 400, "multipart")["fields"]


def test_an_upload_is_not_held_to_the_json_apis_limit(stack):
    """The upload route keeps its own limit (one 10 MB document): 2 MiB is not refused as too
    large, whatever the document check says of it."""
    answer = stack.client("orders").post(
        f"/v1/orders/{stack.order_id}/documents",
        data={
            "kind": "registration",
            "file": (io.BytesIO(b"%PDF-1.4\n" + b" " * 2 * MIB), "a.pdf"),
        },
        headers=stack.customer,
        content_type="multipart/form-data",
    )
    assert_answered_safely(answer, "upload")
    assert answer.status_code != 413


# --------------------------------------------------------------------------- paths and queries
def test_a_nul_in_the_checkout_path_is_a_404(stack):
    answer = stack.client("payments").post(
        "/v1/payments/a%00b/checkout", headers={**stack.customer, "X-Order-Token": "x"}
    )
    assert refused(answer, 404, "checkout")["fields"]["path"]


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_a_nul_in_any_staff_route_is_a_4xx_on_every_service(stack, service):
    client = stack.client(service)
    for path in (
        STAFF_ROUTES[service].format(id="a%00b"),
        STAFF_ROUTES[service].format(id="%00"),
        "/v1/staff/parked/%00",
        "/v1/staff/%00/parked",
    ):
        refused(client.get(path, headers=stack.staff), 404, f"{service} {path}")
    for query in ("status=%00", "order_id=a%00b", "event_type=%00&limit=5"):
        refused(client.get(f"/v1/staff/parked?{query}", headers=stack.staff), 400, query)


# --------------------------------------------------------------------------- sizes
def test_a_16_mib_body_to_a_callback_is_refused_and_not_stored(stack):
    before = callbacks_stored(stack)
    answer = stack.client("payments").post(
        "/v1/callbacks/bank-transfer",
        data=b'{"a": "' + b"x" * (16 * MIB) + b'"}',
        headers={"Content-Type": "application/json", "X-Qonto-Signature": "t=1,v1=0"},
    )
    refused(answer, 413, "16 MiB callback")
    assert callbacks_stored(stack) == before


def test_a_chunked_body_to_paypal_is_refused_past_64_kib_and_not_stored(stack):
    before = callbacks_stored(stack)
    answer = stack.client("payments").post(
        "/v1/callbacks/paypal",
        input_stream=io.BytesIO(b'{"id": "' + b"x" * (1 * MIB) + b'"}'),
        headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
        environ_overrides={"wsgi.input_terminated": True},  # as gunicorn sets it
    )
    refused(answer, 413, "chunked paypal")
    assert callbacks_stored(stack) == before


@pytest.mark.parametrize("chunked", [False, True])
def test_a_json_api_takes_at_most_1_mib(stack, chunked):
    before = orders_stored(stack)
    body = json.dumps({**order_body(), "padding": "x" * (2 * MIB)}).encode()
    if chunked:
        answer = stack.client("orders").post(
            "/v1/orders",
            input_stream=io.BytesIO(body),
            headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
            environ_overrides={"wsgi.input_terminated": True},
        )
    else:
        answer = stack.client("orders").post(
            "/v1/orders", data=body, content_type="application/json"
        )
    refused(answer, 413, "2 MiB order")
    assert orders_stored(stack) == before


@pytest.mark.parametrize("path", ["/v1/callbacks/paypal", "/v1/callbacks/bank-transfer"])
def test_a_nul_byte_in_a_provider_s_body_never_reaches_postgresql(stack, all_logs, path):
    before = callbacks_stored(stack)
    for body in (b'{"id": "WH-1\x00", "event_type": "x"}', b'{"id": "WH-\\u0000"}'):
        answer = stack.client("payments").post(
            path, data=body, headers={"Content-Type": "application/json"}
        )
        refused(answer, 400, path)
    assert callbacks_stored(stack) == before
    logged = all_logs()
    assert "DataError" not in logged and "WH-1" not in logged


# --------------------------------------------------------------------------- answers' headers
@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_every_service_answers_no_store_nosniff_and_405_with_allow(stack, service):
    client = stack.client(service)
    for response in (
        client.get("/healthz"),
        client.get("/openapi.json"),
        client.get("/nowhere"),
        client.get("/v1/staff/parked", headers=stack.staff),
    ):
        assert_answered_safely(response, f"{service} {response.request.path}")
    wrong = client.delete("/v1/staff/parked", headers=stack.staff)
    refused(wrong, 405, f"{service} DELETE")
    assert "GET" in wrong.headers["Allow"]
