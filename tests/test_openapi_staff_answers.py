"""The documented staff routes answer as their OpenAPI document says on real data (the fuzz of
``test_fuzz_all_services`` rarely meets a parked message or a support record): parked messages,
their summary, dry runs, discard and a replay run's report (the shared routes, described by hand
in ``coc_shared.openapi``), and the orders service's own staff routes."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest
import schemathesis

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_console_kit import REPLAYED_TYPE, consuming, park_certificate
from trust_kit import make_stack

from coc_shared.testing import staff_headers, wait_until


@pytest.fixture(scope="module")
def stack(settings_factory, tmp_path_factory):
    made = make_stack(settings_factory, tmp_path_factory.mktemp("staff_answers"))
    try:
        with consuming(made.runtimes["orders"]):
            yield made
    finally:
        made.dispose()


@pytest.fixture(scope="module")
def documented(stack):
    """``documented(method, path, answer)``: the answer is one the orders document allows."""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", stack.apps["orders"])

    def check(method: str, path: str, answer, status: int = 200):
        assert answer.status_code == status, (method, path, answer.get_json())
        schema[path][method].validate_response(answer)
        return answer.get_json()

    return check


def test_the_shared_staff_routes_answer_as_documented(stack, documented):
    client = stack.client("orders")
    staff = staff_headers("sam", "support")
    error_type = f"KeyError{uuid.uuid4().hex[:6]}"
    orders = stack.runtimes["orders"]
    # two messages that would succeed (the stack's order), two that fail again (unknown orders)
    good = [park_certificate(orders, stack.order_id, error_type)[0] for _ in range(2)]
    bad = [park_certificate(orders, str(uuid.uuid4()), error_type)[0] for _ in range(2)]
    group = {"event_type": REPLAYED_TYPE, "error_type": error_type}

    listed = client.get(f"/v1/staff/parked?error={error_type}", headers=staff)
    assert len(documented("GET", "/v1/staff/parked", listed)["items"]) == 4
    one = client.get(f"/v1/staff/parked/{good[0]}", headers=staff)
    assert documented("GET", "/v1/staff/parked/{parked_id}", one)["id"] == good[0]
    summary = documented(
        "GET", "/v1/staff/parked-summary", client.get("/v1/staff/parked-summary", headers=staff)
    )
    assert any(g["error_type"] == error_type and g["count"] == 4 for g in summary["groups"])
    messages = client.get("/v1/staff/parked-summary/messages", query_string=group, headers=staff)
    assert len(documented("GET", "/v1/staff/parked-summary/messages", messages)["items"]) == 4

    for parked_id, outcome in ((good[0], "would_succeed"), (bad[0], "would_fail")):
        dry = client.post(f"/v1/staff/parked/{parked_id}/dry-run", headers=staff)
        assert documented("POST", "/v1/staff/parked/{parked_id}/dry-run", dry)["outcome"] == outcome
    dry_group = client.post("/v1/staff/parked/dry-run", json=group, headers=staff)
    tried = documented("POST", "/v1/staff/parked/dry-run", dry_group)
    assert (tried["would_succeed"], tried["would_fail"]) == (2, 2)

    discarded = client.post(
        f"/v1/staff/parked/{good[1]}/discard", json={"reason": "sent by hand"}, headers=staff
    )
    assert documented("POST", "/v1/staff/parked/{parked_id}/discard", discarded) == {
        "id": good[1],
        "status": "discarded",
    }

    body = {**group, "reason": "the order came back", "batch_size": 10}
    started = client.post("/v1/staff/parked/replays", json=body, headers=staff)
    run_id = documented("POST", "/v1/staff/parked/replays", started, status=202)["id"]

    def finished():
        answer = client.get(f"/v1/staff/parked/replays/{run_id}", headers=staff)
        report = documented("GET", "/v1/staff/parked/replays/{run_id}", answer)
        return report if report["status"] != "running" else None

    report = wait_until(finished, timeout=90, interval=0.2, message="the replay run's end")
    assert report["status"] in ("completed", "stopped"), report


def test_the_orders_staff_routes_answer_as_documented(stack, documented):
    client = stack.client("orders")
    staff = staff_headers("sam", "support")
    admin = staff_headers("ada", "admin")
    order_id = stack.order_id

    found = client.get(f"/v1/staff/orders/{order_id}", headers=staff)
    number = documented("GET", "/v1/staff/orders/{reference}", found)["number"]
    by_number = client.get(f"/v1/staff/orders/{number}", headers=staff)
    assert documented("GET", "/v1/staff/orders/{reference}", by_number)["id"] == order_id
    events = client.get(f"/v1/staff/orders/{order_id}/events", headers=staff)
    assert documented("GET", "/v1/staff/orders/{order_id}/events", events)["items"]

    record = {"order_id": order_id, "channel": "phone", "summary": "asked for the invoice"}
    added = client.post("/v1/staff/support-records", json=record, headers=staff)
    documented("POST", "/v1/staff/support-records", added, status=201)
    records = client.get(f"/v1/staff/support-records?order_id={order_id}", headers=staff)
    assert documented("GET", "/v1/staff/support-records", records)["items"]

    email = orders_email(stack)
    by_email = client.post("/v1/staff/orders/search", json={"email": email}, headers=admin)
    found_by_email = documented("POST", "/v1/staff/orders/search", by_email)["items"]
    assert order_id in {o["id"] for o in found_by_email}
    stuck = client.get("/v1/staff/orders/stuck?limit=5", headers=staff)
    documented("GET", "/v1/staff/orders/stuck", stuck)
    states = client.get("/v1/staff/order-states?limit=5", headers=staff)
    assert documented("GET", "/v1/staff/order-states", states)["items"]


def orders_email(stack) -> str:
    """The customer's e-mail address of the stack's order (as the orders service keeps it)."""
    from coc_orders.service_layer.orders import find_order

    order = find_order(stack.runtimes["orders"], stack.order_id)
    return order.customer["email"]
