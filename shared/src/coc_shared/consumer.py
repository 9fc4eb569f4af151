"""Idempotent event consumer with retries and parking.

One consumer process takes messages from its service's quorum queue in batches (prefetch) and
handles a batch in one database transaction (group commit), each message in its own savepoint:

* the handler's effects, the events it emits (outbox) and the inbox row recording that the
  event id was handled commit together, and the message is acked only after that commit; a
  redelivered or duplicated event finds its inbox row and has no second effect;
* a failing handler is retried at once a few times (``RETRY_QUICK_ATTEMPTS``, short backoff), then
  redelivered later through a delay queue (``RETRY_DELAYS``) so it does not block the queue,
  counting attempts in our own ``x-coc-attempts`` header; then it is parked;
* errors that cannot succeed (undecodable body, unknown type, schema violation, ``PermanentError``)
  are parked at once;
* messages the broker dead-lettered past ``x-delivery-limit`` (a consumer crashing on them again and
  again) arrive on the ``.dead`` queue and are parked;
* when the database is unreachable nothing is acked: the batch waits and is tried again.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

import kombu
from sqlalchemy import Engine, Table, select
from sqlalchemy.exc import IntegrityError

from . import metrics, tracing
from .broker_users import SUPPORT, broker_user
from .bus import (
    HEADER_ATTEMPTS,
    HEADER_FIRST_FAILURE,
    HEADER_LAST_ERROR,
    HEADER_REPLAY_RUN,
    HEADER_REPLAYED_FROM,
    Broker,
    OutgoingMessage,
    Publisher,
    wait_for_connection,
)
from .catalogue import SchemaViolation, UnknownEventType, lookup, validate_event
from .db import insert_ignoring_conflicts, is_infrastructure_error
from .envelope import Event, UndecodableMessage, utcnow
from .errors import PermanentError
from .keystore import SealBroken, is_erased_marker, open_event
from .logging import bound_log_fields, get_logger
from .parking import ParkingStore
from .retry import Stopped, call_with_backoff
from .unit_of_work import Bound, StatementCache, run_after_commit

log = get_logger(__name__)

HEADER_DELAYED = "x-coc-delayed"
__all__ = [
    "EventConsumer",
    "Handler",
    "HandlerContext",
    "PermanentError",
    "DeliveryLimitExceeded",
    "ForgedEvent",
]

PERMANENT_ERRORS = (
    PermanentError,
    UndecodableMessage,
    SchemaViolation,
    UnknownEventType,
    SealBroken,
)


class _HandlerFailed(Exception):
    """A handler raised during the batch fast path (which is then rolled back)."""

    def __init__(self, item, error: BaseException):
        super().__init__(str(error))
        self.item = item
        self.error = error


class DeliveryLimitExceeded(Exception):
    """The broker dead-lettered the message after too many deliveries without an ack."""


class ForgedEvent(PermanentError):
    """The event was not published by the service the catalogue names as its producer (its
    ``user_id``, which RabbitMQ validates, is another broker user): never applied."""


class HandlerContext(Bound):
    """What a handler gets besides the event: the unit-of-work API (``execute``, ``add``,
    ``change``, ``remove``, ``emit``) on the consumer's transaction, which flushes it after the
    handler. Events it emits belong to the event's story (its correlation id) and name it as
    their cause; their subject defaults to the event's. What is not in the database goes through
    ``after_commit``: the consumer runs it once the transaction committed; ``dry_run`` (a support
    replay's rehearsal, rolled back) drops it."""

    def __init__(
        self,
        conn,
        event: Event,
        producer: str,
        outbox: Table,
        statements: StatementCache | None = None,
        keys=None,
        dry_run: bool = False,
    ):
        super().__init__(
            conn,
            outbox,
            producer,
            correlation_id=event.correlation_id,
            causation_id=event.id,
            subject=event.subject,
            statements=statements,
            keys=keys,
        )
        self.event = event
        self.dry_run = dry_run

    @property
    def emitted(self) -> list[Event]:
        return self.events


Handler = Callable[[Event, HandlerContext], None]


@dataclass
class _Item:
    message: kombu.Message
    from_dead_queue: bool
    event: Event | None = None
    outcome: str = "pending"  # done | duplicate | retry | park
    error: BaseException | None = None
    trace: str | None = None
    attempts_before: int = 0
    attempts_now: int = 0
    first_failed_at: datetime | None = None
    quick_used: int = 0  # attempts of this delivery already spent (the batch fast path's failure)
    extra: dict = field(default_factory=dict)

    @property
    def headers(self) -> dict:
        return self.message.headers or {}

    @property
    def order_id(self) -> str | None:
        if self.event is None:
            return None
        return (
            self.event.data.get("order_id")
            if isinstance(self.event.data, dict) and self.event.data.get("order_id")
            else self.event.subject
        )


class EventConsumer:
    def __init__(
        self,
        *,
        service: str,
        engine: Engine,
        inbox: Table,
        outbox: Table,
        broker: Broker,
        handlers: dict[str, Handler],
        parking: ParkingStore,
        prefetch: int = 200,
        batch_size: int = 100,
        quick_attempts: int = 3,
        retry_delays: tuple[float, ...] = (5, 30, 120, 600),
        statements: StatementCache | None = None,
        verify_publishers: bool = False,
        keys=None,
    ):
        self.service = service
        self.engine = engine
        self.inbox = inbox
        self.outbox = outbox
        self.broker = broker
        self.handlers = handlers
        self.parking = parking
        self.prefetch = prefetch
        self.batch_size = batch_size
        self.quick_attempts = max(1, quick_attempts)
        self.retry_delays = tuple(retry_delays)
        self.verify_publishers = verify_publishers and not broker.memory
        self.keys = keys  # keystore.KeyStore: opens the sealed personal parts; None: not sealed
        self.forged = 0  # forged events refused since the start
        self.statements = statements or StatementCache()
        self.queue_name = broker.queue_name(service)
        self.dead_queue_name = broker.dead_queue_name(self.queue_name)
        self._buffer: list[_Item] = []
        self._timers: list[threading.Timer] = []
        self.ready = threading.Event()

    def declare(self, channel) -> None:
        self.broker.declare_service(channel, self.service, list(self.handlers), self.retry_delays)

    # main loop
    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; reconnects with the common backoff (unacked messages
        come back from the broker)."""

        def on_retry(exc: BaseException, wait: float) -> None:
            self.ready.clear()
            log.warning(
                "consumer.connection_lost",
                error_type=type(exc).__name__,
                error=str(exc),
                retry_in=wait,
            )

        try:
            call_with_backoff(lambda: self._consume(stop), stop=stop, on_retry=on_retry)
        except Stopped:
            pass
        self.ready.clear()
        for timer in self._timers:
            timer.cancel()

    def _consume(self, stop: threading.Event) -> None:
        """One connection's life: consume until ``stop`` is set (returns) or the connection breaks
        (raises)."""
        conn = None
        retry_publisher = Publisher(self.broker, stop=stop)
        try:
            conn = wait_for_connection(self.broker, stop, what="consumer")
            channel = conn.channel()
            self.declare(channel)
            queue = self.broker.service_queue(self.service, list(self.handlers))
            dead = self.broker.dead_queue(self.queue_name)
            consumer = kombu.Consumer(
                channel,
                queues=[queue],
                on_message=self._on_message,
                prefetch_count=self.prefetch,
                accept=None,
                no_ack=False,
            )
            dead_consumer = kombu.Consumer(
                channel, queues=[dead], on_message=self._on_dead_message, accept=None, no_ack=False
            )
            consumer.consume()
            dead_consumer.consume()
            self.ready.set()
            log.info("consumer.started", queue=self.queue_name, types=sorted(self.handlers))
            while not stop.is_set():
                self._collect(conn)
                if self._buffer:
                    batch, self._buffer = self._buffer, []
                    self._process(batch, retry_publisher, stop)
                else:
                    conn.heartbeat_check()
        except Stopped:
            return
        except Exception:
            if stop.is_set():
                return
            raise
        finally:
            self._buffer = []
            retry_publisher.close()
            if conn is not None:
                try:
                    conn.release()
                except Exception:
                    pass

    def _on_message(self, message: kombu.Message) -> None:
        self._buffer.append(_Item(message=message, from_dead_queue=False))

    def _on_dead_message(self, message: kombu.Message) -> None:
        self._buffer.append(_Item(message=message, from_dead_queue=True))

    def _collect(self, conn) -> None:
        """Wait up to 0.5 s for a first message, then take what is already there, up to a batch."""
        try:
            conn.drain_events(timeout=0.5)
        except TimeoutError:
            return
        while len(self._buffer) < self.batch_size:
            try:
                conn.drain_events(timeout=0)
            except (TimeoutError, BlockingIOError):
                return

    # batch handling
    def _process(
        self, batch: list[_Item], retry_publisher: Publisher, stop: threading.Event
    ) -> None:
        for item in batch:
            self._decode(item)
        try:
            call_with_backoff(
                lambda: self._unseal(batch),
                stop=stop,
                retry_if=is_infrastructure_error,
                on_retry=lambda exc, wait: log.warning(
                    "consumer.key_store_unavailable", error=str(exc).splitlines()[0], retry_in=wait
                ),
            )
        except Stopped:
            return  # not acked: the broker redelivers

        def on_retry(exc: BaseException, wait: float) -> None:
            log.warning(
                "consumer.database_unavailable", error=str(exc).splitlines()[0], retry_in=wait
            )
            for item in batch:
                if item.outcome in ("done", "duplicate", "retry"):
                    item.outcome = "pending"

        try:
            call_with_backoff(
                lambda: self._handle_in_transaction(batch),
                stop=stop,
                retry_if=is_infrastructure_error,
                on_retry=on_retry,
            )
        except Stopped:
            return  # not acked: the broker redelivers
        self._settle(batch, retry_publisher, stop)

    def _decode(self, item: _Item) -> None:
        headers = item.headers
        item.attempts_before = int(headers.get(HEADER_ATTEMPTS, 0) or 0)
        first = headers.get(HEADER_FIRST_FAILURE)
        item.first_failed_at = datetime.fromisoformat(first) if isinstance(first, str) else None
        try:
            body = item.message.body
            item.event = Event.from_json(body)
            self._check_publisher(item)
            if item.from_dead_queue:
                raise DeliveryLimitExceeded(
                    f"delivered more than {self.broker.delivery_limit} times without an ack "
                    "(x-delivery-limit)"
                )
            if item.event.type not in self.handlers:
                raise UnknownEventType(f"{self.service} has no handler for {item.event.type!r}")
        except Exception as exc:
            self._fail(item, exc, permanent=True)

    def _unseal(self, batch: list[_Item]) -> None:
        """Open the batch's sealed personal parts (one look-up of the keys not cached), then
        validate: an erased subject's event goes on without its personal part
        (``personal_erased``); a part that does not open is parked (``keystore.SealBroken``)."""
        items = [i for i in batch if i.outcome == "pending" and i.event is not None]
        sealed = [i for i in items if i.event.sealed is not None]
        if sealed:
            keys: dict = {}
            if self.keys is not None:
                try:
                    kids = {str(i.event.sealed.get("kid")) for i in sealed}
                    keys = self.keys.keys(kids)
                except SealBroken:
                    keys = None  # one key does not unwrap: each message is opened on its own
            for item in sealed:
                try:
                    if self.keys is None and not is_erased_marker(item.event.sealed):
                        raise SealBroken("sealed personal part, and no PERSONAL_DATA_KEK here")
                    if keys is None:
                        self.keys.unseal_event(item.event)
                    else:
                        open_event(item.event, keys)
                except Exception as exc:
                    if is_infrastructure_error(exc):
                        raise
                    self._fail(item, exc, permanent=True)
        for item in items:
            if item.outcome != "pending":
                continue
            try:
                validate_event(item.event)
            except Exception as exc:
                self._fail(item, exc, permanent=True)

    def _check_publisher(self, item: _Item) -> None:
        """Only the event type's producer (or this service itself: its own delayed retries) may
        have published it; a support replay is accepted when it is exactly a message parked from
        this queue that its producer had published. Anything else is a ``ForgedEvent``."""
        if not self.verify_publishers:
            return
        event = item.event
        try:
            producer = lookup(event.type, event.version).producer
        except UnknownEventType:
            return  # parked for that below
        prefix = self.broker.prefix
        allowed = {broker_user(prefix, producer), broker_user(prefix, self.service)}
        user = item.message.properties.get("user_id")
        if user in allowed:
            return
        if user == broker_user(prefix, SUPPORT) and self._replays_a_parked_message(item, allowed):
            return
        self.forged += 1
        log.error(
            "event.forged",
            event_id=event.id,
            event_type=event.type,
            published_by=user,
            producer=producer,
            queue=self.queue_name,
            forged_so_far=self.forged,
        )
        raise ForgedEvent(
            f"{event.type} was published by broker user {user!r}; only its producer "
            f"{broker_user(prefix, producer)!r} may publish it"
        )

    def _replays_a_parked_message(self, item: _Item, allowed: set[str]) -> bool:
        parked_id = item.headers.get(HEADER_REPLAYED_FROM)
        try:
            row = self.parking.get(int(parked_id))
        except (TypeError, ValueError):
            return False
        return (
            row is not None
            and row["queue"] == self.queue_name
            and bytes(row["body"]) == _body_bytes(item.message)
            and row["status"] in ("parked", "replayed")
            and row["error_type"] != ForgedEvent.__name__
            and (row["properties"] or {}).get("user_id") in allowed
        )

    def _fail(self, item: _Item, exc: BaseException, permanent: bool) -> None:
        now = utcnow()
        item.error = exc
        item.trace = "".join(traceback.format_exception(exc))
        item.attempts_now += 1
        item.first_failed_at = item.first_failed_at or now
        item.extra["last_failed_at"] = now
        if permanent or isinstance(exc, PERMANENT_ERRORS):
            item.outcome = "park"
        elif HEADER_REPLAY_RUN in item.headers:
            # a progressive replay waits for each message's outcome: after the quick attempts it
            # is parked again at once (its run stops there), not delayed for minutes
            quick = self._quick_attempts(item)
            item.outcome = "park" if item.attempts_now >= quick else "retry"
        elif int(item.headers.get(HEADER_DELAYED, 0) or 0) < len(self.retry_delays):
            item.outcome = "retry"
        else:
            item.outcome = "park"

    def _handle_in_transaction(self, batch: list[_Item]) -> None:
        to_handle = [i for i in batch if i.outcome == "pending"]
        if not to_handle:
            return
        try:
            self._handle_batch_at_once(to_handle)
            return
        except _HandlerFailed as failure:
            # Nothing of the batch was committed. The failure counts as the message's first attempt;
            # the batch is handled again message by message, each in its own savepoint.
            self._record_failure(
                failure.item, failure.error, attempt=1, quick=self._quick_attempts(failure.item)
            )
            failure.item.quick_used = 1
        except Exception as exc:
            if is_infrastructure_error(exc):
                raise
            log.info("consumer.batch_fallback", size=len(to_handle), error_type=type(exc).__name__)
        self._handle_one_by_one([i for i in to_handle if i.outcome in ("pending", "retry")])

    def _claim_inbox(self, conn, items: list[_Item]) -> set[str]:
        """Insert the inbox rows of the batch in one statement; returns the ids that were new."""
        now = utcnow()
        rows = [
            {
                "queue": self.queue_name,
                "event_id": i.event.id,
                "event_type": i.event.type,
                "handled_at": now,
                "correlation_id": i.event.correlation_id,
            }
            for i in items
        ]
        statement = insert_ignoring_conflicts(conn, self.inbox, rows).returning(
            self.inbox.c.event_id
        )
        return set(conn.execute(statement).scalars())

    def _handle_batch_at_once(self, to_handle: list[_Item]) -> None:
        """The common case, in few round trips: claim the inbox for the whole batch, run the
        handlers without savepoints, write all emitted events at once. Any handler error aborts the
        batch."""
        first: dict[str, _Item] = {}
        for item in to_handle:
            first.setdefault(item.event.id, item)
        outcomes: list[tuple[_Item, str, list[Event]]] = []
        after_commit: list = []
        with self.engine.begin() as conn:
            claimed = self._claim_inbox(conn, list(first.values()))
            for item in to_handle:
                if first[item.event.id] is not item or item.event.id not in claimed:
                    outcomes.append((item, "duplicate", []))
                    continue
                ctx = HandlerContext(
                    conn, item.event, self.service, self.outbox, self.statements, self.keys
                )
                try:
                    with self._in_story(item):
                        started = time.perf_counter()
                        self.handlers[item.event.type](item.event, ctx)
                        ctx.flush()
                        self._timed(item, started)
                except Exception as exc:
                    if is_infrastructure_error(exc):
                        raise
                    raise _HandlerFailed(item, exc) from exc
                outcomes.append((item, "done", ctx.emitted))
                after_commit += ctx.take_after_commit()
        run_after_commit(after_commit)
        for item, outcome, item_emitted in outcomes:  # committed: now the outcomes are true
            item.outcome = outcome
            if outcome == "done":
                with bound_log_fields(
                    event_id=item.event.id,
                    correlation_id=item.event.correlation_id,
                    order_id=item.order_id,
                ):
                    log.info(
                        "event.handled",
                        event_type=item.event.type,
                        attempt=item.attempts_before + item.attempts_now + 1,
                        emitted=[e.type for e in item_emitted] or None,
                    )

    @contextmanager
    def _in_story(self, item: _Item):
        """While a handler runs: its log lines carry the event's story, and its span (whose
        context the events it emits carry) is the child of the emitter's."""
        with (
            bound_log_fields(
                event_id=item.event.id,
                correlation_id=item.event.correlation_id,
                order_id=item.order_id,
            ),
            tracing.event_span(self.service, item.event, item.headers),
        ):
            yield

    def _handle_one_by_one(self, to_handle: list[_Item]) -> None:
        if not to_handle:
            return
        after_commit: list = []
        with self.engine.begin() as conn:
            ids = list({i.event.id for i in to_handle})
            seen = set(
                conn.execute(
                    select(self.inbox.c.event_id).where(
                        self.inbox.c.queue == self.queue_name, self.inbox.c.event_id.in_(ids)
                    )
                ).scalars()
            )
            for item in to_handle:
                if item.outcome == "park":
                    continue
                if item.event.id in seen:
                    item.outcome = "duplicate"
                    continue
                after_commit += self._handle_one(conn, item)
                if item.outcome == "done":
                    seen.add(item.event.id)
        run_after_commit(after_commit)

    def _quick_attempts(self, item: _Item) -> int:
        """Attempts within this delivery: a few on the first, one on each delayed redelivery."""
        return self.quick_attempts if int(item.headers.get(HEADER_DELAYED, 0) or 0) == 0 else 1

    def _label(self, item: _Item) -> str:
        """The event type as a metrics label: only the types this service handles (a forged or
        garbled message must not make up new label values)."""
        return (
            item.event.type
            if item.event is not None and item.event.type in self.handlers
            else "(other)"
        )

    def _timed(self, item: _Item, started: float) -> None:
        metrics.HANDLER_SECONDS.labels(self.service, self._label(item)).observe(
            time.perf_counter() - started
        )

    def _count(self, batch: list[_Item]) -> None:
        for item in batch:
            kind = self._label(item)
            metrics.EVENTS_CONSUMED.labels(self.service, kind).inc()
            if item.outcome == "done":
                metrics.EVENTS_HANDLED.labels(self.service, kind).inc()
            elif item.outcome == "duplicate":
                metrics.EVENTS_DUPLICATE.labels(self.service, kind).inc()
            elif item.outcome == "retry":
                metrics.EVENTS_RETRIED.labels(self.service, kind).inc()
            elif item.outcome == "park":
                metrics.EVENTS_PARKED.labels(self.service, kind, type(item.error).__name__).inc()
                if isinstance(item.error, ForgedEvent):
                    metrics.EVENTS_REFUSED.labels(self.service, kind).inc()

    def _record_failure(self, item: _Item, exc: BaseException, attempt: int, quick: int) -> None:
        metrics.EVENTS_FAILED.labels(self.service, self._label(item)).inc()
        self._fail(item, exc, permanent=isinstance(exc, PERMANENT_ERRORS))
        with bound_log_fields(
            event_id=item.event.id, correlation_id=item.event.correlation_id, order_id=item.order_id
        ):
            log.warning(
                "handler.failed",
                event_type=item.event.type,
                attempt=item.attempts_before + item.attempts_now,
                error_type=type(exc).__name__,
                error=str(exc)[:500],
                next=("retry_now" if item.outcome == "retry" and attempt < quick else item.outcome),
            )

    def _handle_one(self, conn, item: _Item) -> list:
        """Handle ``item`` in a savepoint (quick attempts); returns what its handler registered
        to run after the commit (nothing when it failed)."""
        event = item.event
        handler = self.handlers[event.type]
        quick = self._quick_attempts(item)
        with bound_log_fields(
            event_id=event.id, correlation_id=event.correlation_id, order_id=item.order_id
        ):
            for attempt in range(item.quick_used + 1, quick + 1):
                if attempt > 1:
                    time.sleep(min(0.05 * 2 ** (attempt - 2), 1.0))
                savepoint = conn.begin_nested()
                try:
                    ctx = HandlerContext(
                        conn, event, self.service, self.outbox, self.statements, self.keys
                    )
                    with tracing.event_span(self.service, event, item.headers):
                        started = time.perf_counter()
                        handler(event, ctx)
                        self._timed(item, started)
                        ctx.add(
                            self.inbox,
                            {
                                "queue": self.queue_name,
                                "event_id": event.id,
                                "event_type": event.type,
                                "handled_at": utcnow(),
                                "correlation_id": event.correlation_id,
                            },
                        )
                        ctx.flush()
                    savepoint.commit()
                    item.outcome = "done"
                    total = item.attempts_before + item.attempts_now + 1
                    log.info(
                        "event.handled",
                        event_type=event.type,
                        attempt=total,
                        emitted=[e.type for e in ctx.emitted] or None,
                    )
                    return ctx.take_after_commit()
                except Exception as exc:
                    if savepoint.is_active:
                        savepoint.rollback()
                    if is_infrastructure_error(exc):
                        raise
                    if isinstance(exc, IntegrityError) and self._already_handled(conn, event.id):
                        item.outcome = "duplicate"  # a concurrent delivery of the same event won
                        return []
                    self._record_failure(item, exc, attempt, quick)
                    if item.outcome == "park":
                        return []
        return []

    def _already_handled(self, conn, event_id: str) -> bool:
        return (
            conn.execute(
                select(self.inbox.c.event_id).where(
                    self.inbox.c.queue == self.queue_name, self.inbox.c.event_id == event_id
                )
            ).first()
            is not None
        )

    # acks, delayed retries, parking
    def _settle(
        self, batch: list[_Item], retry_publisher: Publisher, stop: threading.Event
    ) -> None:
        for item in batch:
            if item.outcome == "duplicate" and item.event is not None:
                log.info(
                    "event.duplicate_ignored", event_id=item.event.id, event_type=item.event.type
                )
            elif item.outcome == "retry":
                self._schedule_retry(item, retry_publisher)
            elif item.outcome == "park":
                self._park(item, stop)
        settled = [i for i in batch if i.outcome in ("done", "duplicate", "retry", "park")]
        self._count(settled)
        if not self.broker.memory and len(settled) == len(batch) == len(self._unacked_tags(batch)):
            # Every message delivered so far on this channel is settled: one ack covers them all.
            last = max(batch, key=lambda i: i.message.delivery_tag)
            last.message.ack(multiple=True)
            return
        for item in settled:
            item.message.ack()
        # "pending": left unacked (shutdown during a database outage): the broker redelivers

    @staticmethod
    def _unacked_tags(batch: list[_Item]) -> set:
        tags = sorted(i.message.delivery_tag for i in batch)
        # Tags are given in delivery order on the channel; a batch holds every message delivered
        # since the previous batch when they are consecutive.
        return set(tags) if tags and tags[-1] - tags[0] + 1 == len(tags) else set()

    def _schedule_retry(self, item: _Item, publisher: Publisher) -> None:
        delayed = int(item.headers.get(HEADER_DELAYED, 0) or 0)
        delay = self.retry_delays[delayed]
        headers = dict(item.headers)
        headers.update(
            {
                HEADER_ATTEMPTS: item.attempts_before + item.attempts_now,
                HEADER_DELAYED: delayed + 1,
                HEADER_FIRST_FAILURE: item.first_failed_at.isoformat(),
                HEADER_LAST_ERROR: f"{type(item.error).__name__}: {item.error}"[:500],
            }
        )
        headers.pop("x-death", None)
        props = item.message.properties
        message = OutgoingMessage(
            message_id=props.get("message_id") or item.event.id,
            body=item.message.body,
            routing_key=self.broker.retry_queue_name(self.queue_name, delay),
            to_queue=True,
            headers=headers,
            event_type=props.get("type"),
            correlation_id=props.get("correlation_id"),
        )
        if self.broker.memory:
            # The in-process transport has no TTL dead-lettering: a timer puts it back on the queue.
            message.routing_key = self.queue_name
            timer = threading.Timer(delay, lambda: Publisher(self.broker).publish_one(message))
            timer.daemon = True
            timer.start()
            self._timers.append(timer)
        else:
            publisher.publish_one(message)
        log.warning(
            "handler.retry_scheduled",
            event_id=item.event.id,
            event_type=item.event.type,
            attempt=headers[HEADER_ATTEMPTS],
            retry_in=delay,
            correlation_id=item.event.correlation_id,
            order_id=item.order_id,
        )

    def _park(self, item: _Item, stop: threading.Event) -> None:
        event, message = item.event, item.message
        error = item.error
        routing_key = message.delivery_info.get("routing_key") or ""
        if item.from_dead_queue or routing_key.startswith(self.queue_name):
            routing_key = (
                message.properties.get("type") or (event.type if event else "")
            ) or routing_key
        last = item.extra.get("last_failed_at") or utcnow()

        def park() -> int:
            return self.parking.park(
                service=self.service,
                queue=self.queue_name,
                routing_key=routing_key,
                body=_body_bytes(message),
                headers=dict(item.headers),
                properties=_properties(message),
                error_type=type(error).__name__,
                error_message=str(error),
                stack_trace=item.trace,
                attempts=item.attempts_before + item.attempts_now,
                first_failed_at=item.first_failed_at or last,
                last_failed_at=last,
                event_id=event.id if event else message.properties.get("message_id"),
                event_type=event.type if event else message.properties.get("type"),
                order_id=item.order_id,
                correlation_id=event.correlation_id
                if event
                else message.properties.get("correlation_id"),
            )

        parked_id = call_with_backoff(
            park,
            stop=stop,
            retry_if=is_infrastructure_error,
            on_retry=lambda exc, wait: log.warning(
                "parking.database_unavailable", error=str(exc).splitlines()[0], retry_in=wait
            ),
        )
        log.error(
            "message.parked",
            parked_id=parked_id,
            event_id=event.id if event else None,
            event_type=event.type if event else None,
            correlation_id=event.correlation_id if event else None,
            order_id=item.order_id,
            error_type=type(error).__name__,
            error=str(error)[:500],
            attempt=item.attempts_before + item.attempts_now,
            queue=self.queue_name,
        )


def _body_bytes(message: kombu.Message) -> bytes:
    body = message.body
    return body if isinstance(body, bytes) else str(body).encode()


def _properties(message: kombu.Message) -> dict:
    props = dict(message.properties or {})
    props.pop("delivery_info", None)
    props.pop("application_headers", None)
    return props
