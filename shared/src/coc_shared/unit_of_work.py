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
next one — except changes registered one after the other that set the same columns of one table,
each by equality on key columns it does not set, on distinct keys (a batch of rows saved by id):
they are one ``UPDATE … FROM unnest(<an array per column>)``. On SQLite the writes run one by one.
When nothing was read before the commit and the writes fit one statement, that statement runs
alone in autocommit: one round trip for the whole use case.

The outbox rows of emitted events are written with the rest, their personal part sealed there
(``keys``, the runtime's ``keystore.KeyStore``: the one place events are sealed); the migrations
give every outbox table a statement-level trigger that NOTIFYs the relay
(``tables.outbox_notify_ddl``).

``reconnect=True``: when the first statement of the unit of work meets a connection that died in
the pool (PostgreSQL restarted), a new connection is taken and that statement runs again; before
the first statement nothing was done, so this is safe, and it spares a ping per checkout.

Handlers get the same API (``consumer.HandlerContext``): there the consumer owns the transaction
and flushes after each handler.

What is not in the database (a file deleted from the document store) is registered with
``after_commit(fn)``: it runs once the transaction committed (by ``commit()``, or by the consumer),
never when it rolled back, and a dry run (``dry_run``: a support replay's rehearsal) drops it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ARRAY,
    BindParameter,
    Column,
    Connection,
    Engine,
    Table,
    bindparam,
    delete,
    func,
    insert,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BooleanClauseList, ClauseElement, Null

from .catalogue import validate_event
from .envelope import Event, utcnow
from .logging import get_logger
from .outbox import outbox_row
from .tracing import current_traceparent

log = get_logger(__name__)


# Writes and the statements that carry them --------------------------------------------------
#
# Building and compiling a SQLAlchemy statement costs far more than running it. A write is
# therefore reduced to its *shape* (kind, table, columns, the form of its WHERE) and its
# *parameters*; a group of writes of one shape gets one statement object, built once with
# ``bindparam`` placeholders and kept in a ``StatementCache``, which SQLAlchemy compiles once and
# then runs with new parameters. A write whose values or WHERE cannot be expressed that way (a SQL
# expression as a value, a WHERE other than column-operator-value) is built as it is, uncached.

_COMPARISONS = {
    operators.eq,
    operators.ne,
    operators.lt,
    operators.le,
    operators.gt,
    operators.ge,
    operators.in_op,
    operators.not_in_op,
}
_NULL_TESTS = {operators.is_, operators.is_not}
BULK_ROWS = 8  # more rows than this of one shape into one table: one executemany of their own
GROUP_LIMIT = 32  # writes per generated statement
KEYED_ROWS = 1000  # adjacent keyed changes of one shape merged into one UPDATE … FROM unnest(…)


def _where_terms(table: Table, where: tuple) -> list[tuple] | None:
    """``where`` as [(column key, operator, value or None)], or None when it has another form."""
    clauses = []
    for clause in where:
        clauses.extend(
            clause.clauses
            if isinstance(clause, BooleanClauseList) and clause.operator is operators.and_
            else [clause]
        )
    terms = []
    for clause in clauses:
        if (
            not isinstance(clause, BinaryExpression)
            or not isinstance(clause.left, Column)
            or clause.left.table is not table
        ):
            return None
        if clause.operator in _NULL_TESTS and isinstance(clause.right, Null):
            terms.append((clause.left.key, clause.operator, None))
        elif (
            clause.operator in _COMPARISONS
            and isinstance(clause.right, BindParameter)
            and clause.right.callable is None
        ):
            terms.append((clause.left.key, clause.operator, clause.right.value))
        else:
            return None
    return terms


@dataclass
class _Write:
    kind: str  # insert | update | delete
    table: Table
    row: dict | None = None  # insert: one row
    values: dict | None = None  # update
    where: tuple = ()  # update, delete (as given)
    terms: list | None = None  # the WHERE as (column, operator, value) terms, when it has that form
    rows: list[dict] | None = None  # a bulk insert (executemany, alone)
    keyed: list[_Write] | None = None  # update: adjacent keyed changes of one shape (_merge_keyed)

    @property
    def cacheable(self) -> bool:
        if self.keyed is not None:
            return True
        if self.kind == "insert":
            return not any(isinstance(v, ClauseElement) for v in (self.row or {}).values())
        if self.kind == "update" and any(
            isinstance(v, ClauseElement) for v in self.values.values()
        ):
            return False
        return self.terms is not None

    def key_columns(self) -> tuple | None:
        """The columns of an update's WHERE when it is only ``column == value`` terms on columns
        it does not set (the key of the rows it changes), else None."""
        if self.kind != "update" or self.keyed is not None or not self.cacheable or not self.terms:
            return None
        keys = tuple(key for key, _, _ in self.terms)
        if any(op is not operators.eq or value is None for _, op, value in self.terms):
            return None
        if len(set(keys)) != len(keys) or set(keys) & set(self.values):
            return None
        if any(isinstance(self.table.c[k].type, ARRAY) for k in (*keys, *self.values)):
            return None  # an array of arrays would be one two-dimensional array
        return keys

    def shape(self) -> tuple:
        if self.keyed is not None:
            first = self.keyed[0]
            return ("keyed", self.table, tuple(first.values), first.key_columns())
        if self.kind == "insert":
            return ("insert", self.table, tuple(self.row))
        where = tuple((key, op) for key, op, _ in self.terms)
        if self.kind == "update":
            return ("update", self.table, tuple(self.values), where)
        return ("delete", self.table, where)

    def parameters(self, prefix: str) -> dict:
        if self.keyed is not None:
            return {f"{prefix}_{k}": column for k, column in self._keyed_arrays().items()}
        if self.kind == "insert":
            return {f"{prefix}_{k}": v for k, v in self.row.items()}
        params = {
            f"{prefix}__w{i}": value
            for i, (_, op, value) in enumerate(self.terms)
            if op not in _NULL_TESTS
        }
        if self.kind == "update":
            params.update({f"{prefix}_{k}": v for k, v in self.values.items()})
        return params

    def template(self, prefix: str):
        """The statement of this shape with placeholders named after ``prefix``."""
        t = self.table
        if self.keyed is not None:
            return self._keyed_update(prefix, bound=False)
        if self.kind == "insert":
            return insert(t).values(
                {k: bindparam(f"{prefix}_{k}", type_=t.c[k].type) for k in self.row}
            )
        where = []
        for i, (key, op, _) in enumerate(self.terms):
            column = t.c[key]
            if op in _NULL_TESTS:
                where.append(op(column, None))
            elif op in (operators.in_op, operators.not_in_op):
                param = bindparam(f"{prefix}__w{i}", expanding=True, type_=column.type)
                where.append(column.in_(param) if op is operators.in_op else column.not_in(param))
            else:
                where.append(op(column, bindparam(f"{prefix}__w{i}", type_=column.type)))
        if self.kind == "update":
            return (
                update(t)
                .where(*where)
                .values({k: bindparam(f"{prefix}_{k}", type_=t.c[k].type) for k in self.values})
            )
        return delete(t).where(*where)

    def _keyed_update(self, prefix: str, bound: bool):
        """``UPDATE t SET c = v.c … FROM unnest(:k[], :c[] …) AS v (k, c …) WHERE t.k = v.k``: one
        array per column, so one statement whatever the number of rows (a ``VALUES`` list is
        never cached by SQLAlchemy); with placeholders, or (``bound``) with the values in it."""
        t = self.table
        keys, columns = self.keyed[0].key_columns(), tuple(self.keyed[0].values)
        arrays = self._keyed_arrays()
        rows = (
            func.unnest(
                *(
                    bindparam(
                        f"{prefix}_{k}",
                        arrays[k] if bound else None,
                        type_=ARRAY(t.c[k].type, dimensions=1),
                        unique=bound,
                    )
                    for k in keys + columns
                )
            )
            .table_valued(*(keys + columns))
            .render_derived(name=f"v_{prefix}")
        )
        return (
            update(t)
            .where(*(t.c[k] == rows.c[k] for k in keys))
            .values({k: rows.c[k] for k in columns})
        )

    def _keyed_arrays(self) -> dict[str, list]:
        arrays: dict[str, list] = {}
        for write in self.keyed:
            for k, _, value in write.terms:
                arrays.setdefault(k, []).append(value)
            for k, value in write.values.items():
                arrays.setdefault(k, []).append(value)
        return arrays

    def key(self) -> tuple:
        return tuple(value for _, _, value in self.terms)

    def literal(self):
        """The statement with its values in it (for a write that has no cacheable shape)."""
        if self.keyed is not None:
            return self._keyed_update("k", bound=True)
        if self.kind == "insert":
            return insert(self.table).values(self.row)
        if self.kind == "update":
            return update(self.table).where(*self.where).values(**self.values)
        return delete(self.table).where(*self.where)


class StatementCache:
    """Statement objects by the shapes of the writes they carry (bounded; one per runtime)."""

    def __init__(self, size: int = 1024):
        self.size = size
        self._statements: dict[tuple, object] = {}

    def get(self, key: tuple, build):
        statement = self._statements.get(key)
        if statement is None:
            if len(self._statements) >= self.size:
                self._statements.clear()
            statement = self._statements[key] = build()
        return statement


def _merge_keyed(writes: list[_Write]) -> list[_Write]:
    """Changes registered one after the other that set the same columns of one table, each by
    equality on key columns it does not set, with distinct keys, as one write (``keyed``): run in
    one statement, they change the same rows to the same values as one by one."""
    merged: list[_Write] = []
    seen: set = set()
    for write in writes:
        keys = write.key_columns()
        last = merged[-1] if merged else None
        if keys is None:
            merged.append(write)
            continue
        try:
            key = write.key()
            hash(key)
        except TypeError:
            merged.append(write)
            continue
        if (
            last is not None
            and last.keyed is not None
            and last.table is write.table
            and last.keyed[0].key_columns() == keys
            and tuple(last.keyed[0].values) == tuple(write.values)
            and key not in seen
            and len(last.keyed) < KEYED_ROWS
        ):
            last.keyed.append(write)
        else:
            merged.append(_Write("update", write.table, keyed=[write]))
            seen = set()
        seen.add(key)
    return [w.keyed[0] if w.keyed is not None and len(w.keyed) == 1 else w for w in merged]


def _statement_groups(writes: list[_Write]) -> list[list[_Write]]:
    """Writes in order, cut where one statement could not hold them: the sub-statements of one
    PostgreSQL statement all see the database as it was before it, so a change or removal of a
    table already written in the statement (or a write after one) starts the next; a bulk insert
    stands alone; a group holds at most GROUP_LIMIT writes."""
    groups: list[list[_Write]] = []
    current: list[_Write] = []
    written: dict[str, set[str]] = {}
    for write in writes:
        kinds = written.get(write.table.fullname, set())
        conflict = bool(kinds) and (write.kind != "insert" or kinds != {"insert"})
        if current and (
            conflict
            or write.rows is not None
            or current[-1].rows is not None
            or len(current) >= GROUP_LIMIT
        ):
            groups.append(current)
            current, written = [], {}
        current.append(write)
        written.setdefault(write.table.fullname, set()).add(write.kind)
    if current:
        groups.append(current)
    return groups


def _group_statement(
    group: list[_Write], cache: StatementCache
) -> tuple[object, dict | list | None]:
    """(statement, parameters) of a group: the last write carries the others as CTEs."""
    if group[0].rows is not None:
        return insert(group[0].table), group[0].rows
    if all(w.cacheable for w in group):

        def build():
            *others, last = group
            statement = last.template(f"p{len(others)}")
            if others:
                statement = statement.add_cte(
                    *(w.template(f"p{i}").cte(f"w{i}") for i, w in enumerate(others))
                )
            return statement

        statement = cache.get(tuple(w.shape() for w in group), build)
        params: dict = {}
        for i, write in enumerate(group):
            params.update(write.parameters(f"p{i}"))
        return statement, params
    *others, last = group
    statement = last.literal()
    if others:
        statement = statement.add_cte(*(w.literal().cte(f"w{i}") for i, w in enumerate(others)))
    return statement, None


class Writes:
    """Registering writes and events, and reading through one connection with autoflush: the
    part of a unit of work that handlers share (``consumer.HandlerContext``)."""

    def __init__(
        self,
        outbox: Table,
        producer: str,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        subject: str | None = None,
        statements: StatementCache | None = None,
        keys=None,
    ):
        self.outbox = outbox
        self.keys = keys  # keystore.KeyStore: seals the personal parts; None: sealing off
        self.statements = statements or StatementCache()
        self.producer = producer
        self.correlation_id = correlation_id
        self.causation_id = causation_id
        self.default_subject = subject
        self.events: list[Event] = []  # every event emitted, flushed or not
        self._writes: list[_Write] = []
        self._unwritten_events: list[Event] = []
        self.dry_run = False  # a rehearsal that is rolled back: nothing outside the database runs
        self._after_commit: list[Callable[[], None]] = []

    # to be provided: the connection, and how a statement runs on it
    def _run(self, statement, parameters=None):
        raise NotImplementedError

    # reading, and statements whose answer is needed at once (claims, counters)
    def execute(self, statement, parameters: dict | None = None):
        """Run ``statement`` now, after writing what is registered (so that it sees it)."""
        self.flush()
        return self._run(statement, parameters)

    def claim(self, table: Table, row: dict) -> bool:
        """Insert ``row`` now unless its key is taken (``INSERT … ON CONFLICT DO NOTHING``); True
        when it was inserted. A concurrent transaction claiming the same key waits for this one to
        end: the claim of a notification or an event id that must be handled once."""
        from .db import insert_ignoring_conflicts

        dialect = self._dialect()

        def build():
            placeholders = {k: bindparam(f"c_{k}", type_=table.c[k].type) for k in row}
            key = list(table.primary_key.columns)[0]
            return insert_ignoring_conflicts(self.conn, table, placeholders).returning(key)

        statement = self.statements.get(("claim", table, tuple(row), dialect), build)
        return self.execute(statement, {f"c_{k}": v for k, v in row.items()}).first() is not None

    # registering
    def add(self, table: Table, rows: dict | Iterable[dict]) -> None:
        """Insert one row (a dict) or several (dicts with the same keys)."""
        rows = [rows] if isinstance(rows, dict) else list(rows)
        if len(rows) > BULK_ROWS and len({tuple(r) for r in rows}) == 1:
            self._writes.append(_Write("insert", table, rows=rows))
        else:
            self._writes.extend(_Write("insert", table, row=row) for row in rows)

    def change(self, table: Table, values: dict, *where) -> None:
        """Update the rows of ``table`` matching ``where`` (a WHERE clause is required)."""
        if not where:
            raise ValueError("change() needs a WHERE clause")
        self._writes.append(
            _Write(
                "update", table, values=dict(values), where=where, terms=_where_terms(table, where)
            )
        )

    def remove(self, table: Table, *where) -> None:
        if not where:
            raise ValueError("remove() needs a WHERE clause")
        self._writes.append(_Write("delete", table, where=where, terms=_where_terms(table, where)))

    def emit(
        self,
        type_: str,
        data: dict,
        *,
        subject: str | None = None,
        personal: dict | None = None,
        correlation_id: str | None = None,
        version: int = 1,
    ) -> Event:
        """Record an event to publish: validated now, written to the outbox with the other writes.
        ``correlation_id`` defaults to the unit's (the order's story), else the subject."""
        subject = subject if subject is not None else self.default_subject
        event = Event(
            type=type_,
            version=version,
            data=data,
            personal=personal,
            producer=self.producer,
            correlation_id=correlation_id or self.correlation_id or subject or "",
            causation_id=self.causation_id,
            subject=subject,
            traceparent=current_traceparent(),
        )
        if not event.correlation_id:
            event.correlation_id = event.id
        validate_event(event)
        self.events.append(event)
        self._unwritten_events.append(event)
        return event

    @property
    def pending(self) -> bool:
        return bool(self._writes or self._unwritten_events)

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` (a change outside the database: a stored file deleted) once the transaction
        has committed; never when it rolls back, nor in a dry run (dropped)."""
        if not self.dry_run:
            self._after_commit.append(fn)

    def take_after_commit(self) -> list[Callable[[], None]]:
        """The functions registered with ``after_commit`` (and forgets them)."""
        taken, self._after_commit = self._after_commit, []
        return taken

    def _take_writes(self) -> list[_Write]:
        writes = self._writes
        if self._unwritten_events:
            if self.keys is not None:
                self.keys.seal_events(self._unwritten_events)
            now = utcnow()
            rows = [outbox_row(e, now) for e in self._unwritten_events]
            if len(rows) > BULK_ROWS:
                writes = writes + [_Write("insert", self.outbox, rows=rows)]
            else:
                writes = writes + [_Write("insert", self.outbox, row=row) for row in rows]
        self._writes, self._unwritten_events = [], []
        return writes

    def _statements(self, writes: list[_Write], dialect: str) -> list[tuple]:
        """(statement, parameters) pairs: one per group on PostgreSQL, one per write elsewhere."""
        if dialect != "postgresql":
            return [_group_statement([w], self.statements) for w in writes]
        groups = _statement_groups(_merge_keyed(writes))
        return [_group_statement(group, self.statements) for group in groups]

    def flush(self) -> None:
        """Write what is registered (one statement per group on PostgreSQL)."""
        if not self.pending:
            return
        writes = self._take_writes()
        for statement, params in self._statements(writes, self._dialect()):
            self._run(statement, params)

    def _dialect(self) -> str:
        raise NotImplementedError


class UnitOfWork(Writes):
    """A transaction of its own on ``engine``: use as a context manager; ``commit()`` writes and
    commits, leaving the block without it rolls back."""

    def __init__(
        self,
        engine: Engine,
        outbox: Table,
        producer: str,
        *,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        reconnect: bool = False,
        statements: StatementCache | None = None,
        keys=None,
    ):
        super().__init__(
            outbox, producer, correlation_id, causation_id, statements=statements, keys=keys
        )
        self.engine = engine
        self.reconnect = reconnect
        self._conn: Connection | None = None
        self._statements_run = 0
        self.committed = False

    def __enter__(self) -> UnitOfWork:
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
                self._autocommit(*statements[0])
                self.committed = True
                run_after_commit(self.take_after_commit())
                return
            for statement, params in statements:
                self._run(statement, params)
        self.flush()
        if self._conn is not None:
            self._conn.commit()
        self.committed = True
        run_after_commit(self.take_after_commit())

    def _autocommit(self, statement, params) -> None:
        """Nothing read, one statement to write: it is its own transaction (no BEGIN/COMMIT)."""
        for attempt in (1, 2):
            conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                conn.execute(statement, params)
                return
            except DBAPIError as exc:
                if attempt == 2 or not (self.reconnect and exc.connection_invalidated):
                    raise
                log.warning("uow.connection_replaced", error_type=type(exc.orig).__name__)
            finally:
                conn.close()

    def rollback(self) -> None:
        self._writes, self._unwritten_events, self._after_commit = [], [], []
        if self._conn is not None:
            self._conn.rollback()

    def _discard_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None

    def close(self) -> None:
        """Roll back what was not committed and give the connection back to the pool."""
        if self._conn is not None:
            if not self.committed:
                self._conn.rollback()
            self._conn.close()
            self._conn = None


def run_after_commit(functions: Iterable[Callable[[], None]]) -> None:
    """Run what a committed transaction registered with ``after_commit``; one failing is logged
    (what it was to change stays as it was) and the others still run."""
    for fn in functions:
        try:
            fn()
        except Exception as exc:
            log.error(
                "after_commit.failed",
                what=getattr(fn, "__qualname__", repr(fn)),
                error_type=type(exc).__name__,
                error=str(exc)[:300],
            )


class Bound(Writes):
    """The same API on a connection whose transaction someone else owns (the consumer's)."""

    def __init__(self, conn: Connection, outbox: Table, producer: str, **kwargs: Any):
        super().__init__(outbox, producer, **kwargs)
        self.conn = conn

    def _dialect(self) -> str:
        return self.conn.dialect.name

    def _run(self, statement, parameters=None):
        return self.conn.execute(statement, parameters)
