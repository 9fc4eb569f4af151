"""The unit of work on both dialects: registered writes and events commit together, reads see what
was registered before them, nothing is written without a commit, a PostgreSQL flush is one
statement, the outbox trigger wakes the relay, a dead pooled connection is replaced once, and the
block allocator hands out unique numbers across processes' allocators."""

from __future__ import annotations

import threading

import psycopg
import pytest
from sharedkit import register_test_type, unique_suffix
from sqlalchemy import Column, Integer, MetaData, String, Table, event, func, select, text
from sqlalchemy.exc import DBAPIError

from coc_shared.catalogue import SchemaViolation
from coc_shared.db import ensure_schema, make_engine
from coc_shared.envelope import Event
from coc_shared.ids import BlockAllocator
from coc_shared.outbox import notify_channel
from coc_shared.tables import create_outbox_notify_trigger, id_blocks_table, messaging_tables
from coc_shared.unit_of_work import StatementCache, UnitOfWork


class Db:
    def __init__(self, engine, schema: str):
        self.engine = engine
        self.schema = schema
        metadata = MetaData()
        self.items = Table(
            "items",
            metadata,
            Column("id", Integer, primary_key=True),
            Column("name", String(50)),
            Column("count", Integer, nullable=False, default=0),
            schema=schema,
        )
        self.notes = Table(
            "notes",
            metadata,
            Column("id", Integer, primary_key=True),
            Column("item_id", Integer),
            Column("text", String(200)),
            schema=schema,
        )
        self.outbox, _ = messaging_tables(metadata, schema)
        self.blocks = id_blocks_table(metadata, schema)
        ensure_schema(engine, schema)
        metadata.create_all(engine)
        with engine.begin() as conn:
            create_outbox_notify_trigger(conn, schema)
        self.statements: list[str] = []
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, conn, cursor, statement, parameters, context, executemany):
        self.statements.append(statement)

    def uow(self, **kwargs) -> UnitOfWork:
        return UnitOfWork(self.engine, self.outbox, "probe", **kwargs)

    def rows(self, table) -> list:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(select(table).order_by(table.c.id))]

    def events(self) -> list[Event]:
        with self.engine.connect() as conn:
            return [
                Event.from_json(b)
                for b in conn.execute(
                    select(self.outbox.c.body).order_by(self.outbox.c.seq)
                ).scalars()
            ]


@pytest.fixture(params=["postgresql", "sqlite"])
def db(request, database_url, tmp_path):
    schema = f"u_{unique_suffix()}"
    if request.param == "postgresql":
        engine = make_engine(database_url, pre_ping=False)
    else:
        engine = make_engine(f"sqlite:///{tmp_path}/main.db", schemas=(schema,))
    yield Db(engine, schema)
    engine.dispose()


@pytest.fixture
def pg(database_url):
    engine = make_engine(database_url, pre_ping=False)
    yield Db(engine, f"u_{unique_suffix()}")
    engine.dispose()


@pytest.fixture(scope="module")
def type_():
    return register_test_type()


def test_writes_and_events_commit_together(db, type_):
    with db.uow(correlation_id="story-1") as uow:
        uow.add(db.items, [{"id": 1, "name": "a", "count": 0}, {"id": 2, "name": "b", "count": 0}])
        uow.add(db.notes, {"id": 1, "item_id": 1, "text": "first"})
        emitted = uow.emit(type_, {"n": 1}, subject="item-1")
        uow.commit()
    assert db.rows(db.items) == [(1, "a", 0), (2, "b", 0)]
    assert db.rows(db.notes) == [(1, 1, "first")]
    [stored] = db.events()
    assert (
        stored.id,
        stored.type,
        stored.data,
        stored.subject,
        stored.correlation_id,
        stored.producer,
    ) == (emitted.id, type_, {"n": 1}, "item-1", "story-1", "probe")


def test_nothing_is_written_without_a_commit(db, type_):
    with db.uow() as uow:
        uow.add(db.items, {"id": 1, "name": "a", "count": 0})
        uow.emit(type_, {"n": 1})
        assert (
            uow.execute(select(func.count()).select_from(db.items)).scalar_one() == 1
        )  # flushed, not committed
    with pytest.raises(RuntimeError):
        with db.uow() as uow:
            uow.add(db.items, {"id": 2, "name": "b", "count": 0})
            raise RuntimeError("the use case failed")
    assert db.rows(db.items) == [] and db.events() == []


