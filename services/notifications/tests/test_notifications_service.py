"""Integration tests of the notifications service on the real PostgreSQL and RabbitMQ (this run's
own database and bus prefix, from coc_shared.testing)."""

import uuid

import pytest
from sqlalchemy import select

from coc_notifications.adapters import tables
from coc_notifications.service import definition
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
    publish,
    staff_client,
    wait_until,
)


@pytest.fixture
def runtime(runtime_factory):
    return runtime_factory(definition)


def effects(rt: Runtime, event) -> int:
    """How many rows the handling of ``event`` left in the service's own tables."""
    return count_rows(rt, tables.notifications, tables.notifications.c.event_id == event.id)


def test_migrate_creates_the_schema_and_runs_again_without_change(runtime):
    assert_migrated(runtime, {"notifications"}, "notifications_0003")


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


def recipients(rt: Runtime, order_id: str) -> list:
    with rt.engine.connect() as conn:
        return (
            conn.execute(
                select(tables.notifications.c.recipient_email).where(
                    tables.notifications.c.order_id == order_id
                )
            )
            .scalars()
            .all()
        )


def kept_for_account(rt: Runtime, account_id: str) -> list:
    t = tables.notifications
    with rt.engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(t.c.template, t.c.recipient_email, t.c.confirmation_url)
                .where(t.c.account_id == account_id)
                .order_by(t.c.id)
            )
        ]


def email_change(account_id: str):
    event = fresh_example("account.email_change_requested")
    event.data = {**event.data, "account_id": account_id}
    event.subject = account_id
    event.personal = {
        "email": f"new.{uuid.uuid4().hex[:6]}@example.org",
        "confirmation_url": f"https://coc.example/confirm?token={uuid.uuid4().hex}",
    }
    return event


def test_an_email_change_keeps_the_new_address_and_the_link_until_the_account_is_deactivated(
    runtime,
):
    account_id, other_account = str(uuid.uuid4()), str(uuid.uuid4())
    change, other = email_change(account_id), email_change(other_account)
    for e in (change, other):
        handle(runtime, e)
    assert kept_for_account(runtime, account_id) == [
        ("email_change_confirmation", change.personal["email"], change.personal["confirmation_url"])
    ]
    deactivated = fresh_example("account.deactivated")
    deactivated.data = {**deactivated.data, "account_id": account_id}
    handle(runtime, deactivated)
    assert kept_for_account(runtime, account_id) == [
        ("email_change_confirmation", None, None),
        ("account_deactivated", None, None),
    ]
    assert kept_for_account(runtime, other_account) == [
        ("email_change_confirmation", other.personal["email"], other.personal["confirmation_url"])
    ]
    # a late delivery for the erased account keeps nothing personal
    late = email_change(account_id)
    handle(runtime, late)
    assert kept_for_account(runtime, account_id)[-1] == ("email_change_confirmation", None, None)


def test_an_account_deactivation_erases_the_addresses_kept_for_the_account(runtime):
    account_id = str(uuid.uuid4())
    mine, other = fresh_example("order.placed"), fresh_example("order.placed")
    mine.data = {**mine.data, "account_id": account_id}
    deactivated = fresh_example("account.deactivated")
    deactivated.data = {**deactivated.data, "account_id": account_id}
    for e in (mine, other):
        handle(runtime, e)
    assert recipients(runtime, mine.data["order_id"]) == ["emilie@example.org"]
    handle(runtime, deactivated)
    assert recipients(runtime, mine.data["order_id"]) == [None]
    assert recipients(runtime, other.data["order_id"]) == ["emilie@example.org"]
    assert effects(runtime, deactivated) == 1


@pytest.fixture
def producer(runtime, start_with_producer):
    """The consumer and relay of the notifications service, and the relay of orders (the producer of
    the event used below), as threads on the real broker."""
    return start_with_producer(runtime, orders_definition)


def test_an_email_change_from_the_broker_is_recorded_for_the_new_address(runtime, producer):
    account_id = str(uuid.uuid4())
    event = publish(producer, email_change(account_id))
    wait_until(lambda: effects(runtime, event) == 1, message="email change notification recorded")
    assert kept_for_account(runtime, account_id) == [
        ("email_change_confirmation", event.personal["email"], event.personal["confirmation_url"])
    ]


def test_an_event_from_the_broker_has_one_effect_even_when_published_twice(runtime, producer):
    assert_one_effect_when_published_twice(
        runtime, producer, lambda: fresh_example("order.placed"), effects, "notification recorded"
    )
