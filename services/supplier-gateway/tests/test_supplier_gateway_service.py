"""Integration tests of the supplier gateway on the real PostgreSQL and RabbitMQ (this run's own
database and bus prefix, from coc_shared.testing)."""

import uuid

import pytest
from sqlalchemy import select

from coc_orders.service import definition as orders_definition
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
    inbox_rows,
    publish,
    purge_reports_emitted,
    staff_client,
    staff_headers,
    wait_until,
)
from coc_supplier_gateway.adapters import tables
from coc_supplier_gateway.service import definition


@pytest.fixture
def runtime(runtime_factory):
    return runtime_factory(definition)


def effects(rt: Runtime, event) -> int:
    """How many rows the handling of ``event`` left in the service's own tables."""
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
    return count_rows(
        rt, tables.supplier_requests, tables.supplier_requests.c.order_id == event.data["order_id"]
    )


def test_migrate_creates_the_schema_and_runs_again_without_change(runtime):
    assert_migrated(
        runtime, {"supplier_requests", "account_deactivations"}, "supplier_gateway_0004"
    )


def test_migrations_create_exactly_the_tables_of_the_metadata(runtime):
    assert_migrations_match_metadata(runtime)


def test_migrations_and_handlers_work_on_sqlite(tmp_path):
    assert_handlers_work_on_sqlite(definition, tmp_path, effects)


@pytest.mark.parametrize("event_type", sorted(definition.handlers(None)))
def test_each_consumed_event_type_is_recorded_once(runtime, event_type):
    assert_recorded_once(runtime, fresh_example(event_type), effects)


def test_health_readiness_and_staff_only_routes(runtime):
    client, auth = staff_client(runtime)
    event = fresh_example("payment.confirmed")
    path = f"/v1/staff/supplier-requests/{event.data['order_id']}"
    assert client.get(path, headers=auth).status_code == 404
    handle(runtime, event)
    assert client.get(path).status_code == 401
    answer = client.get(path, headers=auth)
    assert answer.status_code == 200
    assert {
        k: answer.get_json()[k] for k in ("order_id", "brand", "status", "missing", "document_ids")
    } == {
        "order_id": event.data["order_id"],
        "brand": None,
        "status": "pending",
        "missing": ["order", "documents"],
        "document_ids": [],
    }


def request_state(rt: Runtime, order_id: str):
    t = tables.supplier_requests
    with rt.engine.connect() as conn:
        return conn.execute(
            select(
                t.c.brand,
                t.c.order_placed,
                t.c.paid,
                t.c.documents_completed,
                t.c.document_ids,
                t.c.status,
            ).where(t.c.order_id == order_id)
        ).one()


def progress(state) -> tuple:
    """What the request knows (order placed, paid, documents completed) and its status."""
    return state.order_placed, state.paid, state.documents_completed, state.status


def test_a_request_is_ready_once_order_payment_and_documents_are_known(runtime):
    order_id = str(uuid.uuid4())
    events = [
        fresh_example(t) for t in ("order.documents_completed", "payment.confirmed", "order.placed")
    ]
    for event in events:
        event.data = {**event.data, "order_id": order_id}
        handle(runtime, event)
        assert effects(runtime, event) == 1
    state = request_state(runtime, order_id)
    assert tuple(state) == ("Peugeot", True, True, True, events[0].data["document_ids"], "ready")


def test_a_cancelled_order_s_request_stays_cancelled(runtime):
    order_id = str(uuid.uuid4())
    events = [
        fresh_example(t)
        for t in (
            "order.placed",
            "order.cancelled",
            "payment.confirmed",
            "order.documents_completed",
        )
    ]
    for event in events:
        event.data = {**event.data, "order_id": order_id}
        handle(runtime, event)
    assert progress(request_state(runtime, order_id)) == (True, True, True, "cancelled")
    client = runtime.create_app().test_client()
    answer = client.get(
        f"/v1/staff/supplier-requests/{order_id}", headers=staff_headers("alice", "support")
    )
    assert answer.get_json()["status"] == "cancelled"


@pytest.fixture
def producer(runtime, start_with_producer):
    """The consumer and relay of the supplier gateway, and the relay of orders (the producer of
    the event used below), as threads on the real broker."""
    return start_with_producer(runtime, orders_definition)


def test_an_event_from_the_broker_has_one_effect_even_when_published_twice(runtime, producer):
    first = assert_one_effect_when_published_twice(
        runtime,
        producer,
        lambda: fresh_example("order.documents_completed"),
        effects,
        "supplier request recorded",
    )
    assert request_state(runtime, first.data["order_id"]).documents_completed


def test_an_order_cancelled_through_the_broker_never_becomes_ready(runtime, producer):
    placed, cancelled, completed = (
        fresh_example(t) for t in ("order.placed", "order.cancelled", "order.documents_completed")
    )
    order_id = placed.data["order_id"]
    for event in (placed, cancelled, completed):
        event.data = {**event.data, "order_id": order_id}
        event.subject = order_id
    publish(producer, placed)
    wait_until(
        lambda: effects(runtime, placed) == 1 and request_state(runtime, order_id).order_placed,
        message="order.placed recorded",
    )
    last = None
    for event in (cancelled, completed):
        last = publish(producer, event)
    wait_until(
        lambda: inbox_rows(runtime, last.id) == 1, message="order.documents_completed handled"
    )
    paid = fresh_example("payment.confirmed")  # the payment arrives late
    paid.data = {**paid.data, "order_id": order_id}
    handle(runtime, paid)
    assert progress(request_state(runtime, order_id)) == (True, True, True, "cancelled")