@pytest.mark.parametrize("reads_first", [False, True])  # the autocommit path, and a transaction
def test_what_is_registered_after_commit_runs_once_committed_never_after_a_rollback(
    db, reads_first
):
    seen = []
    with db.uow() as uow:
        if reads_first:
            uow.execute(select(func.count()).select_from(db.items))
        uow.add(db.items, {"id": 1, "name": "a", "count": 0})
        uow.after_commit(lambda: seen.append(db.rows(db.items)))
        assert seen == []
        uow.commit()
    assert seen == [[(1, "a", 0)]]  # run after the commit: the row is there for others
    with db.uow() as uow:
        uow.add(db.items, {"id": 2, "name": "b", "count": 0})
        uow.after_commit(lambda: seen.append("rolled back"))
    with db.uow() as uow:
        uow.dry_run = True
        uow.after_commit(lambda: seen.append("dry run"))
        uow.commit()
    assert seen == [[(1, "a", 0)]]


def test_a_read_sees_what_was_registered_before_it(db):
    with db.uow() as uow:
        uow.add(db.items, {"id": 1, "name": "a", "count": 0})
        uow.change(db.items, {"count": db.items.c.count + 1}, db.items.c.id == 1)
        assert uow.execute(select(db.items.c.count).where(db.items.c.id == 1)).scalar_one() == 1
        uow.change(db.items, {"count": db.items.c.count + 10}, db.items.c.id == 1)
        uow.commit()
    assert db.rows(db.items) == [(1, "a", 11)]


def test_writes_keep_their_order_when_they_touch_the_same_rows(db):
    """Sub-statements of one PostgreSQL statement cannot see each other: the flush splits them."""
    with db.uow() as uow:
        uow.add(db.items, {"id": 1, "name": "a", "count": 0})
        uow.change(db.items, {"count": db.items.c.count + 1}, db.items.c.id == 1)
        uow.change(db.items, {"count": db.items.c.count * 5}, db.items.c.id == 1)
        uow.add(db.notes, {"id": 1, "item_id": 1, "text": "x"})
        uow.remove(db.notes, db.notes.c.id == 1)
        uow.add(db.notes, {"id": 1, "item_id": 1, "text": "y"})
        uow.commit()
    assert db.rows(db.items) == [(1, "a", 5)]
    assert db.rows(db.notes) == [(1, 1, "y")]


def test_change_and_remove_need_a_where_clause(db):
    with db.uow() as uow:
        with pytest.raises(ValueError):
            uow.change(db.items, {"count": 1})
        with pytest.raises(ValueError):
            uow.remove(db.items)


def test_an_invalid_event_is_refused_when_emitted(db, type_):
    with db.uow() as uow:
        with pytest.raises(SchemaViolation):
            uow.emit(type_, {"n": "not a number"})


def test_on_postgresql_a_flush_is_one_statement_and_without_reads_the_commit_is_alone(pg, type_):
    pg.statements.clear()
    with pg.uow() as uow:
        uow.add(pg.items, [{"id": 1, "name": "a", "count": 0}, {"id": 2, "name": "b", "count": 0}])
        uow.add(pg.notes, {"id": 1, "item_id": 1, "text": "x"})
        uow.emit(type_, {"n": 1})
        uow.emit(type_, {"n": 2})
        uow.commit()
    assert len(pg.statements) == 1, pg.statements
    assert pg.statements[0].lstrip().upper().startswith("WITH")
    pg.statements.clear()
    with pg.uow() as uow:
        assert uow.execute(select(pg.items.c.name).where(pg.items.c.id == 1)).scalar_one() == "a"
        uow.change(pg.items, {"count": 3}, pg.items.c.id == 1)
        uow.remove(pg.notes, pg.notes.c.id == 1)
        uow.add(
            pg.notes, {"id": 2, "item_id": 2, "text": "y"}
        )  # after a removal: the next statement
        uow.emit(type_, {"n": 3})
        uow.commit()
    assert len(pg.statements) == 3, (
        pg.statements
    )  # the read, then two for the writes (in its transaction)
    assert len(pg.events()) == 3


