"""Safe replay (coc_shared.replay) through a service's staff API, with the service's consumer
running on the real broker: the dry run of one message and of a group keeps nothing; a
progressive replay whose first message fails again stops by itself after that first batch, one
whose fix works replays every message in batches of 1, 10, then the rest; who, why, the ids and
the outcome are in the service's support actions (orders' ``certificate.received`` is replayed:
test_console_kit's REPLAYED_TYPE)."""

from __future__ import annotations

import io
import json
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_console_kit import REPLAYED_TYPE as EVENT_TYPE
from test_console_kit import (
    consuming,
    make_console_stack,
    park_certificate,
    park_event,
    park_replay_group,
)
from trust_kit import customer_account, order_body

from coc_orders.adapters import tables as orders_tables
from coc_shared.documents import StoredObjectMissing, open_store
from coc_shared.envelope import Event
from coc_shared.replay import batches
from coc_shared.tables import parked_messages, subject_keys, support_actions
from coc_shared.testing import fresh_example, staff_headers, wait_until


@pytest.fixture(scope="module")
def rs(settings_factory, tmp_path_factory):
    """The console stack (services over HTTP) with orders' consumer running."""
    made = make_console_stack(settings_factory, tmp_path_factory.mktemp("replay"))
    try:
        with consuming(made.stack.runtimes["orders"]):
            yield made
    finally:
        made.dispose()


def park_group(rs, count: int, known_order: bool):
    return park_replay_group(rs, count, known_order)


def api(rs, name: str = "sam", role: str = "support"):
    return rs.stack.client("orders"), staff_headers(name, role)


def handled(rs, event_ids) -> set[str]:
    orders = rs.stack.runtimes["orders"]
    with orders.engine.connect() as conn:
        return set(
            conn.execute(
                select(orders.inbox.c.event_id).where(orders.inbox.c.event_id.in_(list(event_ids)))
            ).scalars()
        )


def statuses(rs, ids) -> dict[int, str]:
    with rs.stack.runtimes["orders"].parking_engine.connect() as conn:
        rows = conn.execute(
            select(parked_messages.c.id, parked_messages.c.status).where(
                parked_messages.c.id.in_(list(ids))
            )
        ).all()
    return dict(rows)


def outbox_rows(rs) -> int:
    orders = rs.stack.runtimes["orders"]
    with orders.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(orders.outbox)).scalar_one()


def finished_report(client, headers, run_id: str) -> dict:
    def done():
        answer = client.get(f"/v1/staff/parked/replays/{run_id}", headers=headers)
        assert answer.status_code == 200, answer.get_json()
        report = answer.get_json()
        return report if report["status"] != "running" else None

    return wait_until(done, timeout=90, interval=0.1, message="the replay run's end")


def test_batches_are_one_then_ten_then_the_batch_size():
    assert [len(b) for b in batches(list(range(250)))] == [1, 10, 100, 100, 39]
    assert [len(b) for b in batches(list(range(5)))] == [1, 4]
    assert [len(b) for b in batches(list(range(25)), 10)] == [1, 10, 10, 4]
    assert sum(batches(list(range(250))), []) == list(range(250))


