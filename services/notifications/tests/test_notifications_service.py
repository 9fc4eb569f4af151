"""Integration tests of the notifications service on the real PostgreSQL and RabbitMQ (this run's
own database and bus prefix, from coc_shared.testing)."""

import uuid

import pytest
from sqlalchemy import select

from coc_notifications.adapters import tables
from coc_notifications.domain.model import address_hash
from coc_notifications.service import definition
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
    publish,
    purge_reports_emitted,
    staff_client,
    wait_until,
)


@pytest.fixture
def runtime(runtime_factory):
    return runtime_factory(definition)


def effects(rt: Runtime, event) -> int:
    """How many mails the handling of ``event`` recorded (for an erasure, which mails nothing:
    the deactivation it records)."""
    if event.type == "retention.purge_requested":
        return purge_reports_emitted(rt, event)
    if event.type == "account.export_requested":
        return contributions_emitted(rt, event)
    if event.type in ("consent.given", "consent.withdrawn"):  # the address's contact
        t = tables.contacts
        return count_rows(rt, t, t.c.address_hash == address_hash(event.personal["email"]))
    if event.type == "account.erasure_requested":
        t = tables.account_deactivations
        return count_rows(rt, t, t.c.account_id == event.data["account_id"])
    return count_rows(rt, tables.mails, tables.mails.c.source_id == event.id)


def test_migrate_creates_the_schema_and_runs_again_without_change(runtime):
    assert_migrated(
        runtime, {"mails", "order_recipients", "contacts", "campaigns"}, "notifications_0005"
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
    event = fresh_example("order.placed")
    path = f"/v1/staff/orders/{event.data['order_id']}/notifications"
    handle(runtime, event)
    assert client.get(path).status_code == 401
    answer = client.get(path, headers=auth)
    assert answer.status_code == 200
    assert answer.get_json()["items"] == [
        {
            "event_id": event.id,
            "event_type": "order.placed",
            "template": "order_confirmation",
            "status": "pending",
            "has_recipient": True,
        }
    ]
    assert client.get("/v1/staff/mails").status_code == 401


def email_change(account_id: str):
    event = fresh_example("account.email_change_requested")
    event.data = {**event.data, "account_id": account_id}
    event.subject = account_id
    event.personal = {
        "email": f"new.{uuid.uuid4().hex[:6]}@example.org",
        "confirmation_url": f"https://coc.example/confirm#token={uuid.uuid4().hex}",
    }
    return event


@pytest.fixture
def producer(runtime, start_with_producer):
    """The consumer and relay of the notifications service, and the relay of orders (the producer of
    the event used below), as threads on the real broker."""
    return start_with_producer(runtime, orders_definition)


def test_an_email_change_from_the_broker_is_recorded_for_the_new_address(runtime, producer):
    account_id = str(uuid.uuid4())
    event = publish(producer, email_change(account_id))
    wait_until(lambda: effects(runtime, event) == 1, message="email change mail recorded")
    t = tables.mails
    with runtime.engine.connect() as conn:
        row = conn.execute(
            select(t.c.template, t.c.to_address, t.c.secret_url, t.c.status).where(
                t.c.source_id == event.id
            )
        ).one()
    assert tuple(row) == (
        "email_change_confirmation",
        event.personal["email"],
        event.personal["confirmation_url"],
        "pending",
    )


def test_an_event_from_the_broker_has_one_effect_even_when_published_twice(runtime, producer):
    assert_one_effect_when_published_twice(
        runtime, producer, lambda: fresh_example("order.placed"), effects, "notification recorded"
    )


def test_handles_exactly_the_event_types_the_catalogue_lists_it_as_a_consumer_of():
    from coc_notifications.domain.model import TEMPLATES
    from coc_shared.catalogue import all_event_types

    consumed = {e.type for e in all_event_types() if "notifications" in e.consumers}
    assert (
        set(definition.handlers(None))
        == consumed
        == {
            *TEMPLATES,
            "account.erasure_requested",
            "account.export_requested",
            "consent.given",
            "consent.withdrawn",
            "retention.purge_requested",
        }
    )


def test_the_transfer_reference_is_the_one_payments_matches_statements_with():
    """coc_shared.transfer took coc_payments.domain.references' function; until payments imports
    it from there, both must give the same reference."""
    from coc_payments.domain.references import creditor_reference as payments_reference
    from coc_shared.transfer import creditor_reference

    numbers = ["COC-2026-000123", "COC-2027-999999", "x" * 40, "coc-2026-7", "--"]
    assert [creditor_reference(n) for n in numbers] == [payments_reference(n) for n in numbers]