def test_the_outbox_trigger_notifies_the_relay_at_commit(pg, type_):
    url = pg.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute(f'LISTEN "{notify_channel(pg.schema)}"')
        with pg.uow() as uow:
            uow.emit(type_, {"n": 1})
            uow.execute(select(1))  # flushed: the row is written but not committed
            assert list(listener.notifies(timeout=0.3, stop_after=1)) == []
            uow.commit()
        assert len(list(listener.notifies(timeout=5, stop_after=1))) == 1


def _kill_pooled_connections(engine) -> None:
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND application_name = ''"
        )


@pytest.mark.parametrize("reads_first", [True, False])
def test_a_dead_pooled_connection_is_replaced_once_when_reconnect_is_on(pg, reads_first):
    with pg.uow() as uow:  # a connection into the pool
        uow.execute(text("SELECT 1"))
    _kill_pooled_connections(pg.engine)
    with pg.uow(reconnect=True) as uow:
        if reads_first:
            assert uow.execute(select(func.count()).select_from(pg.items)).scalar_one() == 0
        uow.add(pg.items, {"id": 1, "name": "a", "count": 0})
        uow.commit()
    assert pg.rows(pg.items) == [(1, "a", 0)]


def test_without_reconnect_a_dead_connection_is_an_error(pg):
    with pg.uow() as uow:
        uow.execute(text("SELECT 1"))
    _kill_pooled_connections(pg.engine)
    with pytest.raises(DBAPIError):
        with pg.uow() as uow:
            uow.execute(text("SELECT 1"))


def test_block_allocators_hand_out_unique_increasing_numbers(db):
    first = BlockAllocator(db.engine, db.blocks, "orders", block_size=5)
    second = BlockAllocator(db.engine, db.blocks, "orders", block_size=3)
    taken = (
        [first.next() for _ in range(7)]
        + [second.next() for _ in range(4)]
        + [first.next() for _ in range(4)]
    )
    assert len(set(taken)) == len(taken)
    assert taken[:7] == sorted(taken[:7]) and taken[0] == 1
    other = BlockAllocator(
        db.engine, db.blocks, "invoices-of-a-test", block_size=2, first_value=100
    )
    assert [other.next() for _ in range(3)] == [100, 101, 102]


