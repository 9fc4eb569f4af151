"""Integration tests of the payments service on the real PostgreSQL and RabbitMQ (this run's own
database and bus prefix, from coc_shared.testing)."""

import uuid

import pytest
from payments_testkit import BILLING
from sqlalchemy import select

from coc_payments.adapters import tables
from coc_payments.service import definition
from coc_shared.export import contributions_emitted
from coc_shared.service import Runtime
from coc_shared.testing import (
    assert_handlers_work_on_sqlite,
    assert_migrated,
    assert_migrations_match_metadata,
    assert_one_effect_when_published_twice,
    assert_recorded_once,
    count_rows,
    fresh_example,
    handle,
    purge_reports_emitted,
    staff_client,
)


@pytest.fixture
def runtime(runtime_factory):
    return runtime_factory(definition, extra=BILLING)


def paid_order(event_type: str, rt: Runtime):
    """A fresh example of ``event_type``; for payment.confirmed, of an order placed before (its
    invoice needs the sale)."""
    event = fresh_example(event_type)
    if event_type == "payment.confirmed":
        placed = fresh_example("order.placed", order_id=lambda: event.data["order_id"])
        handle(rt, placed)
    return event


def effects(rt: Runtime, event) -> int:
    """How many rows the handling of ``event`` left in the service's own tables."""
    if event.type == "payment.confirmed":  # the invoice numbered (the invoices loop issues it)
        return count_rows(
            rt,
            tables.invoices_to_issue,
            tables.invoices_to_issue.c.order_id == event.data["order_id"],
        ) + count_rows(
            rt,
            tables.billing_documents,
            tables.billing_documents.c.invoice_of_order == event.data["order_id"],
        )
    if event.type == "retention.purge_requested":
        return purge_reports_emitted(rt, event)
    if event.type == "account.export_requested":
        return contributions_emitted(rt, event)
    if event.type == "account.erasure_requested":
        return count_rows(
            rt,
            tables.account_deactivations,
            tables.account_deactivations.c.account_id == event.data["account_id"],
        )
    if event.type == "order.cancelled":
        return count_rows(
            rt,
            tables.order_cancellations,
            tables.order_cancellations.c.order_id == event.data["order_id"],
        )
    return count_rows(
        rt, tables.payments_due, tables.payments_due.c.order_id == event.data["order_id"]
    )


def test_migrate_creates_the_schema_and_runs_again_without_change(runtime):
    assert_migrated(
        runtime,
        {
            "payments_due",
            "account_deactivations",
            "callbacks",
            "id_blocks",
            "sales",
            "billing_documents",
            "document_counters",
            "refunds",
            "vat_checks",
            "invoices_to_issue",
        },
        "payments_0009",
    )


def test_migrations_create_exactly_the_tables_of_the_metadata(runtime):
    assert_migrations_match_metadata(runtime)


def test_migrations_and_handlers_work_on_sqlite(tmp_path, monkeypatch):
    for name, value in BILLING.items():
        monkeypatch.setenv(name, value)
    assert_handlers_work_on_sqlite(definition, tmp_path, effects, paid_order)


@pytest.mark.parametrize("event_type", sorted(definition.handlers(None)))
def test_each_consumed_event_type_is_recorded_once(runtime, event_type):
    assert_recorded_once(runtime, paid_order(event_type, runtime), effects)


def test_health_readiness_and_staff_only_routes(runtime):
    client, auth = staff_client(runtime)
    event = fresh_example("order.placed")
    path = f"/v1/staff/payments-due/{event.data['order_id']}"
    assert client.get(path, headers=auth).status_code == 404
    handle(runtime, event)
    assert client.get(path).status_code == 401
    answer = client.get(path, headers=auth)
    assert answer.status_code == 200
    assert answer.get_json() == {
        "order_id": event.data["order_id"],
        "order_number": "COC-2026-000123",
        "method": "card",
        "amount_cents": 24900,
        "currency": "EUR",
        "status": "due",
    }