def test_a_dry_run_says_what_would_happen_and_keeps_nothing(rs):
    client, headers = api(rs)
    failing_error, failing = park_group(rs, 3, known_order=False)
    working_error, working = park_group(rs, 2, known_order=True)
    outbox_before = outbox_rows(rs)

    group = client.post(
        "/v1/staff/parked/dry-run",
        json={"event_type": EVENT_TYPE, "error_type": failing_error},
        headers=headers,
    )
    assert group.status_code == 200, group.get_json()
    summary = group.get_json()
    assert (summary["count"], summary["tried"], summary["would_fail"]) == (3, 3, 3)
    assert summary["would_succeed"] == 0
    assert summary["errors"]["PermanentError"]["count"] == 3
    assert "unknown order" in summary["errors"]["PermanentError"]["message"]

    one = client.post(f"/v1/staff/parked/{working[0][0]}/dry-run", headers=headers)
    assert one.status_code == 200, one.get_json()
    assert one.get_json()["outcome"] == "would_succeed" and one.get_json()["emits"] == []
    fine = client.post(
        "/v1/staff/parked/dry-run",
        json={"event_type": EVENT_TYPE, "error_type": working_error},
        headers=headers,
    ).get_json()
    assert (fine["would_succeed"], fine["would_fail"]) == (2, 0)

    # nothing kept: no inbox row, no outbox row, every message still parked, the order unchanged
    every = failing + working
    assert handled(rs, [e for _, e in every]) == set()
    assert outbox_rows(rs) == outbox_before
    assert set(statuses(rs, [p for p, _ in every]).values()) == {"parked"}
    orders = rs.stack.runtimes["orders"]
    with orders.engine.connect() as conn:
        timeline = conn.execute(
            select(func.count())
            .select_from(orders.definition.metadata.tables["orders.order_events"])
            .where(
                orders.definition.metadata.tables["orders.order_events"].c.event_id.in_(
                    [e for _, e in working]
                )
            )
        ).scalar_one()
    assert timeline == 0
    with orders.parking_engine.connect() as conn:
        recorded = conn.execute(
            select(support_actions.c.actor).where(
                support_actions.c.action == "dry_run",
                support_actions.c.target == str(working[0][0]),
            )
        ).scalars()
        assert list(recorded) == ["sam"]


def test_a_dry_run_of_an_erasure_shows_its_report_and_erases_nothing(rs):
    """The handler that would destroy the account's data key and erase its data: the dry run says
    it would report (the event it would emit), and the account and its key are still there."""
    orders = rs.stack.runtimes["orders"]
    account_id = rs.stack.account_id
    # the account's data key exists (made as an event of the account is sealed)
    orders.keys.seal_events(
        [
            Event(
                type="account.sign_up_attempted",
                data={"account_id": account_id},
                personal={"email": "x@example.org"},
                producer="orders",
                correlation_id=account_id,
                subject=account_id,
            )
        ]
    )
    event = fresh_example("account.erasure_requested")
    event.data = {**event.data, "account_id": account_id}
    event.subject = event.correlation_id = account_id
    parked_id = park_event(orders, event, f"TimeoutError{uuid.uuid4().hex[:6]}")
    accounts = orders.definition.metadata.tables["orders.accounts"]

    def state():
        with orders.engine.connect() as conn:
            account = conn.execute(select(accounts).where(accounts.c.id == account_id)).one()
            key = conn.execute(
                select(subject_keys.c.wrapped_key, subject_keys.c.destroyed_at).where(
                    subject_keys.c.subject == account_id
                )
            ).one()
        return account._mapping, key.wrapped_key is not None and key.destroyed_at is None

    before = state()
    assert before[1]  # a live key
    client, headers = api(rs)
    answer = client.post(f"/v1/staff/parked/{parked_id}/dry-run", headers=headers)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["outcome"] == "would_succeed"
    assert answer.get_json()["emits"] == ["account.erasure_reported.orders"]
    assert state() == before  # the account as it was, its key alive
    assert handled(rs, [event.id]) == set()
    assert statuses(rs, [parked_id]) == {parked_id: "parked"}


def pdf() -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def account_with_documents(rs) -> tuple[str, list[str]]:
    """A new account with an order and its two identity documents: (account id, storage keys)."""
    client = rs.stack.client("orders")
    account_id, customer = customer_account(rs.stack)
    placed = client.post("/v1/orders", json=order_body(), headers=customer)
    assert placed.status_code == 201, placed.get_json()
    order = placed.get_json()
    for kind in ("id_card", "registration_certificate"):
        upload = client.post(
            f"/v1/orders/{order['id']}/documents",
            headers=customer,
            data={"kind": kind, "file": (io.BytesIO(pdf()), f"{kind}.pdf", "application/pdf")},
            content_type="multipart/form-data",
        )
        assert upload.status_code == 201, upload.get_json()
    return account_id, [key for key, _ in documents_of(rs, order["id"])]


