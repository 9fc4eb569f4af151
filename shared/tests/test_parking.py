"""The parked-message store: filters, show, replay to the original queue only, discard, audit
trail."""

from datetime import UTC, datetime, timedelta

import pytest
from sharedkit import (
    body_bytes,
    get_all,
    item_event,
    migrate_ops,
    publish_event,
    queue_count,
    register_test_type,
    unique_suffix,
)
from sqlalchemy import select

from coc_shared.bus import HEADER_ATTEMPTS, HEADER_REPLAYED_FROM, PublishError
from coc_shared.db import make_engine
from coc_shared.parking import ParkingStore, parked_to_json
from coc_shared.tables import support_actions
from coc_shared.testing import wait_until
from coc_shared.tokens import Actor

ALICE = Actor(name="alice", role="support")
T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


@pytest.fixture
def store(database_url):
    engine = make_engine(database_url)
    migrate_ops(engine)
    yield ParkingStore(engine)
    engine.dispose()


def park(
    store,
    *,
    service,
    queue=None,
    routing_key="order.placed",
    body=b'{"n": 1}',
    event_type="order.placed",
    error_type="SchemaViolation",
    error_message="order.placed v1: {'vin': ['Missing data']}",
    order_id=None,
    event_id="e-1",
    headers=None,
    properties=None,
) -> int:
    return store.park(
        service=service,
        queue=queue or f"coc.{service}",
        routing_key=routing_key,
        body=body,
        headers=headers if headers is not None else {"x-custom": "kept"},
        properties=properties
        if properties is not None
        else {"message_id": event_id, "type": event_type},
        error_type=error_type,
        error_message=error_message,
        stack_trace="Traceback (most recent call last)",
        attempts=1,
        first_failed_at=T0,
        last_failed_at=T0 + timedelta(seconds=1),
        event_id=event_id,
        event_type=event_type,
        order_id=order_id,
        correlation_id="corr-1",
    )


def actions(store, target) -> list[dict]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(support_actions)
            .where(support_actions.c.target == str(target))
            .order_by(support_actions.c.id)
        ).all()
    return [dict(r._mapping) for r in rows]


# queries --------------------------------------------------------------------------------------


def test_list_filters(store):
    a, b = f"t-{unique_suffix()}", f"t-{unique_suffix()}"
    order = f"order-{unique_suffix()}"
    p1 = park(store, service=a, order_id=order)
    p2 = park(
        store,
        service=a,
        event_type="payment.confirmed",
        error_type="PermanentError",
        error_message="no order with this id",
        order_id=order,
    )
    p3 = park(
        store,
        service=a,
        event_type="payment.confirmed",
        error_type="RuntimeError",
        error_message="Supplier API timed out",
    )
    p4 = park(store, service=b, order_id=order)

    def ids(**filters):
        return [r["id"] for r in store.list(**filters)]

    assert ids(service=a) == [p1, p2, p3]
    assert ids(service=b) == [p4]
    assert ids(service=a, event_type="payment.confirmed") == [p2, p3]
    assert ids(service=a, error="supplier api") == [p3]  # error text, case-insensitive
    assert ids(service=a, error="permanenterror") == [p2]  # or error type
    assert ids(order_id=order) == [p1, p2, p4]
    assert ids(service=a, order_id=order, event_type="order.placed") == [p1]
    assert ids(service=a, limit=2) == [p1, p2]
    assert store.count(service=a) == 3 and store.count(order_id=order) == 3

    store.discard(p1, ALICE, "duplicate of a handled order")
    assert ids(service=a) == [p2, p3]  # status defaults to parked
    assert ids(service=a, status="discarded") == [p1]
    assert ids(service=a, status=None) == [p1, p2, p3]
    assert ids(service=a, status="replayed") == []


def test_list_items_carry_no_body(store):
    service = f"t-{unique_suffix()}"
    park(store, service=service)
    [item] = store.list(service=service)
    assert "body" not in item and "stack_trace" not in item
    assert item["error_type"] == "SchemaViolation" and item["attempts"] == 1


def test_show_returns_everything(store):
    service = f"t-{unique_suffix()}"
    parked_id = park(
        store,
        service=service,
        body=b'{"id": "e-1", "data": {}}',
        order_id="o-9",
        headers={"x-custom": "kept", "x-death": [{"count": 2, "queue": "q"}]},
    )
    row = store.get(parked_id)
    assert bytes(row["body"]) == b'{"id": "e-1", "data": {}}'
    assert row["headers"] == {"x-custom": "kept", "x-death": [{"count": 2, "queue": "q"}]}
    assert row["stack_trace"].startswith("Traceback") and row["host"]
    assert row["first_failed_at"] == T0 and row["order_id"] == "o-9" and row["status"] == "parked"
    shown = parked_to_json(row, include_body=True)
    assert shown["body"] == {"id": "e-1", "data": {}} and shown["first_failed_at"] == T0.isoformat()
    assert store.get(10**12) is None


