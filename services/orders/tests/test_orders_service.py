"""Integration tests of the orders service on the real PostgreSQL and RabbitMQ (this run's own
database and bus prefix, from coc_shared.testing)."""

import uuid

import pytest
import structlog
import structlog.testing
from orders_helpers import place
from sqlalchemy import select

from coc_orders.adapters import tables
from coc_orders.service import definition
from coc_payments.service import definition as payments_definition
from coc_shared.export import contributions_emitted
from coc_shared.service import Runtime
from coc_shared.testing import (
    assert_handlers_work_on_sqlite,
    assert_migrated,
    assert_migrations_match_metadata,
    assert_one_effect_when_published_twice,
    assert_recorded_once,
    count_rows,
    handle,
    purge_reports_emitted,
    staff_client,
)
from coc_shared.testing import fresh_example as catalogue_example

# the status in which each lifecycle event applies
READY_FOR = {
    "payment.confirmed": "placed",
    "payment.failed": "placed",
    "documents.sent_to_supplier": "paid",
    "documents.rejected_by_supplier": "sent_to_supplier",
    "certificate.received": "sent_to_supplier",
    "certificate.shipped": "certificate_received",
    "payment.refunded": "cancelled",
    "certificate.delivered": "shipped",
    "supplier.request_overdue": "sent_to_supplier",
    "supplier.request_accepted": "sent_to_supplier",
    "invoice.issued": "paid",
    "refund.requested": "cancelled",
    "refund.completed": "cancelled",
    "refund.failed": "cancelled",
    "order.stuck": "paid",
}


@pytest.fixture
def runtime(runtime_factory):
    return runtime_factory(definition)


def fresh_example(event_type: str, rt: Runtime | None = None):
    """The catalogue's example of ``event_type``, with a new event id and new order/account ids
    (with ``rt``: the order exists there, in the status where the event applies)."""
    event = catalogue_example(
        event_type, None if rt is None else lambda: place(rt, READY_FOR[event_type])
    )
    if "refund_id" in event.data:  # a refund is one order's
        event.data = {**event.data, "refund_id": str(uuid.uuid4())}
    return event


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
    return count_rows(rt, tables.order_events, tables.order_events.c.event_id == event.id)


def test_migrate_creates_the_schema_and_runs_again_without_change(runtime):
    found = assert_migrated(
        runtime,
        {"order_events", "account_deactivations", "id_blocks", "support_records", "stuck_reports"},
        "orders_0012",
    )
    assert "pending_notifications" not in found  # orders_0003: the e-mail change is an event now


def test_migrations_create_exactly_the_tables_of_the_metadata(runtime):
    assert_migrations_match_metadata(runtime)


def test_migrations_and_handlers_work_on_sqlite(tmp_path):
    assert_handlers_work_on_sqlite(definition, tmp_path, effects, fresh_example)


@pytest.mark.parametrize("event_type", sorted(definition.handlers(None)))
def test_each_consumed_event_type_is_recorded_once(runtime, event_type):
    assert_recorded_once(runtime, fresh_example(event_type, runtime), effects)


def test_health_readiness_and_staff_only_routes(runtime):
    client, auth = staff_client(runtime)
    event = fresh_example("payment.confirmed", runtime)
    handle(runtime, event)
    path = f"/v1/staff/orders/{event.data['order_id']}/events"
    assert client.get(path).status_code == 401
    answer = client.get(path, headers=auth)
    assert answer.status_code == 200
    assert sorted((i["event_type"], i["status_after"]) for i in answer.get_json()["items"]) == [
        ("order.placed", "placed"),
        ("payment.confirmed", "paid"),
    ]


@pytest.fixture
def producer(runtime, start_with_producer):
    """The consumer and relay of the orders service, and the relay of payments (the producer of
    the event used below), as threads on the real broker."""
    return start_with_producer(runtime, payments_definition)


def test_an_event_from_the_broker_has_one_effect_even_when_published_twice(runtime, producer):
    assert_one_effect_when_published_twice(
        runtime,
        producer,
        lambda: fresh_example("payment.confirmed", runtime),
        effects,
        "payment.confirmed recorded",
    )


def test_a_confirmation_of_another_amount_is_recorded_refused_and_logged_as_an_error(runtime):
    event = fresh_example("payment.confirmed", runtime)
    event.data = {**event.data, "amount": {"amount_cents": 1, "currency": "EUR"}}
    # structlog's own capture: the stream the logging writes to depends on which test configured it
    with structlog.testing.capture_logs() as logged:
        handle(runtime, event)
    order_id = event.data["order_id"]
    with runtime.engine.connect() as conn:
        status = conn.execute(
            select(tables.orders.c.status).where(tables.orders.c.id == order_id)
        ).scalar_one()
        outcome = conn.execute(
            select(tables.order_events.c.outcome).where(tables.order_events.c.event_id == event.id)
        ).scalar_one()
    assert (status, outcome) == ("placed", "amount_mismatch")
    refused = [entry for entry in logged if entry["event"] == "order.payment_refused"]
    assert [(entry["log_level"], entry["reason"]) for entry in refused] == [
        ("error", "amount_mismatch")
    ]