def documents_of(rs, order_id: str) -> list[tuple[str, object]]:
    """(storage key, erased at) of the order's documents."""
    t = orders_tables.order_documents
    with rs.stack.runtimes["orders"].engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                select(t.c.storage_key, t.c.erased_at).where(t.c.order_id == order_id)
            ).all()
        ]


def stored(rs, keys: list[str]) -> list[bool]:
    orders = rs.stack.runtimes["orders"]
    store = open_store(orders.config.store, orders.settings.embedded)
    found = []
    for key in keys:
        try:
            found.append(bool(store.get(key)))
        except StoredObjectMissing:
            found.append(False)
    return found


def test_a_dry_run_of_an_erasure_keeps_the_account_s_documents_and_the_erasure_deletes_them(rs):
    """The erasure handler deletes the files of the account's documents from the store: not in a
    dry run (its files and rows are as they were), only once the real erasure has committed."""
    orders = rs.stack.runtimes["orders"]
    account_id, keys = account_with_documents(rs)
    t = orders_tables.order_documents
    with orders.engine.connect() as conn:
        order_id = conn.execute(select(t.c.order_id).where(t.c.storage_key == keys[0])).scalar()
    event = fresh_example("account.erasure_requested")
    event.data = {**event.data, "account_id": account_id}
    event.subject = event.correlation_id = account_id
    error_type = f"TimeoutError{uuid.uuid4().hex[:6]}"
    parked_id = park_event(orders, event, error_type)
    before = documents_of(rs, order_id)
    assert len(before) == 2 and all(erased is None for _, erased in before)
    assert stored(rs, keys) == [True, True]

    client, headers = api(rs)
    answer = client.post(f"/v1/staff/parked/{parked_id}/dry-run", headers=headers)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["outcome"] == "would_succeed", answer.get_json()
    group = client.post(
        "/v1/staff/parked/dry-run",
        json={"event_type": event.type, "error_type": error_type},
        headers=headers,
    )
    assert group.status_code == 200, group.get_json()
    assert group.get_json()["would_succeed"] == 1
    assert documents_of(rs, order_id) == before
    assert stored(rs, keys) == [True, True]

    started = client.post(
        "/v1/staff/parked/replays",
        json={"event_type": event.type, "error_type": error_type, "reason": "issue 13"},
        headers=headers,
    )
    assert started.status_code == 202, started.get_json()
    report = finished_report(client, headers, started.get_json()["id"])
    assert (report["status"], report["handled"]) == ("completed", 1), report
    assert all(erased is not None for _, erased in documents_of(rs, order_id))
    assert stored(rs, keys) == [False, False]