def test_show_a_body_that_is_not_json(store):
    parked_id = park(store, service=f"t-{unique_suffix()}", body=b"\xff\x00 raw")
    shown = parked_to_json(store.get(parked_id), include_body=True)
    assert "body" not in shown and shown["body_raw"].endswith(" raw")


def test_bytes_and_dates_in_headers_are_stored_as_json(store):
    parked_id = park(
        store,
        service=f"t-{unique_suffix()}",
        headers={"raw": b"bytes", "at": T0, "nested": {"list": (1, b"x")}, "obj": object},
    )
    headers = store.get(parked_id)["headers"]
    assert (
        headers["raw"] == "bytes"
        and headers["at"] == T0.isoformat()
        and headers["nested"] == {"list": [1, "x"]}
    )
    assert isinstance(headers["obj"], str)


# replay ---------------------------------------------------------------------------------------


def test_replay_sends_to_the_original_queue_only(store, publisher, declare_queue, rabbitmq_url):
    type_ = register_test_type()
    original = declare_queue([type_])
    other_subscriber = declare_queue([type_])  # bound to the same type: must not get the replay
    service = f"t-{unique_suffix()}"
    event = item_event(type_, 1)
    parked_id = park(
        store,
        service=service,
        queue=original,
        routing_key=type_,
        event_type=type_,
        event_id=event.id,
        body=event.to_json(),
        headers={
            "x-custom": "kept",
            HEADER_ATTEMPTS: 5,
            "x-coc-delayed": 2,
            "x-coc-last-error": "boom",
            "x-death": [{"count": 1}],
        },
    )

    result = store.replay(parked_id, publisher, ALICE, "supplier API fixed")
    assert result == {"id": parked_id, "status": "replayed", "queue": original}

    [message] = get_all(rabbitmq_url, original)
    assert body_bytes(message) == event.to_json()
    assert message.properties["message_id"] == event.id and message.properties["type"] == type_
    headers = message.properties["application_headers"]
    assert headers["x-custom"] == "kept" and headers[HEADER_REPLAYED_FROM] == parked_id
    for retry_header in (HEADER_ATTEMPTS, "x-coc-delayed", "x-coc-last-error", "x-death"):
        assert retry_header not in headers, f"{retry_header} must be reset on replay"
    assert queue_count(rabbitmq_url, other_subscriber) == 0

    row = store.get(parked_id)
    assert row["status"] == "replayed" and row["resolved_by"] == "alice"
    assert row["resolution_reason"] == "supplier API fixed" and row["resolved_at"] is not None
    [action] = actions(store, parked_id)
    assert (action["actor"], action["role"], action["action"], action["reason"]) == (
        "alice",
        "support",
        "replay",
        "supplier API fixed",
    )
    assert action["details"] == {"queue": original, "event_id": event.id}


def test_double_replay_is_refused(store, publisher, declare_queue, rabbitmq_url):
    queue = declare_queue()
    parked_id = park(store, service=f"t-{unique_suffix()}", queue=queue)
    store.replay(parked_id, publisher, ALICE, "first")
    with pytest.raises(ValueError, match="already replayed"):
        store.replay(parked_id, publisher, Actor("bob", "admin"), "second")
    assert queue_count(rabbitmq_url, queue) == 1
    assert [a["actor"] for a in actions(store, parked_id)] == ["alice"]


def test_replay_of_an_unknown_or_discarded_message_is_refused(store, publisher, declare_queue):
    with pytest.raises(LookupError):
        store.replay(10**12, publisher, ALICE, "why")
    parked_id = park(store, service=f"t-{unique_suffix()}", queue=declare_queue())
    store.discard(parked_id, ALICE, "test data")
    with pytest.raises(ValueError, match="already discarded"):
        store.replay(parked_id, publisher, ALICE, "why")


