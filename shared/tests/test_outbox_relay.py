"""The outbox relay against the real broker and database: a row is sent once, and only once
confirmed."""

import threading
from collections import Counter

import pytest
from sharedkit import (
    add_to_outbox,
    body_bytes,
    get_all,
    item_event,
    queue_count,
    register_test_type,
)
from sqlalchemy import select

from coc_shared.bus import Publisher, PublishError
from coc_shared.catalogue import SchemaViolation
from coc_shared.envelope import utcnow
from coc_shared.outbox import OutboxRelay
from coc_shared.testing import wait_until
from coc_shared.unit_of_work import Bound


def emit(engine, outbox, type_: str, count: int, start: int = 0) -> list:
    events = [item_event(type_, n) for n in range(start, start + count)]
    with engine.begin() as conn:
        add_to_outbox(conn, outbox, events)
    return events


def rows(engine, outbox) -> dict:
    with engine.connect() as conn:
        return {r.event_id: r for r in conn.execute(select(outbox).order_by(outbox.c.seq))}


@pytest.fixture
def relay_factory(outbox_db, broker):
    engine, outbox = outbox_db
    publishers = []

    def make(publisher_class=Publisher, batch_size=500, poll_seconds=1.0, **kwargs) -> OutboxRelay:
        publisher = publisher_class(broker, confirm_timeout=10, **kwargs)
        publishers.append(publisher)
        return OutboxRelay(
            engine, outbox, publisher, batch_size=batch_size, poll_seconds=poll_seconds
        )

    yield make
    for publisher in publishers:
        publisher.close()


def test_rows_are_published_in_order_and_marked_sent(
    outbox_db, relay_factory, declare_queue, rabbitmq_url
):
    engine, outbox = outbox_db
    type_ = register_test_type()
    queue = declare_queue([type_])
    events = emit(engine, outbox, type_, 5)
    assert relay_factory().publish_pending() == 5
    assert all(r.sent_at is not None and r.attempts == 0 for r in rows(engine, outbox).values())
    messages = get_all(rabbitmq_url, queue)
    assert [m.properties["message_id"] for m in messages] == [e.id for e in events]
    assert [body_bytes(m) for m in messages] == [e.to_json() for e in events]
    assert {m.properties["type"] for m in messages} == {type_}
    assert [m.properties["correlation_id"] for m in messages] == [e.correlation_id for e in events]
    assert relay_factory().publish_pending() == 0


def test_an_invalid_event_never_reaches_the_outbox(outbox_db):
    engine, outbox = outbox_db
    type_ = register_test_type()
    with pytest.raises(SchemaViolation):
        with engine.begin() as conn:
            writes = Bound(conn, outbox, "probe")
            writes.emit(type_, {"n": 1})
            writes.emit(type_, {"n": "not a number"})
            writes.flush()
    assert rows(engine, outbox) == {}


def test_an_unroutable_row_stays_unsent_then_is_sent_once_a_queue_is_bound(
    outbox_db, relay_factory, declare_queue, rabbitmq_url
):
    engine, outbox = outbox_db
    type_ = register_test_type()
    [event] = emit(engine, outbox, type_, 1)
    relay = relay_factory()
    assert relay.publish_pending() == 0
    row = rows(engine, outbox)[event.id]
    assert row.sent_at is None and row.attempts == 1
    assert row.last_error.startswith("unroutable") and type_ in row.last_error
    assert row.next_attempt_at > utcnow()
    first_due = row.next_attempt_at

    assert relay.publish_pending() == 0  # not due yet: not tried again
    assert rows(engine, outbox)[event.id].attempts == 1

    queue = declare_queue([type_])
    wait_until(
        lambda: relay.publish_pending() == 1, timeout=5, message="the row to be published once due"
    )
    row = rows(engine, outbox)[event.id]
    assert row.sent_at is not None and row.sent_at >= first_due
    assert row.attempts == 1 and row.last_error.startswith("unroutable")  # history kept
    assert [m.properties["message_id"] for m in get_all(rabbitmq_url, queue)] == [event.id]


def test_a_nacked_row_stays_unsent(outbox_db, relay_factory, declare_queue):
    engine, outbox = outbox_db
    type_ = register_test_type()
    declare_queue([type_], arguments={"x-max-length": 0, "x-overflow": "reject-publish"})
    [event] = emit(engine, outbox, type_, 1)
    assert relay_factory().publish_pending() == 0
    row = rows(engine, outbox)[event.id]
    assert row.sent_at is None and row.attempts == 1 and row.last_error == "nacked by the broker"


def test_rows_are_marked_sent_only_after_the_broker_confirmed(
    outbox_db, relay_factory, declare_queue
):
    engine, outbox = outbox_db
    routed, lost = register_test_type(), register_test_type()
    declare_queue([routed])
    seen_during_publish = []

    class Watching(Publisher):
        def publish_batch(self, messages):
            result = super().publish_batch(messages)
            # The confirms are in; the rows are still unsent to everyone else until the relay
            # commits.
            seen_during_publish.extend(r.sent_at for r in rows(engine, outbox).values())
            return result

    good = emit(engine, outbox, routed, 3)
    bad = emit(engine, outbox, lost, 2, start=3)
    assert relay_factory(Watching).publish_pending() == 3
    assert seen_during_publish == [None] * 5
    after = rows(engine, outbox)
    assert all(after[e.id].sent_at is not None for e in good)
    assert all(after[e.id].sent_at is None and after[e.id].attempts == 1 for e in bad)


