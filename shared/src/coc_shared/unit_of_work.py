"""The unit of work: one business operation, one database transaction.

A use case reads through the unit of work, decides in the domain, and *registers* what to write;
``commit()`` writes it all and commits::

    with runtime.unit_of_work(correlation_id=order.id) as uow:
        order = OrderRepository(uow).get(order_id, lock=True)     # reads run at once
        order.cancel(reason)                                      # the domain decides
        OrderRepository(uow).save_status(order)                   # registered, not written yet
        uow.emit("order.cancelled", {...}, subject=order.id)      # an outbox row, registered
        uow.commit()                                              # everything, in one transaction

What is registered (``add``, ``change``, ``remove``, ``emit``) is written at ``flush()`` (before
the next read, so that reads see it, and at ``commit()``). On PostgreSQL a flush is *one*
generated statement: every write but the last becomes a data-modifying CTE of the last one
(SQLAlchemy Core ``.cte()`` / ``add_cte`` on the ``Table`` objects, no SQL text); writes that could
not share a statement (two changes of one table, or a change after an insert into it) go into the
next one. On SQLite they run one by one. When nothing was read before the commit and the writes
fit one statement, that statement runs alone in autocommit: one round trip for the whole use case.

The outbox rows of emitted events are written with the rest; the migrations give every outbox
table a statement-level trigger that NOTIFYs the relay (``tables.outbox_notify_ddl``).

``reconnect=True``: when the first statement of the unit of work meets a connection that died in
the pool (PostgreSQL restarted), a new connection is taken and that statement runs again; before
the first statement nothing was done, so this is safe, and it spares a ping per checkout.

Handlers get the same API (``consumer.HandlerContext``): there the consumer owns the transaction
and flushes after each handler.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import Connection, Engine, Table, delete, insert, update
from sqlalchemy.exc import DBAPIError

from .catalogue import validate_event
from .envelope import Event, utcnow
from .logging import get_logger
from .outbox import outbox_row

log = get_logger(__name__)


@dataclass
class _Write:
    kind: str  # insert | update | delete
    table: Table
    rows: list[dict] | None = None  # insert
    values: dict | None = None  # update
    where: tuple = ()  # update, delete

    def statement(self):
        if self.kind == "insert":
            return insert(self.table).values(self.rows)
        if self.kind == "update":
            return update(self.table).where(*self.where).values(**self.values)
        return delete(self.table).where(*self.where)


def _statement_groups(writes: list[_Write]) -> list[list[_Write]]:
    """Writes in order, cut where one statement could not hold them: the sub-statements of one
    PostgreSQL statement all see the database as it was before it, so a change or removal of a
    table already written in the statement (or a write after one) starts the next."""
    groups: list[list[_Write]] = []
    current: list[_Write] = []
    written: dict[str, set[str]] = {}
    for write in writes:
        kinds = written.get(write.table.fullname, set())
        conflict = bool(kinds) and (write.kind != "insert" or kinds != {"insert"})
        if conflict:
            groups.append(current)
            current, written = [], {}
        current.append(write)
        written.setdefault(write.table.fullname, set()).add(write.kind)
    if current:
        groups.append(current)
    return groups


def _merge_inserts(writes: list[_Write]) -> list[_Write]:
    """Consecutive inserts into one table with the same columns become one multi-row insert."""
    merged: list[_Write] = []
    for write in writes:
        last = merged[-1] if merged else None
        if (write.kind == "insert" and last is not None and last.kind == "insert" and last.table is write.table
                and set(last.rows[0]) == set(write.rows[0])):
            last.rows = last.rows + write.rows
        else:
            merged.append(write if write.kind != "insert" else _Write("insert", write.table, list(write.rows)))
    return merged


class Writes:
    """Registering writes and events, and reading through one connection with autoflush: the
    part of a unit of work that handlers share (``consumer.HandlerContext``)."""

    def __init__(self, outbox: Table, producer: str, correlation_id: str | None = None,
                 causation_id: str | None = None, subject: str | None = None):
        self.outbox = outbox
        self.producer = producer
        self.correlation_id = correlation_id
        self.causation_id = causation_id
        self.default_subject = subject
        self.events: list[Event] = []  # every event emitted, flushed or not
        self._writes: list[_Write] = []
        self._unwritten_events: list[Event] = []

    # to be provided: the connection, and how a statement runs on it
    def _run(self, statement, parameters=None):
        raise NotImplementedError

    # reading, and statements whose answer is needed at once (claims, counters)
    def execute(self, statement, parameters: dict | None = None):
        """Run ``statement`` now, after writing what is registered (so that it sees it)."""
        self.flush()
        return self._run(statement, parameters)

    # registering
    def add(self, table: Table, rows: dict | Iterable[dict]) -> None:
        """Insert one row (a dict) or several (dicts with the same keys)."""
        rows = [rows] if isinstance(rows, dict) else list(rows)
        if rows:
            self._writes.append(_Write("insert", table, rows=rows))

    def change(self, table: Table, values: dict, *where) -> None:
        """Update the rows of ``table`` matching ``where`` (a WHERE clause is required)."""
        if not where:
            raise ValueError("change() needs a WHERE clause")
        self._writes.append(_Write("update", table, values=dict(values), where=where))

    def remove(self, table: Table, *where) -> None:
        if not where:
            raise ValueError("remove() needs a WHERE clause")
        self._writes.append(_Write("delete", table, where=where))

    def emit(self, type_: str, data: dict, *, subject: str | None = None, personal: dict | None = None,
             correlation_id: str | None = None, version: int = 1) -> Event:
        """Record an event to publish: validated now, written to the outbox with the other writes.
        ``correlation_id`` defaults to the unit's (the order's story), else the subject."""
        subject = subject if subject is not None else self.default_subject
        event = Event(type=type_, version=version, data=data, personal=personal, producer=self.producer,
                      correlation_id=correlation_id or self.correlation_id or subject or "",
                      causation_id=self.causation_id, subject=subject)
        if not event.correlation_id:
            event.correlation_id = event.id
        validate_event(event)
        self.events.append(event)
        self._unwritten_events.append(event)
        return event

    @property
    def pending(self) -> bool:
        return bool(self._writes or self._unwritten_events)

    def _take_writes(self) -> list[_Write]:
        writes = self._writes
        if self._unwritten_events:
            now = utcnow()
            writes = writes + [_Write("insert", self.outbox, rows=[outbox_row(e, now) for e in self._unwritten_events])]
        self._writes, self._unwritten_events = [], []
        return writes

    def _statements(self, writes: list[_Write], dialect: str) -> list:
        if dialect != "postgresql":
            return [w.statement() for w in writes]
        statements = []
        for group in _statement_groups(writes):
            group = _merge_inserts(group)
            *others, last = group
            statement = last.statement()
            if others:
                statement = statement.add_cte(*(w.statement().cte(f"w{i}") for i, w in enumerate(others)))
            statements.append(statement)
        return statements

    def flush(self) -> None:
        """Write what is registered (one statement per group on PostgreSQL)."""
        if not self.pending:
            return
        writes = self._take_writes()
        for statement in self._statements(writes, self._dialect()):
            self._run(statement)

    def _dialect(self) -> str:
        raise NotImplementedError


class UnitOfWork(Writes):
    """A transaction of its own on ``engine``: use as a context manager; ``commit()`` writes and
    commits, leaving the block without it rolls back."""

    def __init__(self, engine: Engine, outbox: Table, producer: str, *, correlation_id: str | None = None,
                 causation_id: str | None = None, reconnect: bool = False):
        super().__init__(outbox, producer, correlation_id, causation_id)
        self.engine = engine
        self.reconnect = reconnect
        self._conn: Connection | None = None
        self._statements_run = 0
        self.committed = False

    def __enter__(self) -> "UnitOfWork":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()

    @property
    def conn(self) -> Connection:
        """The transaction's connection (begun on first use), for a repository that must read
        through SQLAlchemy directly; prefer ``execute``, which flushes first."""
        if self._conn is None:
            self._conn = self.engine.connect()
            self._conn.begin()
        return self._conn

    def _dialect(self) -> str:
        return self.engine.dialect.name

    def _run(self, statement, parameters=None):
        try:
            result = self.conn.execute(statement, parameters)
        except DBAPIError as exc:
            if not (self.reconnect and self._statements_run == 0 and exc.connection_invalidated):
                raise
            log.warning("uow.connection_replaced", error_type=type(exc.orig).__name__)
            self._discard_connection()
            result = self.conn.execute(statement, parameters)
        self._statements_run += 1
        return result

    def commit(self) -> None:
        if self.committed:
            raise RuntimeError("this unit of work is committed already")
        if self._conn is None and self.pending:
            writes = self._take_writes()
            statements = self._statements(writes, self._dialect())
            if len(statements) == 1 and self._dialect() == "postgresql":
                self._autocommit(statements[0])
                self.committed = True
                return
            for statement in statements:
                self._run(statement)
        self.flush()
        if self._conn is not None:
            self._conn.commit()
        self.committed = True

    def _autocommit(self, statement) -> None:
        """Nothing read, one statement to write: it is its own transaction (no BEGIN/COMMIT)."""
        for attempt in (1, 2):
            conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                conn.execute(statement)
                return
            except DBAPIError as exc:
                if attempt == 2 or not (self.reconnect and exc.connection_invalidated):
                    raise
                log.warning("uow.connection_replaced", error_type=type(exc.orig).__name__)
            finally:
                conn.close()

    def rollback(self) -> None:
        self._writes, self._unwritten_events = [], []
        if self._conn is not None:
            self._conn.rollback()

    def _discard_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - the connection is dead already
                pass
            self._conn = None

    def close(self) -> None:
        """Roll back what was not committed and give the connection back to the pool."""
        if self._conn is not None:
            if not self.committed:
                self._conn.rollback()
            self._conn.close()
            self._conn = None


class Bound(Writes):
    """The same API on a connection whose transaction someone else owns (the consumer's)."""

    def __init__(self, conn: Connection, outbox: Table, producer: str, **kwargs: Any):
        super().__init__(outbox, producer, **kwargs)
        self.conn = conn

    def _dialect(self) -> str:
        return self.conn.dialect.name

    def _run(self, statement, parameters=None):
        return self.conn.execute(statement, parameters)
