"""Transactional outbox: events are rows written in the same transaction as the state change,
and a relay publishes them with publisher confirms, marking a row sent only once confirmed.

A crash anywhere loses nothing: before the commit there is neither state change nor event;
after it, the row stays unsent until the broker confirmed it, so it is published again after a
restart (consumers drop the duplicate through their inbox).
"""

from __future__ import annotations

import select
import threading
import time
from datetime import timedelta

from sqlalchemy import Engine, Table, and_, delete, or_, update
from sqlalchemy import select as sql_select

from .bus import OutgoingMessage, Publisher
from .envelope import Event, utcnow
from .logging import get_logger
from .retry import Stopped, call_with_backoff
from .tracing import HEADER

log = get_logger(__name__)


def notify_channel(schema: str) -> str:
    """The channel the outbox table's trigger NOTIFYs (``tables.outbox_notify_ddl``)."""
    return f"coc_outbox_{schema}"


def outbox_row(event: Event, now=None) -> dict:
    """The outbox row of an event (validated by whoever emitted it:
    ``unit_of_work.Writes.emit``)."""
    return {
        "event_id": event.id,
        "event_type": event.type,
        "correlation_id": event.correlation_id,
        "subject": event.subject,
        "body": event.to_json(),
        "created_at": now or utcnow(),
        "attempts": 0,
        "sent_at": None,
        "next_attempt_at": None,
        "last_error": None,
        "traceparent": event.traceparent,
    }


class OutboxRelay:
    PURGE_EVERY_SECONDS = 60.0

    def __init__(
        self,
        engine: Engine,
        outbox: Table,
        publisher: Publisher,
        batch_size: int = 500,
        poll_seconds: float = 1.0,
        retention_seconds: float = 3600.0,
    ):
        self.engine = engine
        self.outbox = outbox
        self.publisher = publisher
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.retention_seconds = retention_seconds
        self._next_purge = 0.0

    def purge_sent(self) -> int:
        """Delete rows sent more than ``retention_seconds`` ago: once the broker has an event, the
        outbox need not keep it, nor the personal data in it."""
        o = self.outbox
        cutoff = utcnow() - timedelta(seconds=self.retention_seconds)
        with self.engine.begin() as conn:
            deleted = conn.execute(
                delete(o).where(and_(o.c.sent_at.is_not(None), o.c.sent_at <= cutoff))
            ).rowcount
        if deleted:
            log.info("outbox.purged", count=deleted)
        return deleted

    def publish_pending(self) -> int:
        """Publish one batch of unsent rows; returns how many were confirmed."""
        o = self.outbox
        now = utcnow()
        with self.engine.begin() as conn:
            rows = conn.execute(
                sql_select(
                    o.c.seq,
                    o.c.event_id,
                    o.c.event_type,
                    o.c.correlation_id,
                    o.c.body,
                    o.c.attempts,
                    o.c.traceparent,
                )
                .where(
                    and_(
                        o.c.sent_at.is_(None),
                        or_(o.c.next_attempt_at.is_(None), o.c.next_attempt_at <= now),
                    )
                )
                .order_by(o.c.seq)
                .limit(self.batch_size)
                .with_for_update(skip_locked=True)
            ).all()
            if not rows:
                return 0
            messages = [
                OutgoingMessage(
                    message_id=r.event_id,
                    body=r.body,
                    routing_key=r.event_type,
                    event_type=r.event_type,
                    correlation_id=r.correlation_id,
                    headers={HEADER: r.traceparent} if r.traceparent else {},
                )
                for r in rows
            ]
            result = self.publisher.publish_batch(
                messages
            )  # raises on a broken connection: rows stay unsent
            if result.confirmed:
                conn.execute(
                    update(o).where(o.c.event_id.in_(result.confirmed)).values(sent_at=utcnow())
                )
            by_id = {r.event_id: r for r in rows}
            for event_id, reason in result.failed.items():
                row = by_id[event_id]
                backoff = min(2**row.attempts * 0.5, 60.0)
                log.error(
                    "outbox.publish_failed",
                    event_id=event_id,
                    event_type=row.event_type,
                    correlation_id=row.correlation_id,
                    error=reason,
                    attempt=row.attempts + 1,
                    retry_in=backoff,
                )
                conn.execute(
                    update(o)
                    .where(o.c.event_id == event_id)
                    .values(
                        attempts=o.c.attempts + 1,
                        last_error=reason[:2000],
                        next_attempt_at=utcnow() + timedelta(seconds=backoff),
                    )
                )
        if result.confirmed:
            log.debug("outbox.published", count=len(result.confirmed))
        return len(result.confirmed)

    def run(self, stop: threading.Event) -> None:
        """Publish until ``stop`` is set; survives broker and database restarts (common backoff)."""
        listener = _Listener(self.engine, notify_channel(self.outbox.schema))
        log.info("outbox.relay_started", schema=self.outbox.schema)

        def step() -> int:
            listener.ensure()
            published = self.publish_pending()
            if published == 0 and time.monotonic() >= self._next_purge:
                self.purge_sent()  # when idle, so that it never delays publishing
                self._next_purge = time.monotonic() + self.PURGE_EVERY_SECONDS
            return published

        def on_retry(exc: BaseException, wait: float) -> None:
            log.warning(
                "outbox.relay_error", error_type=type(exc).__name__, error=str(exc), retry_in=wait
            )
            listener.close()

        try:
            while not stop.is_set():
                published = call_with_backoff(step, stop=stop, on_retry=on_retry)
                if published < self.batch_size:
                    listener.wait(self.poll_seconds if published == 0 else 0.0, stop)
        except Stopped:
            pass
        finally:
            listener.close()
            self.publisher.close()


class _Listener:
    """LISTEN on the outbox's notify channel (PostgreSQL); a plain timed wait elsewhere."""

    def __init__(self, engine: Engine, channel: str):
        self.engine = engine
        self.channel = channel
        self.conn = None

    def ensure(self) -> None:
        if self.engine.dialect.name != "postgresql" or self.conn is not None:
            return
        import psycopg

        url = self.engine.url.set(drivername="postgresql")
        self.conn = psycopg.connect(
            url.render_as_string(hide_password=False), autocommit=True, connect_timeout=5
        )
        self.conn.execute(f'LISTEN "{self.channel}"')

    def wait(self, timeout: float, stop: threading.Event) -> None:
        if timeout <= 0:
            return
        if self.conn is None:
            stop.wait(timeout)
            return
        deadline = time.monotonic() + timeout
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            ready, _, _ = select.select([self.conn.fileno()], [], [], min(remaining, 0.5))
            if ready:
                # Drain every pending notification; one wake-up is enough.
                for _ in self.conn.notifies(timeout=0, stop_after=None):
                    pass
                return

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
            self.conn = None