def test_a_replay_whose_first_message_fails_again_stops_after_it(rs):
    client, headers = api(rs, "rita")
    error_type, parked = park_group(rs, 30, known_order=False)
    started = client.post(
        "/v1/staff/parked/replays",
        json={"event_type": EVENT_TYPE, "error_type": error_type, "reason": "the fix of #512"},
        headers=headers,
    )
    assert started.status_code == 202, started.get_json()
    assert started.get_json()["count"] == 30
    report = finished_report(client, headers, started.get_json()["id"])

    assert report["status"] == "stopped" and report["stopped_because"] == "failed_again"
    assert report["replayed"] == 1 and report["handled"] == 0
    assert report["batches"] == [
        {"batch": 1, "size": 1, "handled": 0, "failed_again": 1, "waiting": 0}
    ]
    (again,) = report["failed_again"]
    first_id = parked[0][0]
    assert again["id"] == first_id and again["error_type"] == "PermanentError"
    assert "unknown order" in again["error"]
    assert (report["by"], report["role"], report["reason"]) == (
        "rita",
        "support",
        "the fix of #512",
    )
    # the first is replayed and parked again (a new row, the new error); the 29 others wait
    now = statuses(rs, [p for p, _ in parked])
    assert now[first_id] == "replayed"
    assert [now[p] for p, _ in parked[1:]] == ["parked"] * 29
    reparked = rs.stack.runtimes["orders"].parking.get(again["parked_again_as"])
    assert reparked["status"] == "parked" and reparked["event_id"] == parked[0][1]
    # who, why, what, outcome: the service's support actions of the run
    with rs.stack.runtimes["orders"].parking_engine.connect() as conn:
        rows = conn.execute(
            select(support_actions)
            .where(support_actions.c.target == f"replay-run:{report['id']}")
            .order_by(support_actions.c.id)
        ).all()
    assert [r.action for r in rows] == ["replay_run_started", "replay_batch", "replay_run_finished"]
    assert {r.actor for r in rows} == {"rita"} and {r.reason for r in rows} == {"the fix of #512"}
    assert rows[0].details["ids"] == [p for p, _ in parked]
    assert rows[1].details["replayed"] == [first_id]
    assert rows[2].details["outcome"] == "stopped" and rows[2].details["replayed"] == 1


def test_a_replay_whose_fix_works_replays_every_message(rs):
    client, headers = api(rs, "adam", "admin")
    error_type, parked = park_group(rs, 25, known_order=True)
    started = client.post(
        "/v1/staff/parked/replays",
        json={
            "event_type": EVENT_TYPE,
            "error_type": error_type,
            "reason": "order restored",
            "batch_size": 10,
        },
        headers=headers,
    )
    assert started.status_code == 202, started.get_json()
    report = finished_report(client, headers, started.get_json()["id"])
    assert report["status"] == "completed" and report["stopped_because"] is None
    assert (report["replayed"], report["handled"], report["failed_again"]) == (25, 25, [])
    assert [b["size"] for b in report["batches"]] == [1, 10, 10, 4]
    assert handled(rs, [e for _, e in parked]) == {e for _, e in parked}
    assert set(statuses(rs, [p for p, _ in parked]).values()) == {"replayed"}
    nothing_left = client.post(
        "/v1/staff/parked/replays",
        json={"event_type": EVENT_TYPE, "error_type": error_type, "reason": "again"},
        headers=headers,
    )
    assert nothing_left.status_code == 404


def test_a_replay_stops_in_a_later_batch_when_one_of_its_messages_fails_again(rs):
    """Batches 1 and 2 (1 and 10 messages) are handled; the third (5) has a message for an unknown
    order, which fails again: the run stops after that batch, the fourth is never sent."""
    client, headers = api(rs, "nina")
    orders = rs.stack.runtimes["orders"]
    error_type = f"KeyError{uuid.uuid4().hex[:6]}"
    unknown = str(uuid.uuid4())
    parked = [
        park_certificate(orders, unknown if n == 13 else rs.stack.order_id, error_type)
        for n in range(21)
    ]
    started = client.post(
        "/v1/staff/parked/replays",
        json={
            "event_type": EVENT_TYPE,
            "error_type": error_type,
            "reason": "the fix of #530",
            "batch_size": 5,
        },
        headers=headers,
    )
    assert started.status_code == 202, started.get_json()
    report = finished_report(client, headers, started.get_json()["id"])

    assert report["status"] == "stopped" and report["stopped_because"] == "failed_again"
    assert report["batches"] == [
        {"batch": 1, "size": 1, "handled": 1, "failed_again": 0, "waiting": 0},
        {"batch": 2, "size": 10, "handled": 10, "failed_again": 0, "waiting": 0},
        {"batch": 3, "size": 5, "handled": 4, "failed_again": 1, "waiting": 0},
    ]
    assert (report["replayed"], report["handled"]) == (16, 15)
    (again,) = report["failed_again"]
    assert again["id"] == parked[13][0] and again["error_type"] == "PermanentError"
    ids = [p for p, _ in parked]
    now = statuses(rs, ids)
    assert [now[p] for p in ids[:16]] == ["replayed"] * 16
    assert [now[p] for p in ids[16:]] == ["parked"] * 5  # batch 4: never sent
    assert handled(rs, [e for _, e in parked]) == {
        e for n, (_, e) in enumerate(parked[:16]) if n != 13
    }


