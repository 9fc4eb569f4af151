"""The idempotent consumer, run in-process against the real broker and database: what cannot succeed
is parked at once with everything needed to understand and replay it, and the queue keeps
flowing."""

import json
import socket
import uuid

import pytest
from sharedkit import item_event, publish_event, publish_raw, queue_count, register_test_type

from coc_shared.bus import HEADER_ATTEMPTS, Broker
from coc_shared.testing import wait_until


def parked_rows(svc, count: int) -> list[dict]:
    return wait_until(
        lambda: (rows := svc.parked()) and len(rows) >= count and rows,
        timeout=8,
        message=f"{count} parked message(s) of {svc.name}",
    )


def assert_parked_at_once(svc, row, *, error_type, body, routing_key):
    assert row["service"] == svc.name
    assert row["host"] == socket.gethostname()
    assert row["queue"] == svc.queue
    assert row["routing_key"] == routing_key
    assert bytes(row["body"]) == body
    assert row["error_type"] == error_type
    assert row["error_message"]
    assert row["stack_trace"].startswith("Traceback") and error_type in row["stack_trace"]
    assert row["attempts"] == 1
    assert row["status"] == "parked"
    assert row["first_failed_at"] <= row["last_failed_at"] <= row["parked_at"]
    assert isinstance(row["headers"], dict) and isinstance(row["properties"], dict)
    assert "x-coc-delayed" not in row["headers"]  # never went through a delay queue
    for delay in svc.runtime.settings.retry_delays:
        assert (
            queue_count(
                svc.runtime.settings.rabbitmq_url, Broker.retry_queue_name(svc.queue, delay)
            )
            == 0
        )


def flows_behind(svc, publisher) -> None:
    """A good message published after the bad one is handled: the queue keeps flowing."""
    good = item_event(svc.type, 1000)
    publish_event(publisher, good)
    wait_until(
        lambda: svc.effects_of(good.id) == 1,
        timeout=8,
        message="the good message behind to be handled",
    )


@pytest.mark.parametrize(
    "body,detail",
    [
        (b"\xff\xfe this is not JSON", "not JSON"),
        (b'["a", "list"]', "not a JSON object"),
        (b'{"id": "not-a-uuid", "type": "order.placed"}', "invalid envelope"),
    ],
    ids=["not-json", "not-an-object", "not-an-envelope"],
)
def test_an_undecodable_body_is_parked_at_once(make_service, publisher, rabbitmq_url, body, detail):
    svc = make_service()
    publish_raw(
        rabbitmq_url, svc.queue, body, headers={"x-origin": "foreign-producer"}, message_id="raw-1"
    )
    flows_behind(svc, publisher)
    [row] = parked_rows(svc, 1)
    assert_parked_at_once(
        svc, row, error_type="UndecodableMessage", body=body, routing_key=svc.queue
    )
    assert detail in row["error_message"]
    assert row["headers"]["x-origin"] == "foreign-producer"
    assert row["properties"]["message_id"] == "raw-1" and row["event_id"] == "raw-1"
    assert svc.calls == [svc.calls[0]] and len(svc.inbox_ids()) == 1  # only the good message


def test_an_event_violating_its_schema_is_parked_at_once(make_service, publisher):
    svc = make_service()
    bad = item_event(svc.type, "not a number", order_id="order-77")
    publish_event(publisher, bad, headers={"x-test": "schema"})
    flows_behind(svc, publisher)
    [row] = parked_rows(svc, 1)
    assert_parked_at_once(
        svc, row, error_type="SchemaViolation", body=bad.to_json(), routing_key=svc.type
    )
    assert "n" in row["error_message"]
    assert row["event_id"] == bad.id and row["event_type"] == svc.type
    assert row["order_id"] == "order-77" and row["correlation_id"] == bad.correlation_id
    assert row["headers"]["x-test"] == "schema"
    assert row["properties"]["message_id"] == bad.id and row["properties"]["type"] == svc.type
    assert bad.id not in svc.calls and bad.id not in svc.inbox_ids()