def test_a_second_order_placed_for_the_same_order_changes_nothing(runtime):
    event = fresh_example("order.placed")
    again = fresh_example("order.placed")
    again.data = {**event.data, "total": {"amount_cents": 1, "currency": "EUR"}}
    for e in (event, again):
        handle(runtime, e)
    with runtime.engine.connect() as conn:
        rows = conn.execute(
            select(tables.payments_due).where(
                tables.payments_due.c.order_id == event.data["order_id"]
            )
        ).all()
    assert [(r.event_id, r.amount_cents) for r in rows] == [(event.id, 24900)]


def due_status(rt: Runtime, order_id: str) -> str | None:
    with rt.engine.connect() as conn:
        return conn.execute(
            select(tables.payments_due.c.status).where(tables.payments_due.c.order_id == order_id)
        ).scalar_one_or_none()


@pytest.mark.parametrize("first", ["order.placed", "order.cancelled"])
def test_a_cancelled_order_s_payment_is_no_longer_due_whichever_event_comes_first(runtime, first):
    placed, cancelled = fresh_example("order.placed"), fresh_example("order.cancelled")
    cancelled.data = {**cancelled.data, "order_id": placed.data["order_id"]}
    for event in (placed, cancelled) if first == "order.placed" else (cancelled, placed):
        handle(runtime, event)
    assert due_status(runtime, placed.data["order_id"]) == "cancelled"
    handle(
        runtime, cancelled
    )  # the same fact again (another event id in real life): nothing changes
    assert due_status(runtime, placed.data["order_id"]) == "cancelled"
    assert (
        count_rows(
            runtime, tables.review_items, tables.review_items.c.order_id == placed.data["order_id"]
        )
        == 0
    )


@pytest.fixture
def producer(runtime, fake_orders):
    """The consumer and relay of the payments service, and the relay of a fake orders service (the
    producer of the event used below), as threads on the real broker."""
    return fake_orders(runtime)


def test_an_event_from_the_broker_has_one_effect_even_when_published_twice(runtime, producer):
    assert_one_effect_when_published_twice(
        runtime, producer, lambda: fresh_example("order.placed"), effects, "payment due recorded"
    )


def test_migrations_run_twice_and_create_exactly_the_tables_of_the_metadata_on_sqlite(
    tmp_path, fake_paypal
):
    from payments_testkit import sqlite_runtime

    rt = sqlite_runtime(tmp_path, fake_paypal.url)
    try:
        assert_migrated(
            rt,
            {"payments_due", "account_deactivations", "callbacks", "id_blocks", "sales"},
            "payments_0009",
        )
        assert_migrations_match_metadata(rt)
    finally:
        rt.dispose()


