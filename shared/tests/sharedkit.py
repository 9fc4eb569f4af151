"""Helpers of the shared library's tests (imported by the tests; fixtures are in conftest.py):
test-only event types, a small service run in-process (its consumer in a thread, against the real
broker and database), and broker utilities.

Test-only event types are produced by ``probe``, so the catalogue document leaves them out.
Every test gets its own service name, queue and event type, so tests never see each other's
messages; queue names carry this run's ``BUS_PREFIX`` and are deleted at the end of the run.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field

import kombu
from marshmallow import fields
from sqlalchemy import Table, func, insert, select, text

from coc_shared.bus import OutgoingMessage, Publisher
from coc_shared.catalogue import EventType, TolerantSchema, register
from coc_shared.consumer import PermanentError
from coc_shared.envelope import Event
from coc_shared.migrate import upgrade
from coc_shared.service import OPS_MIGRATIONS, Runtime
from coc_shared.tables import OPS_SCHEMA, parked_messages
from coc_shared.testing import wait_until

TEST_PRODUCER = "probe"  # test-only types: left out of docs/events.md


class ItemV1(TolerantSchema):
    n = fields.Integer(required=True)
    mode = fields.String(
        load_default="ok"
    )  # ok | permanent | fail | until_fixed | bad_sql | partial | emit
    order_id = fields.String(load_default=None, allow_none=True)


def unique_suffix() -> str:
    """Letters only: event types must match ^[a-z_]+(\\.[a-z_]+)+$."""
    return uuid.uuid4().hex[:12].translate(str.maketrans("0123456789", "ghijklmnop"))


def register_test_type(name: str | None = None) -> str:
    type_ = name or f"probe.t_{unique_suffix()}"
    register(
        EventType(type_, 1, TEST_PRODUCER, ("probe",), ItemV1, None, "Test-only event.", {"n": 1})
    )
    return type_


def add_to_outbox(conn, outbox: Table, events: list[Event]) -> None:
    """Write events built beforehand (known ids) to an outbox, validated as ``emit`` does."""
    from coc_shared.catalogue import validate_event
    from coc_shared.outbox import outbox_row

    rows = [outbox_row(validate_event(e)) for e in events]
    if rows:
        conn.execute(insert(outbox), rows)


def item_event(type_: str, n: int, **data) -> Event:
    return Event(
        type=type_,
        data={"n": n, **data},
        producer=TEST_PRODUCER,
        correlation_id=str(uuid.uuid4()),
        subject=data.get("order_id"),
    )


def queue_count(rabbitmq_url: str, name: str) -> int:
    with kombu.Connection(rabbitmq_url) as conn:
        return conn.default_channel.queue_declare(name, passive=True).message_count


def get_all(rabbitmq_url: str, name: str) -> list:
    """Take every message waiting in a queue (acked); returns the amqp messages."""
    out = []
    with kombu.Connection(rabbitmq_url) as conn:
        channel = conn.channel()
        while True:
            message = channel.basic_get(name, no_ack=True)
            if message is None:
                return out
            out.append(message)


# A small service run in-process ----------------------------------------------------------------


@dataclass
class InProcessService:
    runtime: Runtime
    type: str
    effects: Table
    calls: list = field(default_factory=list)  # event ids, one per handler call
    fixed: bool = False  # "until_fixed" items fail permanently until this is set
    # (event id, its inbox row visible then) per function a handler registered with after_commit
    after_commit: list = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self.runtime.definition.name

    @property
    def queue(self) -> str:
        return self.runtime.broker.queue_name(self.name)

    def start(self) -> None:
        consumer = self.runtime.make_consumer()
        self.thread = threading.Thread(
            target=consumer.run, args=(self.stop,), name=f"{self.name}-consumer", daemon=True
        )
        self.thread.start()
        wait_until(consumer.ready.is_set, timeout=10, message="consumer connected")

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=10)
        self.runtime.engine.dispose()

    def effects_of(self, event_id: str | None = None) -> int:
        with self.runtime.engine.connect() as conn:
            q = select(func.count()).select_from(self.effects)
            if event_id is not None:
                q = q.where(self.effects.c.event_id == event_id)
            return conn.execute(q).scalar_one()

    def parked(self) -> list[dict]:
        with self.runtime.parking_engine.connect() as conn:
            rows = conn.execute(
                select(parked_messages)
                .where(parked_messages.c.service == self.name)
                .order_by(parked_messages.c.id)
            ).all()
        return [dict(r._mapping) for r in rows]

    def outbox_rows(self) -> list:
        outbox = self.runtime.outbox
        with self.runtime.engine.connect() as conn:
            return conn.execute(select(outbox).order_by(outbox.c.seq)).all()

    def inbox_ids(self) -> set[str]:
        with self.runtime.engine.connect() as conn:
            return set(conn.execute(select(self.runtime.inbox.c.event_id)).scalars())


def _item_handler(service: InProcessService):
    def on_item(event, ctx):
        service.calls.append(event.id)
        mode = event.data.get("mode", "ok")
        if mode == "permanent" or (mode == "until_fixed" and not service.fixed):
            raise PermanentError(f"item {event.data['n']} can never be handled")
        if mode == "fail":
            raise RuntimeError(f"planned failure of item {event.data['n']}")
        if mode == "bad_sql":  # a database error of the handler's own making (not an outage)
            ctx.execute(text("SELECT no_such_column FROM no_such_table"))
        ctx.add(service.effects, {"event_id": event.id, "n": event.data["n"]})
        ctx.after_commit(
            lambda: service.after_commit.append((event.id, event.id in service.inbox_ids()))
        )
        if mode in ("emit", "partial"):
            ctx.emit(event.type, {"n": event.data["n"] + 1000})
        if mode == "partial":  # effects and emitted events written, then a failure: all rolled back
            ctx.flush()
            raise PermanentError(f"item {event.data['n']} failed half-way")

    return on_item


def migrate_ops(engine) -> None:
    upgrade(engine, OPS_MIGRATIONS, OPS_SCHEMA)


def publish_event(
    publisher: Publisher, event: Event, to_queue: str | None = None, headers: dict | None = None
):
    publisher.publish_one(
        OutgoingMessage(
            message_id=event.id,
            body=event.to_json(),
            routing_key=to_queue or event.type,
            to_queue=to_queue is not None,
            event_type=event.type,
            correlation_id=event.correlation_id,
            headers=headers or {},
        )
    )


def publish_raw(
    rabbitmq_url: str, queue: str, body: bytes, headers: dict | None = None, **properties
) -> None:
    """Publish raw bytes straight to a queue (through the default exchange), as a foreign producer
    might."""
    with kombu.Connection(rabbitmq_url) as conn:
        producer = conn.Producer()
        producer.publish(
            body,
            exchange="",
            routing_key=queue,
            serializer=None,
            content_type="application/octet-stream",
            content_encoding="binary",
            headers=headers or {},
            delivery_mode=2,
            **properties,
        )


def body_bytes(message) -> bytes:
    """py-amqp hands a utf-8 body over as text; compare bodies as bytes."""
    body = message.body
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)