@pytest.mark.parametrize(
    "failure", [PublishError("no confirm within 10s"), ConnectionResetError("broker gone")]
)
def test_nothing_is_marked_sent_when_publishing_fails(
    outbox_db, relay_factory, declare_queue, failure
):
    engine, outbox = outbox_db
    type_ = register_test_type()
    declare_queue([type_])

    class Failing(Publisher):
        def publish_batch(self, messages):
            super().publish_batch(messages[:1])  # the broker even got one of them
            raise failure

    emit(engine, outbox, type_, 3)
    with pytest.raises(type(failure)):
        relay_factory(Failing).publish_pending()
    assert all(r.sent_at is None and r.attempts == 0 for r in rows(engine, outbox).values())
    assert relay_factory().publish_pending() == 3  # published again by the next pass


def test_two_relays_at_once_publish_each_row_once(
    outbox_db, relay_factory, declare_queue, rabbitmq_url
):
    engine, outbox = outbox_db
    type_ = register_test_type()
    queue = declare_queue([type_])
    events = emit(engine, outbox, type_, 200)
    both_holding_a_batch = threading.Barrier(2, timeout=5)
    first_batches: list[set] = []

    class MeetingFirst(Publisher):
        """Each relay's first batch waits, rows locked, until the other relay holds a batch too."""

        met = False

        def publish_batch(self, messages):
            if not self.met:
                self.met = True
                first_batches.append({m.message_id for m in messages})
                both_holding_a_batch.wait()
            return super().publish_batch(messages)

    relays = [relay_factory(MeetingFirst, batch_size=25) for _ in range(2)]
    published = [0, 0]
    errors = []

    def drain(i):
        try:
            while n := relays[i].publish_pending():
                published[i] += n
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=drain, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert not errors, errors
    assert len(first_batches) == 2 and not first_batches[0] & first_batches[1], (
        "SKIP LOCKED: disjoint batches"
    )
    assert published[0] > 0 and published[1] > 0 and sum(published) == 200
    assert all(r.sent_at is not None for r in rows(engine, outbox).values())
    assert queue_count(rabbitmq_url, queue) == 200
    deliveries = Counter(m.properties["message_id"] for m in get_all(rabbitmq_url, queue))
    assert set(deliveries) == {e.id for e in events} and set(deliveries.values()) == {1}


def test_two_running_relays_publish_rows_written_meanwhile_once(
    outbox_db, relay_factory, declare_queue, rabbitmq_url
):
    engine, outbox = outbox_db
    type_ = register_test_type()
    queue = declare_queue([type_])
    stop = threading.Event()
    threads = [
        threading.Thread(target=relay_factory(batch_size=20, poll_seconds=0.2).run, args=(stop,))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    try:
        events = []
        for i in range(10):  # ten transactions while both relays run; NOTIFY wakes them
            events += emit(engine, outbox, type_, 30, start=i * 30)
        wait_until(
            lambda: queue_count(rabbitmq_url, queue) >= 300, timeout=8, message="300 messages"
        )
        wait_until(
            lambda: all(r.sent_at is not None for r in rows(engine, outbox).values()),
            timeout=5,
            message="every row marked sent",
        )
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
    deliveries = Counter(m.properties["message_id"] for m in get_all(rabbitmq_url, queue))
    assert set(deliveries) == {e.id for e in events} and set(deliveries.values()) == {1}


def test_sent_rows_are_purged_after_their_retention_and_unsent_ones_never(settings_factory):
    """Sent rows (and the personal data in them) leave the outbox after OUTBOX_RETENTION_SECONDS."""
    import uuid as _uuid
    from datetime import timedelta as _td

    from sharedkit import add_to_outbox
    from sqlalchemy import MetaData, select, update

    from coc_shared.bus import Broker, Publisher
    from coc_shared.db import ensure_schema, make_engine
    from coc_shared.envelope import Event, utcnow
    from coc_shared.outbox import OutboxRelay
    from coc_shared.tables import messaging_tables

    settings = settings_factory("orders")
    schema = "purge_" + _uuid.uuid4().hex[:8]
    engine = make_engine(settings.database_url)
    ensure_schema(engine, schema)
    outbox, inbox = messaging_tables(MetaData(), schema)
    outbox.metadata.create_all(engine)
    events = [
        Event(
            type="payment.failed",
            producer="payments",
            correlation_id="c",
            subject="o",
            data={"order_id": "o", "method": "card", "provider": "systempay", "reason": "REFUSED"},
        )
        for _ in range(3)
    ]
    with engine.begin() as conn:
        add_to_outbox(conn, outbox, events)
        conn.execute(
            update(outbox)
            .where(outbox.c.event_id == events[0].id)
            .values(sent_at=utcnow() - _td(hours=2))
        )
        conn.execute(
            update(outbox).where(outbox.c.event_id == events[1].id).values(sent_at=utcnow())
        )
    relay = OutboxRelay(
        engine,
        outbox,
        Publisher(Broker(settings.rabbitmq_url, settings.bus_prefix)),
        retention_seconds=3600,
    )
    assert relay.purge_sent() == 1
    with engine.connect() as conn:
        left = set(conn.execute(select(outbox.c.event_id)).scalars())
    assert left == {events[1].id, events[2].id}
