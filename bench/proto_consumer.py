"""Prototype of a faster EventConsumer, measured by bench_pipeline.py (``--proto``); shared/ is untouched.

It keeps the guarantees of coc_shared.consumer (effects, inbox rows and emitted events commit in one
transaction; ack only after the commit; duplicates dropped through the inbox; a failing handler is
retried in its own savepoint and then delayed or parked) and changes only the happy path:

1. no SAVEPOINT per message: the batch's handlers run straight in the transaction; if any of them
   raises, the whole transaction is rolled back and the batch is re-run on the original per-message
   savepoint path (EventConsumer's code), which retries, delays or parks the failing message;
2. the inbox is claimed first, for the whole batch, by one statement
   ``INSERT INTO inbox ... VALUES (...), (...) ON CONFLICT DO NOTHING RETURNING event_id``: the ids it
   returns are new (their handlers run), the others are duplicates. It replaces the inbox SELECT and
   the per-message inbox INSERT, and a concurrent delivery of the same event waits on the row lock and
   then sees a duplicate, instead of failing on the primary key;
3. the events the batch emits go to the outbox through one ``add_to_outbox`` call: one INSERT and one
   ``pg_notify`` per batch instead of one of each per message;
4. one ``basic.ack`` with ``multiple`` per batch instead of one ack frame per message;
5. an engine without ``pool_pre_ping`` (``make_engine`` pings on every checkout, one more round trip per
   batch; the consumer already retries a batch whose connection turns out dead).

Per message this leaves the handler's own statement(s); per batch: the inbox claim, one outbox INSERT,
one pg_notify and the COMMIT. SQL statements per message in the bench: 6 -> ~1.04 (batches of 100),
9 -> 4 with batches of one message (the steady 200/s of the latency run).
"""
from __future__ import annotations

from sqlalchemy import create_engine
from sqlalchemy.dialects.postgresql import insert as pg_insert

from coc_shared.consumer import EventConsumer, HandlerContext
from coc_shared.db import is_infrastructure_error, normalise_url
from coc_shared.envelope import utcnow
from coc_shared.logging import bound_context, get_logger
from coc_shared.outbox import add_to_outbox

log = get_logger("coc_shared.consumer")


def make_proto_engine(url: str):
    """make_engine's PostgreSQL engine, without the ping on every pool checkout."""
    return create_engine(normalise_url(url), pool_pre_ping=False, pool_size=5, max_overflow=10)


class ProtoConsumer(EventConsumer):
    def _handle_in_transaction(self, batch) -> None:
        todo = [i for i in batch if i.outcome == "pending"]
        if not todo:
            return
        try:
            self._handle_batch_at_once(todo)
        except Exception as exc:  # noqa: BLE001
            if is_infrastructure_error(exc):
                raise
            # Nothing of the optimistic attempt was committed; outcomes are still "pending".
            log.info("consumer.batch_fallback", size=len(todo), error_type=type(exc).__name__)
            EventConsumer._handle_in_transaction(self, batch)

    def _handle_batch_at_once(self, todo) -> None:
        inbox = self.inbox
        done, duplicates, emitted = [], [], []
        first: dict[str, object] = {}
        for item in todo:  # the same event twice in one batch: the later copies are duplicates
            if item.event.id in first:
                duplicates.append(item)
            else:
                first[item.event.id] = item
        with self.engine.begin() as conn:
            now = utcnow()
            claim = pg_insert(inbox).values([
                {"queue": self.queue_name, "event_id": i.event.id, "event_type": i.event.type, "handled_at": now}
                for i in first.values()]).on_conflict_do_nothing().returning(inbox.c.event_id)
            new = set(conn.execute(claim).scalars())
            for event_id, item in first.items():
                if event_id not in new:
                    duplicates.append(item)
                    continue
                event = item.event
                ctx = HandlerContext(conn, event, self.service)
                with bound_context(event_id=event.id, correlation_id=event.correlation_id, order_id=item.order_id):
                    self.handlers[event.type](event, ctx)
                emitted.extend(ctx.emitted)
                done.append((item, ctx))
            add_to_outbox(conn, self.outbox, emitted)
        # committed: only now do the outcomes change (a rollback above leaves them "pending")
        for item in duplicates:
            item.outcome = "duplicate"
        for item, ctx in done:
            item.outcome = "done"
            with bound_context(event_id=item.event.id, correlation_id=item.event.correlation_id,
                               order_id=item.order_id):
                log.info("event.handled", event_type=item.event.type, attempt=item.attempts_before + 1,
                         emitted=[e.type for e in ctx.emitted] or None)

    def _settle(self, batch, retry_publisher, stop) -> None:
        if batch and all(i.outcome in ("done", "duplicate") for i in batch):
            last = max(batch, key=lambda i: i.message.delivery_tag)
            # 'multiple' acks every earlier tag of the channel: only when no earlier message waits in the buffer
            if not any(b.message.delivery_tag < last.message.delivery_tag for b in self._buffer):
                for item in batch:
                    if item.outcome == "duplicate" and item.event is not None:
                        log.info("event.duplicate_ignored", event_id=item.event.id, event_type=item.event.type)
                last.message.ack(multiple=True)
                return
        super()._settle(batch, retry_publisher, stop)