@pytest.mark.parametrize("registered", [True, False], ids=["registered-type", "unregistered-type"])
def test_an_event_type_without_handler_is_parked_at_once(make_service, publisher, registered):
    svc = make_service()
    other = register_test_type() if registered else "probe.never_registered"
    bad = item_event(other, 5)
    publish_event(
        publisher, bad, to_queue=svc.queue
    )  # the queue is not bound to it: sent to the queue directly
    flows_behind(svc, publisher)
    [row] = parked_rows(svc, 1)
    assert_parked_at_once(
        svc, row, error_type="UnknownEventType", body=bad.to_json(), routing_key=other
    )
    assert f"{svc.name} has no handler for {other!r}" in row["error_message"]
    assert row["event_id"] == bad.id and row["event_type"] == other


def test_a_permanent_error_of_the_handler_parks_at_once(make_service, publisher):
    svc = make_service()
    bad = item_event(svc.type, 7, mode="permanent", order_id="order-7")
    publish_event(publisher, bad)
    flows_behind(svc, publisher)
    [row] = parked_rows(svc, 1)
    assert_parked_at_once(
        svc, row, error_type="PermanentError", body=bad.to_json(), routing_key=svc.type
    )
    assert "item 7 can never be handled" in row["error_message"]
    assert "on_item" in row["stack_trace"]  # the handler's frame
    assert svc.calls.count(bad.id) == 1  # no quick retry either
    assert row["order_id"] == "order-7"
    assert bad.id not in svc.inbox_ids() and svc.effects_of(bad.id) == 0


def test_the_same_event_published_twice_has_one_effect(make_service, publisher):
    svc = make_service()
    event = item_event(svc.type, 1)
    publish_event(publisher, event)
    publish_event(publisher, event)  # same id: a duplicate (e.g. the relay published it again)
    flows_behind(svc, publisher)
    assert svc.effects_of(event.id) == 1
    assert svc.calls.count(event.id) == 1

    publish_event(publisher, event)  # and once more, long after it was handled
    flows_behind(svc, publisher)
    assert svc.effects_of(event.id) == 1 and svc.calls.count(event.id) == 1
    assert svc.parked() == []


def test_a_failing_handler_is_retried_then_parked(make_service, publisher):
    """Contrast with the above: a transient error gets quick attempts, then the delay queues, then
    parking."""
    svc = make_service()
    bad = item_event(svc.type, 9, mode="fail")
    publish_event(publisher, bad)
    [row] = parked_rows(svc, 1)
    quick = svc.runtime.settings.quick_attempts
    delays = svc.runtime.settings.retry_delays
    assert (
        row["error_type"] == "RuntimeError" and "planned failure of item 9" in row["error_message"]
    )
    assert row["attempts"] == quick + len(delays) == svc.calls.count(bad.id)
    assert (
        row["headers"]["x-coc-delayed"] == len(delays)
        and row["headers"][HEADER_ATTEMPTS] == quick + len(delays) - 1
    )
    assert row["routing_key"] == svc.type and row["first_failed_at"] < row["last_failed_at"]
    flows_behind(svc, publisher)


def test_a_batch_of_events_is_handled_once_each(make_service, publisher):
    svc = make_service()
    events = [item_event(svc.type, n) for n in range(150)]
    from coc_shared.bus import OutgoingMessage

    result = publisher.publish_batch(
        [
            OutgoingMessage(
                message_id=e.id,
                body=e.to_json(),
                routing_key=e.type,
                event_type=e.type,
                correlation_id=e.correlation_id,
            )
            for e in events
        ]
    )
    assert len(result.confirmed) == 150
    wait_until(lambda: svc.effects_of() == 150, timeout=8, message="150 effects")
    assert svc.inbox_ids() == {e.id for e in events}


def test_parked_body_is_kept_byte_for_byte(make_service, rabbitmq_url, publisher):
    svc = make_service()
    body = json.dumps({"id": str(uuid.uuid4()), "garbage": "é" * 10}).encode() + b"\x00\xff"
    publish_raw(rabbitmq_url, svc.queue, body)
    flows_behind(svc, publisher)
    [row] = parked_rows(svc, 1)
    assert bytes(row["body"]) == body