def test_block_allocators_in_threads_never_give_a_number_twice(pg):
    allocators = [BlockAllocator(pg.engine, pg.blocks, "numbers", block_size=4) for _ in range(4)]
    taken: list[int] = []
    lock = threading.Lock()

    def take(allocator):
        mine = [allocator.next() for _ in range(50)]
        with lock:
            taken.extend(mine)

    threads = [threading.Thread(target=take, args=(a,)) for a in allocators for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(taken) == 400 and len(set(taken)) == 400


def test_writes_of_one_shape_reuse_one_statement(db, type_):
    cache = StatementCache()
    for i in range(1, 4):
        with UnitOfWork(db.engine, db.outbox, "probe", statements=cache) as uow:
            uow.add(db.items, {"id": i, "name": f"n{i}", "count": i})
            uow.add(db.notes, {"id": i, "item_id": i, "text": None})
            uow.emit(type_, {"n": i})
            uow.commit()
    shapes = len(cache._statements)
    with UnitOfWork(db.engine, db.outbox, "probe", statements=cache) as uow:
        uow.add(db.items, {"id": 9, "name": "other", "count": 0})
        uow.add(db.notes, {"id": 9, "item_id": 9, "text": "x"})
        uow.emit(type_, {"n": 9})
        uow.commit()
    assert len(cache._statements) == shapes  # the same shape: no new statement built
    assert [r[0] for r in db.rows(db.items)] == [1, 2, 3, 9] and len(db.events()) == 4


def test_where_clauses_of_every_supported_form_and_others(db):
    with db.uow() as uow:
        uow.add(
            db.items,
            [{"id": i, "name": None if i % 2 else f"n{i}", "count": i} for i in range(1, 7)],
        )
        uow.commit()
    with db.uow() as uow:
        uow.change(db.items, {"count": 0}, db.items.c.id.in_([1, 2]))
        uow.change(db.items, {"count": 100}, db.items.c.name.is_(None), db.items.c.id > 3)
        uow.remove(db.items, db.items.c.id.not_in([1, 2, 3, 5]), db.items.c.name.is_not(None))
        uow.change(
            db.items, {"name": "x"}, (db.items.c.count == 3) | (db.items.c.count == 100)
        )  # uncached form
        uow.commit()
    assert db.rows(db.items) == [(1, None, 0), (2, "n2", 0), (3, "x", 3), (5, "x", 100)]


def test_many_rows_of_one_shape_are_one_bulk_insert(db, type_):
    with db.uow() as uow:
        uow.add(db.items, [{"id": i, "name": "bulk", "count": i} for i in range(1, 51)])
        for i in range(20):
            uow.emit(type_, {"n": i})
        uow.commit()
    assert len(db.rows(db.items)) == 50 and len(db.events()) == 20


def test_adjacent_changes_by_key_are_one_update_with_the_same_result(db, type_):
    with db.uow() as uow:
        uow.add(db.items, [{"id": i, "name": f"n{i}", "count": 0} for i in range(1, 8)])
        uow.commit()
    db.statements.clear()
    with db.uow() as uow:
        assert uow.execute(select(func.count()).select_from(db.items)).scalar_one() == 7
        for i in (1, 2, 3, 5):  # one shape, distinct keys: merged on PostgreSQL
            uow.change(
                db.items, {"name": None if i == 2 else f"m{i}", "count": i * 10}, db.items.c.id == i
            )
        uow.change(
            db.items, {"name": "again", "count": 11}, db.items.c.id == 1
        )  # a key seen: after
        uow.change(db.items, {"count": 70}, db.items.c.id == 7)  # another shape
        uow.change(db.items, {"count": 1}, db.items.c.count == 70)  # sets its WHERE column
        uow.change(db.items, {"count": 2}, db.items.c.count == 1)
        uow.emit(type_, {"n": 1})
        uow.commit()
    writes = db.statements[1:]
    assert db.rows(db.items) == [
        (1, "again", 11),
        (2, None, 20),
        (3, "m3", 30),
        (4, "n4", 0),
        (5, "m5", 50),
        (6, "n6", 0),
        (7, "n7", 2),
    ]
    if db.engine.dialect.name == "postgresql":
        # the four first changes in one statement, then one for each other change of the table
        assert len(writes) == 5, writes
        assert "unnest" in writes[0] and writes[0].count("UPDATE") == 1
    with db.uow() as uow:  # many rows, a row count not seen before, outside a read's transaction
        for i in range(1, 8):
            uow.change(db.items, {"count": -i}, db.items.c.id == i, db.items.c.name.is_not(None))
        for i in range(1, 8):
            uow.change(db.items, {"name": f"k{i}"}, db.items.c.id == i)
        uow.add(db.notes, {"id": 1, "item_id": 1, "text": "a"})
        uow.commit()
    with db.uow() as uow:  # beside a write without a cacheable shape: the values in the statement
        for i in (1, 2):
            uow.change(db.items, {"name": f"z{i}"}, db.items.c.id == i)
        uow.change(db.notes, {"text": "b"}, (db.notes.c.id == 1) | (db.notes.c.id == 2))
        uow.commit()
    assert db.rows(db.items) == [
        (i, f"z{i}" if i < 3 else f"k{i}", 20 if i == 2 else -i) for i in range(1, 8)
    ]
    assert db.rows(db.notes) == [(1, 1, "b")]


def test_keyed_changes_of_any_row_count_reuse_one_statement(pg):
    cache = StatementCache()
    with UnitOfWork(pg.engine, pg.outbox, "probe", statements=cache) as uow:
        uow.add(pg.items, [{"id": i, "name": "n", "count": 0} for i in range(1, 31)])
        uow.commit()
    shapes = None
    for rows in (3, 7, 30):
        with UnitOfWork(pg.engine, pg.outbox, "probe", statements=cache) as uow:
            for i in range(1, rows + 1):
                uow.change(pg.items, {"name": f"r{rows}", "count": rows}, pg.items.c.id == i)
            uow.commit()
        shapes = shapes or len(cache._statements)
        assert len(cache._statements) == shapes
    assert pg.rows(pg.items)[29] == (30, "r30", 30) and pg.rows(pg.items)[0] == (1, "r30", 30)