def callbacks_as_of_0004():
    """The callbacks table as payments_0001 to payments_0004 made it (a text body)."""
    from sqlalchemy import JSON, DateTime, Integer, String, Table, Text
    from sqlalchemy import Column as C
    from sqlalchemy import MetaData as M

    return Table(
        "callbacks",
        M(schema="payments"),
        C("id", Integer, primary_key=True),
        C("provider", String(30)),
        C("received_at", DateTime(timezone=True)),
        C("headers", JSON),
        C("body", Text),
        C("verdict", String(20)),
    )


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_database(request, database_url, tmp_path):
    """A database of its own (PostgreSQL or SQLite), to migrate step by step."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/main.db"
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    from coc_shared.db import normalise_url

    url = make_url(normalise_url(database_url))
    name = f"{url.database}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(
        url.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_payments_0004_seeds_the_callback_ids_past_the_highest_and_adds_the_outbox_trigger(
    empty_database,
):
    """An existing database (migrated to payments_0003, with callbacks, and without the outbox
    trigger that older databases lack) upgraded: callback ids go on after the highest one."""
    from sqlalchemy import func, insert, text

    from coc_payments.service_layer.context import Payments
    from coc_shared.config import Settings
    from coc_shared.envelope import utcnow
    from coc_shared.migrate import upgrade

    rt = Runtime(
        definition,
        Settings.from_env(
            "payments",
            database_url=empty_database,
            parking_database_url=empty_database,
            rabbitmq_url="memory://",
        ),
    )
    postgresql = rt.engine.dialect.name == "postgresql"
    try:
        upgrade(rt.engine, definition.migrations, "payments", revision="payments_0003")
        with rt.engine.begin() as conn:
            conn.execute(
                insert(callbacks_as_of_0004()),
                [
                    {
                        "id": i,
                        "provider": "systempay",
                        "received_at": utcnow(),
                        "headers": {},
                        "body": "",
                        "verdict": "accepted",
                    }
                    for i in (1, 2, 41)
                ],
            )
            if postgresql:
                conn.execute(text('DROP TRIGGER coc_outbox_notify ON "payments".outbox'))
        rt.migrate()
        rt.migrate()
        with rt.engine.connect() as conn:
            blocks = select(tables.id_blocks.c.name, tables.id_blocks.c.next_value)
            assert conn.execute(blocks).all() == [("callback", 42)]
            if postgresql:
                assert (
                    conn.execute(
                        text(
                            "SELECT count(*) FROM pg_trigger WHERE tgname = 'coc_outbox_notify' "
                            "AND tgrelid = 'payments.outbox'::regclass"
                        )
                    ).scalar_one()
                    == 1
                )
        callback_ids = Payments.of(rt).callback_ids
        assert [callback_ids.next() for _ in range(3)] == [42, 43, 44]
        with rt.engine.connect() as conn:
            assert conn.execute(select(func.max(tables.callbacks.c.id))).scalar_one() == 41
    finally:
        rt.dispose()


def test_payments_0005_keeps_the_callbacks_text_bodies_as_their_utf8_bytes(empty_database):
    """An existing database (payments_0004, text bodies) upgraded: every body is kept, as the
    UTF-8 bytes of its text; a body with a NUL byte can then be recorded."""
    from sqlalchemy import insert

    from coc_payments.adapters.repository import CallbackRepository
    from coc_payments.domain.callbacks import Callback
    from coc_payments.service_layer.context import Payments
    from coc_shared.config import Settings
    from coc_shared.envelope import utcnow
    from coc_shared.migrate import upgrade

    rt = Runtime(
        definition,
        Settings.from_env(
            "payments",
            database_url=empty_database,
            parking_database_url=empty_database,
            rabbitmq_url="memory://",
        ),
    )
    bodies = {101: "vads_order_id=COC-1&vads_cust_name=Émilie", 102: "", 103: '{"id": "WH-1"}'}
    try:
        upgrade(rt.engine, definition.migrations, "payments", revision="payments_0004")
        with rt.engine.begin() as conn:
            conn.execute(
                insert(callbacks_as_of_0004()),
                [
                    {
                        "id": i,
                        "provider": "systempay",
                        "received_at": utcnow(),
                        "headers": {},
                        "body": body,
                        "verdict": "accepted",
                    }
                    for i, body in bodies.items()
                ],
            )
        rt.migrate()
        rt.migrate()
        with rt.engine.connect() as conn:
            kept = dict(conn.execute(select(tables.callbacks.c.id, tables.callbacks.c.body)).all())
        assert kept == {i: body.encode() for i, body in bodies.items()}
        payments = Payments.of(rt)
        with payments.unit_of_work() as uow:
            callback = Callback(payments.callback_ids.next(), "qonto", utcnow(), {}, b"a\x00\xff")
            CallbackRepository(uow).add(callback.rejected("no signature"))
            uow.commit()
        with rt.engine.connect() as conn:
            body = conn.execute(
                select(tables.callbacks.c.body).where(tables.callbacks.c.id == callback.id)
            ).scalar_one()
        assert bytes(body) == b"a\x00\xff"
    finally:
        rt.dispose()