def test_a_failing_handler_rolls_back_only_its_own_message(make_service, publisher):
    """One batch, one transaction, a savepoint per message: a handler's failure (even a database
    error of its own) undoes its effects and emitted events only; the rest of the batch commits."""
    from coc_shared.bus import OutgoingMessage

    svc = make_service(start=False)
    svc.runtime.declare_topology()
    good = [item_event(svc.type, n) for n in range(10)]
    bad_sql = item_event(svc.type, 100, mode="bad_sql")
    half_way = item_event(svc.type, 101, mode="partial")
    batch = good[:5] + [bad_sql, half_way] + good[5:]
    result = publisher.publish_batch(
        [
            OutgoingMessage(
                message_id=e.id,
                body=e.to_json(),
                routing_key=e.type,
                event_type=e.type,
                correlation_id=e.correlation_id,
            )
            for e in batch
        ]
    )
    assert len(result.confirmed) == len(batch)
    svc.start()  # all of them are waiting: they arrive as one batch
    wait_until(lambda: svc.effects_of() == 10, timeout=8, message="the good messages' effects")
    rows = {r["event_id"]: r for r in parked_rows(svc, 2)}
    assert (
        rows[half_way.id]["error_type"] == "PermanentError" and rows[half_way.id]["attempts"] == 1
    )
    assert (
        rows[bad_sql.id]["error_type"] == "ProgrammingError"
    )  # retried like any handler error, then parked
    assert svc.effects_of(half_way.id) == 0 and svc.effects_of(bad_sql.id) == 0
    assert svc.outbox_rows() == []  # the half-way handler's emitted event was rolled back too
    assert svc.inbox_ids() == {e.id for e in good}


def test_what_a_handler_registers_after_commit_runs_once_its_message_committed(
    make_service, publisher
):
    """``ctx.after_commit`` (a stored file deleted...): run after the commit (the inbox row is
    there), on the batch path and message by message; never for a message rolled back."""
    from coc_shared.bus import OutgoingMessage

    svc = make_service(start=False)
    svc.runtime.declare_topology()
    first = [item_event(svc.type, n) for n in range(3)]
    half_way = item_event(svc.type, 101, mode="partial")
    then = [item_event(svc.type, n) for n in range(3, 6)]
    for batch in (first, [*then[:1], half_way, *then[1:]]):
        result = publisher.publish_batch(
            [
                OutgoingMessage(
                    message_id=e.id,
                    body=e.to_json(),
                    routing_key=e.type,
                    event_type=e.type,
                    correlation_id=e.correlation_id,
                )
                for e in batch
            ]
        )
        assert len(result.confirmed) == len(batch)
        if batch is first:
            svc.start()
            wait_until(lambda: len(svc.after_commit) == 3, timeout=8, message="the first three")
    parked_rows(svc, 1)  # the half-way one
    wait_until(lambda: len(svc.after_commit) == 6, timeout=8, message="the other three")
    assert sorted(svc.after_commit) == sorted((e.id, True) for e in (*first, *then))
    assert half_way.id in svc.calls  # its handler ran and registered, then failed: not run


def test_events_emitted_by_a_handler_are_written_to_the_outbox_with_their_cause(
    make_service, publisher
):
    from coc_shared.envelope import Event

    svc = make_service()
    cause = item_event(svc.type, 1, mode="emit")
    publish_event(publisher, cause)
    wait_until(lambda: svc.effects_of(cause.id) == 1, timeout=8, message="the effect")
    [row] = svc.outbox_rows()
    emitted = Event.from_json(row.body)
    assert row.event_id == emitted.id and row.event_type == svc.type and row.sent_at is None
    assert emitted.data == {"n": 1001} and emitted.producer == svc.name
    assert emitted.causation_id == cause.id and emitted.correlation_id == cause.correlation_id


def test_a_message_of_a_progressive_replay_is_parked_again_after_its_quick_attempts(
    make_service, publisher
):
    """A replay run (header x-coc-replay-run) waits for each message's outcome: a transient error
    gets the quick attempts only, then the message is parked again at once, no delay queue."""
    from coc_shared.bus import HEADER_REPLAY_RUN

    svc = make_service()
    bad = item_event(svc.type, 11, mode="fail")
    publish_event(publisher, bad, headers={HEADER_REPLAY_RUN: "run-1"})
    [row] = parked_rows(svc, 1)
    quick = svc.runtime.settings.quick_attempts
    assert row["error_type"] == "RuntimeError" and row["attempts"] == quick
    assert svc.calls.count(bad.id) == quick
    assert "x-coc-delayed" not in row["headers"] and row["headers"][HEADER_REPLAY_RUN] == "run-1"
    flows_behind(svc, publisher)