def test_a_batch_replay_sends_only_the_service_s_own_messages(
    store, publisher, declare_queue, rabbitmq_url
):
    """A service's progressive replay names its own service: an id of another service's message
    among the batch's is skipped (neither sent nor marked replayed)."""
    mine, theirs = f"t-{unique_suffix()}", f"t-{unique_suffix()}"
    queue, other_queue = declare_queue(), declare_queue()
    own_id = park(store, service=mine, queue=queue, event_id="e-mine")
    other_id = park(store, service=theirs, queue=other_queue, event_id="e-theirs")
    sent = store.replay_batch([own_id, other_id], publisher, ALICE, "fixed", "run-1", mine)
    assert sent == [{"id": own_id, "event_id": "e-mine"}]
    assert store.get(own_id)["status"] == "replayed"
    assert store.get(other_id)["status"] == "parked"
    assert queue_count(rabbitmq_url, queue) == 1 and queue_count(rabbitmq_url, other_queue) == 0


def test_a_replay_the_broker_does_not_confirm_leaves_the_message_parked(
    store, publisher, bus_prefix
):
    parked_id = park(
        store, service=f"t-{unique_suffix()}", queue=f"{bus_prefix}queue-that-was-deleted"
    )
    with pytest.raises(PublishError, match="unroutable"):
        store.replay(parked_id, publisher, ALICE, "try")
    assert store.get(parked_id)["status"] == "parked"
    assert actions(store, parked_id) == []


def test_a_replayed_message_is_handled_by_its_service(make_service, publisher):
    svc = make_service()
    event = item_event(svc.type, 3, mode="until_fixed")
    publish_event(publisher, event)
    [row] = wait_until(lambda: svc.parked(), timeout=8, message="the message to be parked")
    assert row["error_type"] == "PermanentError"
    svc.fixed = True
    svc.runtime.parking.replay(row["id"], publisher, ALICE, "cause fixed")
    wait_until(
        lambda: svc.effects_of(event.id) == 1,
        timeout=8,
        message="the replayed message to be handled",
    )
    assert svc.calls.count(event.id) == 2
    assert svc.runtime.parking.get(row["id"])["status"] == "replayed"


# discard --------------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_discard_requires_a_reason(store, reason):
    parked_id = park(store, service=f"t-{unique_suffix()}")
    with pytest.raises(ValueError, match="reason"):
        store.discard(parked_id, ALICE, reason)
    assert store.get(parked_id)["status"] == "parked"
    assert actions(store, parked_id) == []


def test_discard(store):
    parked_id = park(store, service=f"t-{unique_suffix()}")
    assert store.discard(parked_id, Actor("carol", "admin"), "test order, never real") == {
        "id": parked_id,
        "status": "discarded",
    }
    row = store.get(parked_id)
    assert row["status"] == "discarded" and row["resolved_by"] == "carol"
    assert row["resolution_reason"] == "test order, never real"
    [action] = actions(store, parked_id)
    assert (action["actor"], action["role"], action["action"], action["reason"]) == (
        "carol",
        "admin",
        "discard",
        "test order, never real",
    )
    with pytest.raises(LookupError):
        store.discard(parked_id, ALICE, "again")
    with pytest.raises(LookupError):
        store.discard(10**12, ALICE, "unknown")


def test_replay_requires_a_reason(store, publisher, declare_queue, rabbitmq_url):
    queue = declare_queue()
    parked_id = park(store, service=f"t-{unique_suffix()}", queue=queue)
    with pytest.raises(ValueError, match="reason"):
        store.replay(parked_id, publisher, ALICE, "  ")
    assert store.get(parked_id)["status"] == "parked" and queue_count(rabbitmq_url, queue) == 0


def test_two_replays_at_once_publish_the_message_once(store, broker, declare_queue, rabbitmq_url):
    import threading

    from coc_shared.bus import Publisher

    queue = declare_queue()
    parked_id = park(store, service=f"t-{unique_suffix()}", queue=queue)
    both_checked = threading.Barrier(2, timeout=3)

    class Meeting(Publisher):
        """Lets both replays reach the publish together, if the store lets them both get that
        far."""

        def publish_one(self, message):
            try:
                both_checked.wait()
            except threading.BrokenBarrierError:
                pass  # only one got this far: as it should be
            return super().publish_one(message)

    done, refused = [], []

    def replay(name):
        publisher = Meeting(broker)
        try:
            done.append(
                store.replay(parked_id, publisher, Actor(name, "support"), "supplier fixed")
            )
        except ValueError as exc:
            refused.append(exc)
        finally:
            publisher.close()

    threads = [threading.Thread(target=replay, args=(name,)) for name in ("alice", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert queue_count(rabbitmq_url, queue) == 1
    assert len(done) == 1 and len(refused) == 1
    assert len(actions(store, parked_id)) == 1
