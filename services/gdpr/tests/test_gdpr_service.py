"""Integration tests of the gdpr service on the real PostgreSQL and RabbitMQ (this run's own
database and bus prefix, from coc_shared.testing)."""

import pytest
from sqlalchemy import select

from coc_gdpr.adapters import tables
from coc_gdpr.service import definition
from coc_orders.service import definition as orders_definition
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
    staff_client,
)


@pytest.fixture
def runtime(runtime_factory):
    return runtime_factory(definition)


def effects(rt: Runtime, event) -> int:
    """How many rows the handling of ``event`` left in the service's own tables."""
    if event.type == "marketing.unsubscribed":
        table = tables.marketing_consents
        return count_rows(rt, table, table.c.event_id == event.id)
    table = tables.deactivation_requests
    return count_rows(rt, table, table.c.account_id == event.data["account_id"])


def test_migrate_creates_the_schema_and_runs_again_without_change(runtime):
    assert_migrated(runtime, {"deactivation_requests", "marketing_consents"}, "gdpr_0003")


def test_migrations_create_exactly_the_tables_of_the_metadata(runtime):
    assert_migrations_match_metadata(runtime)


def test_migrations_and_handlers_work_on_sqlite(tmp_path):
    assert_handlers_work_on_sqlite(definition, tmp_path, effects)


@pytest.mark.parametrize("event_type", sorted(definition.handlers(None)))
def test_each_consumed_event_type_is_recorded_once(runtime, event_type):
    assert_recorded_once(runtime, fresh_example(event_type), effects)


def test_health_readiness_and_staff_only_routes(runtime):
    client, auth = staff_client(runtime)
    event = fresh_example("account.deactivation_requested")
    path = f"/v1/staff/deactivation-requests/{event.data['account_id']}"
    handle(runtime, event)
    assert client.get(path).status_code == 401
    answer = client.get(path, headers=auth)
    assert answer.status_code == 200
    [item] = answer.get_json()["items"]
    assert (item["event_id"], item["status"]) == (event.id, "pending")
    assert item["due_by"].startswith("2026-12-27T10:00:00")


def test_a_second_request_while_one_is_pending_joins_it(runtime):
    first = fresh_example("account.deactivation_requested")
    again = fresh_example("account.deactivation_requested")
    again.data = {**first.data, "requested_at": "2026-11-28T10:00:00+00:00"}
    for e in (first, again):
        handle(runtime, e)
    with runtime.engine.connect() as conn:
        rows = conn.execute(
            select(tables.deactivation_requests).where(
                tables.deactivation_requests.c.account_id == first.data["account_id"]
            )
        ).all()
    assert [(r.event_id, r.status) for r in rows] == [(first.id, "pending")]


@pytest.fixture
def producer(runtime, start_with_producer):
    """The consumer and relay of the gdpr service, and the relay of orders (the producer of
    the event used below), as threads on the real broker."""
    return start_with_producer(runtime, orders_definition)


def test_an_event_from_the_broker_has_one_effect_even_when_published_twice(runtime, producer):
    assert_one_effect_when_published_twice(
        runtime,
        producer,
        lambda: fresh_example("account.deactivation_requested"),
        effects,
        "deactivation request recorded",
    )


def test_a_withdrawal_of_marketing_consent_is_recorded_without_the_address(runtime):
    import hashlib

    event = fresh_example("marketing.unsubscribed")
    event.personal = {"email": " Emilie@Example.org "}
    handle(runtime, event)
    table = tables.marketing_consents
    with runtime.engine.connect() as conn:
        row = conn.execute(select(table).where(table.c.event_id == event.id)).one()
    assert (row.account_id, row.purpose, row.status, row.source) == (
        event.data["account_id"],
        "marketing_email",
        "withdrawn",
        "one_click",
    )
    assert row.address_sha256 == hashlib.sha256(b"emilie@example.org").hexdigest()
    assert "emilie" not in str(tuple(row)).lower()
