"""Stuck orders on crafted states (PostgreSQL): each state's deadline from the data file, the
detector reporting each stuck order once per state (not a healthy one, not twice; a later state
again), the supplier's promise learnt from supplier.request_overdue, the staff list and the
orders' states the console's reconciliation pages through, the file checked at start."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from orders_helpers import order_status, outbox_events, place
from sqlalchemy import insert, update

from coc_orders.adapters import tables
from coc_orders.adapters.deadlines_file import SHIPPED, load_deadlines
from coc_orders.config import OrdersConfig
from coc_orders.domain.stuck import parse_deadlines
from coc_orders.entrypoints.commands import report_stuck as report_stuck_command
from coc_orders.service_layer import orders as orders_uc
from coc_orders.service_layer import stuck
from coc_shared.config import ConfigError
from coc_shared.testing import forget_unsent, purge_queue, staff_headers, wait_until

NOW = datetime.now(UTC)
DEADLINES = load_deadlines()


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def craft(rt, status: str, entered: datetime | None, *, documents_at=None, overdue_at=None) -> str:
    """An order in ``status`` since ``entered`` (its applied event), with its documents complete
    at ``documents_at`` and a supplier.request_overdue at ``overdue_at``."""
    order_id = place(rt)
    events = []
    if entered is not None:
        events.append(("applied", status, "payment.confirmed", entered))
    if overdue_at is not None:
        events.append(("recorded", None, "supplier.request_overdue", overdue_at))
    with rt.engine.begin() as conn:
        conn.execute(
            update(tables.orders)
            .where(tables.orders.c.id == order_id)
            .values(status=status, documents_completed_at=documents_at)
        )
        for outcome, after, event_type, at in events:
            conn.execute(
                insert(tables.order_events).values(
                    event_id=str(uuid.uuid4()),
                    order_id=order_id,
                    event_type=event_type,
                    occurred_at=at,
                    recorded_at=at,
                    outcome=outcome,
                    status_after=after,
                )
            )
    return order_id


def set_placed_at(rt, order_id: str, at: datetime) -> None:
    with rt.engine.begin() as conn:
        conn.execute(
            update(tables.orders).where(tables.orders.c.id == order_id).values(placed_at=at)
        )


def mine(found, ids) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for s in found:
        if s.order_id in ids:
            result.setdefault(s.order_id, []).append(s.state)
    return result


def stuck_events(rt, order_id: str) -> list[dict]:
    return [e["data"] for e in outbox_events(rt, "order.stuck", subject=order_id)]


@pytest.fixture
def crafted(runtime):
    """One stuck order per state and one healthy order per state (just inside its deadline)."""
    d = DEADLINES.by_state
    stuck_orders, healthy = {}, {}
    # unpaid: placed long ago / just now
    stuck_orders["unpaid"] = craft(runtime, "placed", None)
    set_placed_at(runtime, stuck_orders["unpaid"], NOW - d["unpaid"].after - hours(1))
    healthy["unpaid"] = craft(runtime, "placed", None)
    for state, status in (
        ("payment_failed", "payment_failed"),
        ("supplier_rejected", "supplier_rejected"),
        ("not_shipped", "certificate_received"),
        ("not_delivered", "shipped"),
    ):
        stuck_orders[state] = craft(runtime, status, NOW - d[state].after - hours(1))
        healthy[state] = craft(runtime, status, NOW - d[state].after + hours(1))
    late = d["awaiting_documents"].after + hours(1)
    stuck_orders["awaiting_documents"] = craft(runtime, "paid", NOW - late)
    healthy["awaiting_documents"] = craft(runtime, "paid", NOW - hours(1))
    # documents complete: counted from the later of payment and documents
    stuck_orders["not_sent_to_supplier"] = craft(
        runtime, "paid", NOW - late, documents_at=NOW - d["not_sent_to_supplier"].after - hours(1)
    )
    healthy["not_sent_to_supplier"] = craft(runtime, "paid", NOW - late, documents_at=NOW)
    # the supplier's promise passed (overdue announced) more than the grace ago / just now
    sent = NOW - hours(100)
    stuck_orders["supplier_late"] = craft(
        runtime,
        "sent_to_supplier",
        sent,
        overdue_at=NOW - d["supplier_late"].after - hours(1),
    )
    healthy["supplier_late"] = craft(runtime, "sent_to_supplier", sent, overdue_at=NOW)
    final = [craft(runtime, s, NOW - hours(10_000)) for s in ("delivered", "cancelled", "refunded")]
    return stuck_orders, healthy, final


def test_each_stuck_state_is_reported_once_and_no_healthy_order(runtime, crafted):
    stuck_orders, healthy, final = crafted
    ids = set(stuck_orders.values()) | set(healthy.values()) | set(final)
    reported = stuck.report_stuck(runtime, DEADLINES, now=NOW)
    assert mine(reported, ids) == {order_id: [state] for state, order_id in stuck_orders.items()}
    for state, order_id in stuck_orders.items():
        (event,) = stuck_events(runtime, order_id)
        assert event["state"] == state and event["order_id"] == order_id
        assert event["order_number"].startswith("COC-")
        assert set(event) == {"order_id", "order_number", "state", "status", "since", "deadline"}
    for order_id in [*healthy.values(), *final]:
        assert stuck_events(runtime, order_id) == []
    # a second run (and the command) reports none of them again
    assert mine(stuck.report_stuck(runtime, DEADLINES, now=NOW), ids) == {}
    assert report_stuck_command(runtime, []) == 0
    for order_id in stuck_orders.values():
        assert len(stuck_events(runtime, order_id)) == 1


def test_a_later_state_is_reported_again(runtime):
    d = DEADLINES.by_state
    order_id = craft(runtime, "paid", NOW - d["awaiting_documents"].after - hours(5))
    assert mine(stuck.report_stuck(runtime, DEADLINES, now=NOW), {order_id}) == {
        order_id: ["awaiting_documents"]
    }
    # documents complete: a new state, stuck too once its own deadline passed
    with runtime.engine.begin() as conn:
        conn.execute(
            update(tables.orders)
            .where(tables.orders.c.id == order_id)
            .values(documents_completed_at=NOW - d["not_sent_to_supplier"].after - hours(1))
        )
    assert mine(stuck.report_stuck(runtime, DEADLINES, now=NOW), {order_id}) == {
        order_id: ["not_sent_to_supplier"]
    }
    assert mine(stuck.report_stuck(runtime, DEADLINES, now=NOW), {order_id}) == {}
    states = [e["state"] for e in stuck_events(runtime, order_id)]
    assert states == ["awaiting_documents", "not_sent_to_supplier"]


def test_the_supplier_promise_counts_else_the_longer_wait(runtime):
    rule = DEADLINES.by_state["supplier_late"]
    sent = NOW - rule.without_promise_after + hours(1)  # within the wait without a promise
    on_time = craft(runtime, "sent_to_supplier", sent)
    promise_passed = craft(
        runtime, "sent_to_supplier", sent, overdue_at=NOW - rule.after - hours(1)
    )
    # an overdue of an earlier round (before it was sent again) does not count
    earlier_round = craft(runtime, "sent_to_supplier", sent, overdue_at=sent - hours(1))
    never_heard = craft(runtime, "sent_to_supplier", NOW - rule.without_promise_after - hours(1))
    ids = {on_time, promise_passed, earlier_round, never_heard}
    found = mine(stuck.report_stuck(runtime, DEADLINES, now=NOW), ids)
    assert found == {promise_passed: ["supplier_late"], never_heard: ["supplier_late"]}


def test_staff_list_of_stuck_orders_and_the_orders_states(runtime, client, crafted):
    stuck_orders, healthy, _final = crafted
    headers = staff_headers()
    assert client.get("/v1/staff/orders/stuck").status_code == 401
    order_id = stuck_orders["not_delivered"]
    answer = client.get(f"/v1/staff/orders/stuck?order_id={order_id}", headers=headers)
    assert answer.status_code == 200, answer.get_json()
    (item,) = answer.get_json()["items"]
    assert item["state"] == "not_delivered" and item["reported_at"] is None
    stuck.report_stuck(runtime, DEADLINES)
    (item,) = client.get(f"/v1/staff/orders/stuck?order_id={order_id}", headers=headers).get_json()[
        "items"
    ]
    assert item["reported_at"] is not None and item["status"] == "shipped"
    healthy_answer = client.get(
        f"/v1/staff/orders/stuck?order_id={healthy['not_delivered']}", headers=headers
    )
    assert healthy_answer.get_json()["items"] == []
    # the whole list, a page at a time
    seen, after = set(), 0
    while after is not None:
        page = client.get(
            "/v1/staff/orders/stuck", query_string={"after": after, "limit": 3}, headers=headers
        ).get_json()
        assert len(page["items"]) <= 3
        seen |= {i["order_id"] for i in page["items"]}
        after = page["next_after"]
    assert set(stuck_orders.values()) <= seen and not seen & set(healthy.values())
    bad = client.get("/v1/staff/orders/stuck?limit=0&after=x", headers=headers)
    assert bad.status_code == 400 and set(bad.get_json()["error"]["fields"]) == {"limit", "after"}
    # every order's status, by number, a page at a time
    states, after = {}, 0
    while after is not None:
        page = client.get(
            "/v1/staff/order-states", query_string={"after": after, "limit": 7}, headers=headers
        ).get_json()
        states.update({i["order_id"]: i["status"] for i in page["items"]})
        after = page["next_after"]
    assert states[stuck_orders["not_shipped"]] == "certificate_received"
    assert states[healthy["unpaid"]] == "placed"


def test_the_worker_loop_reports(make_runtime):
    rt = make_runtime(ORDERS_STUCK_CHECK_MINUTES="0.01")
    order_id = craft(rt, "shipped", NOW - DEADLINES.by_state["not_delivered"].after - hours(1))
    stop = threading.Event()
    worker = threading.Thread(target=stuck.loop(rt), args=(stop,))
    worker.start()
    try:
        wait_until(lambda: stuck_events(rt, order_id), message="order.stuck emitted")
    finally:
        stop.set()
        worker.join()
    assert [e["state"] for e in stuck_events(rt, order_id)] == ["not_delivered"]


def test_order_stuck_goes_through_rabbitmq_to_the_orders_timeline(runtime):
    """The relay publishes order.stuck, orders' own consumer records it in the order's timeline
    (what the console's story shows), once."""
    runtime.declare_topology()
    purge_queue(runtime)
    forget_unsent(runtime)
    order_id = craft(runtime, "shipped", NOW - DEADLINES.by_state["not_delivered"].after - hours(1))
    assert order_id in {s.order_id for s in stuck.report_stuck(runtime, DEADLINES, now=NOW)}
    stop = threading.Event()
    threads = runtime.start_worker_threads(stop, loops=False)

    def recorded():
        return [
            e
            for e in orders_uc.order_timeline(runtime, order_id)
            if e["event_type"] == "order.stuck"
        ]

    try:
        (event,) = wait_until(recorded, message="order.stuck in the order's timeline")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
    assert event["outcome"] == "recorded" and order_status(runtime, order_id) == "shipped"


def test_the_deadlines_file_is_checked_at_start(tmp_path):
    assert set(DEADLINES.by_state) == {
        "unpaid",
        "payment_failed",
        "awaiting_documents",
        "not_sent_to_supplier",
        "supplier_rejected",
        "supplier_late",
        "not_shipped",
        "not_delivered",
    }
    with pytest.raises(ValueError) as bad:
        parse_deadlines(
            {
                "deadlines": [
                    {"state": "unpaid", "after_hours": 0},
                    {"state": "lost", "after_hours": 3},
                    {"state": "supplier_late", "after_hours": 3},
                ]
            }
        )
    message = str(bad.value)
    assert "deadlines[0]: after_hours" in message and "deadlines[1]: state" in message
    assert "without_promise_after_hours" in message and "not_shipped: no deadline" in message
    path = tmp_path / "deadlines.json"
    path.write_text(json.dumps({"deadlines": [{"state": "unpaid", "after_hours": 2}]}))
    with pytest.raises(ConfigError, match="ORDERS_DEADLINES_PATH"):
        OrdersConfig.from_env({"ORDERS_DEADLINES_PATH": str(path)})
    with pytest.raises(ConfigError, match="ORDERS_DEADLINES_PATH.*cannot read"):
        OrdersConfig.from_env({"ORDERS_DEADLINES_PATH": str(tmp_path / "none.json")})
    document = json.loads(open(SHIPPED, encoding="utf-8").read())
    document["deadlines"][0]["after_hours"] = 1.5
    path.write_text(json.dumps(document))
    config = OrdersConfig.from_env({"ORDERS_DEADLINES_PATH": str(path)})
    assert config.deadlines.by_state[document["deadlines"][0]["state"]].after == hours(1.5)
