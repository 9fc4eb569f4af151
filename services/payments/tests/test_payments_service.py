"""Integration tests of the payments service on the real PostgreSQL and RabbitMQ (this run's own
database and bus prefix, from coc_shared.testing)."""
import pytest
from sqlalchemy import select

from coc_orders.service import definition as orders_definition
from coc_payments.adapters import orm
from coc_payments.service import definition
from coc_shared.service import Runtime
from coc_shared.testing import (
    assert_handlers_work_on_sqlite, assert_migrated, assert_migrations_match_metadata,
    assert_one_effect_when_published_twice, assert_recorded_once, count_rows, fresh_example, handle, staff_client,
)


@pytest.fixture
def runtime(runtime_factory):
    return runtime_factory(definition)


def effects(rt: Runtime, event) -> int:
    """How many rows the handling of ``event`` left in the service's own tables."""
    if event.type == "account.deactivated":
        return count_rows(rt, orm.account_deactivations,
                          orm.account_deactivations.c.account_id == event.data["account_id"])
    if event.type == "order.cancelled":
        return count_rows(rt, orm.order_cancellations, orm.order_cancellations.c.order_id == event.data["order_id"])
    return count_rows(rt, orm.payments_due, orm.payments_due.c.order_id == event.data["order_id"])


def test_migrate_creates_the_schema_and_runs_again_without_change(runtime):
    assert_migrated(runtime, {"payments_due", "account_deactivations"}, "payments_0003")


def test_migrations_create_exactly_the_tables_of_the_metadata(runtime):
    assert_migrations_match_metadata(runtime)


def test_migrations_and_handlers_work_on_sqlite(tmp_path):
    assert_handlers_work_on_sqlite(definition, tmp_path, effects)


@pytest.mark.parametrize("event_type", sorted(definition.handlers(None)))
def test_each_consumed_event_type_is_recorded_once(runtime, event_type):
    assert_recorded_once(runtime, fresh_example(event_type), effects)


def test_health_readiness_and_staff_only_routes(runtime):
    client, auth = staff_client(runtime)
    event = fresh_example("order.placed")
    path = f"/v1/staff/payments-due/{event.data['order_id']}"
    assert client.get(path, headers=auth).status_code == 404
    handle(runtime, event)
    assert client.get(path).status_code == 401
    answer = client.get(path, headers=auth)
    assert answer.status_code == 200
    assert answer.get_json() == {"order_id": event.data["order_id"], "order_number": "COC-2026-000123",
                                 "method": "card", "amount_cents": 24900, "currency": "EUR", "status": "due"}


def test_a_second_order_placed_for_the_same_order_changes_nothing(runtime):
    event = fresh_example("order.placed")
    again = fresh_example("order.placed")
    again.data = {**event.data, "total": {"amount_cents": 1, "currency": "EUR"}}
    for e in (event, again):
        handle(runtime, e)
    with runtime.engine.connect() as conn:
        rows = conn.execute(select(orm.payments_due).where(orm.payments_due.c.order_id == event.data["order_id"])).all()
    assert [(r.event_id, r.amount_cents) for r in rows] == [(event.id, 24900)]


def due_status(rt: Runtime, order_id: str) -> str | None:
    with rt.engine.connect() as conn:
        return conn.execute(select(orm.payments_due.c.status).where(
            orm.payments_due.c.order_id == order_id)).scalar_one_or_none()


@pytest.mark.parametrize("first", ["order.placed", "order.cancelled"])
def test_a_cancelled_order_s_payment_is_no_longer_due_whichever_event_comes_first(runtime, first):
    placed, cancelled = fresh_example("order.placed"), fresh_example("order.cancelled")
    cancelled.data = {**cancelled.data, "order_id": placed.data["order_id"]}
    for event in ((placed, cancelled) if first == "order.placed" else (cancelled, placed)):
        handle(runtime, event)
    assert due_status(runtime, placed.data["order_id"]) == "cancelled"
    handle(runtime, cancelled)  # the same fact again (another event id in real life): nothing changes
    assert due_status(runtime, placed.data["order_id"]) == "cancelled"
    assert count_rows(runtime, orm.review_items, orm.review_items.c.order_id == placed.data["order_id"]) == 0


@pytest.fixture
def producer(runtime, start_with_producer):
    """The consumer and relay of the payments service, and the relay of orders (the producer of
    the event used below), as threads on the real broker."""
    return start_with_producer(runtime, orders_definition)


def test_an_event_from_the_broker_has_one_effect_even_when_published_twice(runtime, producer):
    assert_one_effect_when_published_twice(runtime, producer, lambda: fresh_example("order.placed"), effects,
                                           "payment due recorded")