def test_error_texts_shown_to_support_mask_addresses(rs):
    """A handler's error naming an e-mail address (here the order id it did not find): the dry
    runs and the group's messages show it masked, as the log lines do."""
    orders = rs.stack.runtimes["orders"]
    address = "emilie.dupont@example.org"
    event = fresh_example(EVENT_TYPE, order_id=lambda: address)
    error_type = f"LookupError{uuid.uuid4().hex[:6]}"
    parked_id = orders.parking.park(
        service="orders",
        queue=orders.broker.queue_name("orders"),
        routing_key=event.type,
        body=event.to_json(),
        headers={},
        properties={"message_id": event.id, "type": event.type},
        error_type=error_type,
        error_message=f"no order {address} (call +33 6 12 34 56 78)",
        stack_trace=None,
        attempts=5,
        first_failed_at=datetime.now(UTC),
        last_failed_at=datetime.now(UTC),
        event_id=event.id,
        event_type=event.type,
        order_id=address,
        correlation_id=event.correlation_id,
    )
    client, headers = api(rs)
    one = client.post(f"/v1/staff/parked/{parked_id}/dry-run", headers=headers).get_json()
    assert one["outcome"] == "would_fail" and address[:6] not in one["error"], one
    assert "[email]" in one["error"], one
    group = client.post(
        "/v1/staff/parked/dry-run",
        json={"event_type": EVENT_TYPE, "error_type": error_type},
        headers=headers,
    ).get_json()
    assert group["would_fail"] == 1, group
    assert address[:6] not in json.dumps(group) and "[email]" in json.dumps(group)
    listed = client.get(
        "/v1/staff/parked-summary/messages",
        query_string={"event_type": EVENT_TYPE, "error_type": error_type},
        headers=headers,
    )
    assert listed.status_code == 200, listed.get_json()
    [item] = listed.get_json()["items"]
    assert item["error_message"] == "no order [email] (call [phone])"


def test_bad_replay_requests_are_4xx(rs):
    client, headers = api(rs)
    error_type, parked = park_group(rs, 1, known_order=False)
    no_reason = client.post(
        "/v1/staff/parked/replays",
        json={"event_type": EVENT_TYPE, "error_type": error_type, "reason": " "},
        headers=headers,
    )
    assert no_reason.status_code == 422 and "reason" in no_reason.get_json()["error"]["fields"]
    bad_size = client.post(
        "/v1/staff/parked/replays",
        json={"event_type": EVENT_TYPE, "error_type": error_type, "reason": "x", "batch_size": 0},
        headers=headers,
    )
    assert bad_size.status_code == 422
    no_group = client.post("/v1/staff/parked/dry-run", json={"event_type": 3}, headers=headers)
    assert set(no_group.get_json()["error"]["fields"]) == {"event_type", "error_type"}
    assert client.get("/v1/staff/parked/replays/" + "0" * 32, headers=headers).status_code == 404
    assert client.get("/v1/staff/parked/replays/nope", headers=headers).status_code == 404
    assert client.post("/v1/staff/parked/999999999/dry-run", headers=headers).status_code == 404
    assert client.post(f"/v1/staff/parked/{parked[0][0]}/dry-run").status_code == 401
    other = staff_headers("sam", "support", audience=("payments",))
    refused = client.post(f"/v1/staff/parked/{parked[0][0]}/dry-run", headers=other)
    assert refused.status_code == 401
    assert statuses(rs, [parked[0][0]]) == {parked[0][0]: "parked"}
