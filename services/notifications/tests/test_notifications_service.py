"""Integration tests of the notifications service on the real PostgreSQL and RabbitMQ (this run's own
database and bus prefix, from coc_shared.testing)."""
import threading
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select, text, update

from coc_orders.service import definition as orders_definition
from coc_notifications.adapters import orm
from coc_notifications.service import definition
from coc_shared.auth import issue_staff_token
from coc_shared.catalogue import example_event, lookup
from coc_shared.config import Settings
from coc_shared.consumer import HandlerContext
from coc_shared.service import Runtime
from coc_shared.testing import wait_until

SERVICE = "notifications"
SCHEMA = "notifications"


@pytest.fixture
def runtime(settings_factory):
    rt = Runtime(definition, settings_factory(SERVICE, outbox_poll_seconds=0.2))
    rt.migrate()
    yield rt
    rt.engine.dispose()


def fresh_example(event_type: str):
    """The catalogue's example of ``event_type``, with a new event id and new order/account ids."""
    event = example_event(lookup(event_type, 1))
    data = dict(event.data)
    for key in ("order_id", "account_id"):
        if data.get(key):
            data[key] = str(uuid.uuid4())
    event.data = data
    event.subject = data.get("order_id") or data.get("account_id")
    return event


def effects(rt: Runtime, event) -> int:
    """How many rows the handling of ``event`` left in the service's own tables."""
    table, where = orm.notifications, orm.notifications.c.event_id == event.id
    with rt.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(where)).scalar_one()


def inbox_rows(rt: Runtime, event_id: str) -> int:
    with rt.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(rt.inbox).where(rt.inbox.c.event_id == event_id)).scalar_one()


def test_migrate_creates_the_schema_and_runs_again_without_change(runtime):
    runtime.migrate()
    runtime.migrate()
    tables = set(inspect(runtime.engine).get_table_names(schema=SCHEMA))
    assert {"notifications", "outbox", "inbox", "alembic_version"} <= tables
    with runtime.engine.connect() as conn:
        assert conn.execute(text(f'SELECT version_num FROM "{SCHEMA}".alembic_version')).scalars().all() == ["notifications_0002"]


def test_migrations_create_exactly_the_tables_of_the_metadata(runtime):
    def own_schema(name, type_, parent_names):
        if type_ == "schema":
            return name == SCHEMA
        return not (type_ == "table" and name == "alembic_version")

    with runtime.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_schemas": True, "include_name": own_schema})
        assert compare_metadata(context, orm.metadata) == []


def test_migrations_and_handlers_work_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path}/main.db"
    rt = Runtime(definition, Settings.from_env(SERVICE, database_url=url, parking_database_url=url,
                                               rabbitmq_url="memory://"))
    rt.migrate()
    rt.migrate()
    for event_type in rt.handlers:
        event = fresh_example(event_type)
        with rt.engine.begin() as conn:
            rt.handlers[event_type](event, HandlerContext(conn, event, SERVICE))
        assert effects(rt, event) == 1
    rt.engine.dispose()


@pytest.mark.parametrize("event_type", sorted(definition.handlers(None)))
def test_each_consumed_event_type_is_recorded_once(runtime, event_type):
    event = fresh_example(event_type)
    for _ in range(2):
        with runtime.engine.begin() as conn:
            runtime.handlers[event_type](event, HandlerContext(conn, event, SERVICE))
    assert effects(runtime, event) == 1


def test_health_readiness_and_staff_only_routes(runtime):
    client = runtime.create_app().test_client()
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.get_json()
    assert ready.get_json()["checks"] == {"database": "ok", "broker": "ok"}

    token = issue_staff_token(runtime.settings.staff_token_secret, "alice", "support")
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/v1/staff/parked").status_code == 401
    parked = client.get("/v1/staff/parked", headers=auth)
    assert parked.status_code == 200 and "items" in parked.get_json()

    event = fresh_example("order.placed")
    path = f"/v1/staff/orders/{event.data['order_id']}/notifications"
    with runtime.engine.begin() as conn:
        runtime.handlers[event.type](event, HandlerContext(conn, event, SERVICE))
    assert client.get(path).status_code == 401
    answer = client.get(path, headers=auth)
    assert answer.status_code == 200
    assert answer.get_json()["items"] == [{"event_id": event.id, "event_type": "order.placed",
                                           "template": "order_confirmation", "status": "pending",
                                           "has_recipient": True}]


def recipients(rt: Runtime, order_id: str) -> list:
    with rt.engine.connect() as conn:
        return conn.execute(select(orm.notifications.c.recipient_email).where(
            orm.notifications.c.order_id == order_id)).scalars().all()


def handle(rt: Runtime, event) -> None:
    with rt.engine.begin() as conn:
        rt.handlers[event.type](event, HandlerContext(conn, event, SERVICE))


def kept_for_account(rt: Runtime, account_id: str) -> list:
    t = orm.notifications
    with rt.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(t.c.template, t.c.recipient_email, t.c.confirmation_url)
                                               .where(t.c.account_id == account_id).order_by(t.c.id))]


def email_change(account_id: str):
    event = fresh_example("account.email_change_requested")
    event.data = {**event.data, "account_id": account_id}
    event.subject = account_id
    event.personal = {"email": f"new.{uuid.uuid4().hex[:6]}@example.org",
                      "confirmation_url": f"https://coc.example/confirm?token={uuid.uuid4().hex}"}
    return event


def test_an_email_change_keeps_the_new_address_and_the_link_until_the_account_is_deactivated(runtime):
    account_id, other_account = str(uuid.uuid4()), str(uuid.uuid4())
    change, other = email_change(account_id), email_change(other_account)
    for e in (change, other):
        handle(runtime, e)
    assert kept_for_account(runtime, account_id) == [
        ("email_change_confirmation", change.personal["email"], change.personal["confirmation_url"])]
    deactivated = fresh_example("account.deactivated")
    deactivated.data = {**deactivated.data, "account_id": account_id}
    handle(runtime, deactivated)
    assert kept_for_account(runtime, account_id) == [("email_change_confirmation", None, None),
                                                     ("account_deactivated", None, None)]
    assert kept_for_account(runtime, other_account) == [
        ("email_change_confirmation", other.personal["email"], other.personal["confirmation_url"])]
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
        with runtime.engine.begin() as conn:
            runtime.handlers[e.type](e, HandlerContext(conn, e, SERVICE))
    assert recipients(runtime, mine.data["order_id"]) == ["emilie@example.org"]
    with runtime.engine.begin() as conn:
        runtime.handlers[deactivated.type](deactivated, HandlerContext(conn, deactivated, SERVICE))
    assert recipients(runtime, mine.data["order_id"]) == [None]
    assert recipients(runtime, other.data["order_id"]) == ["emilie@example.org"]
    assert effects(runtime, deactivated) == 1


@pytest.fixture
def producer(runtime, settings_factory):
    """The consumer and relay of the notifications service, and the relay of orders (the producer of
    the event used below), as threads on the real broker."""
    orders = Runtime(orders_definition, settings_factory("orders", outbox_poll_seconds=0.2))
    orders.migrate()
    runtime.declare_topology()  # the queue is bound before anything is published
    stop = threading.Event()
    threads = runtime.start_worker_threads(stop) + orders.start_worker_threads(stop, consume=False)
    yield orders
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    orders.engine.dispose()


def publish(producer: Runtime, event):
    """Write ``event`` through the producer's outbox, in a transaction as the producer does."""
    with producer.transaction() as tx:
        return tx.emit(event.type, event.data, subject=event.subject, personal=event.personal)


def sent(producer: Runtime, event_id: str) -> bool:
    with producer.engine.connect() as conn:
        return conn.execute(select(producer.outbox.c.sent_at).where(
            producer.outbox.c.event_id == event_id)).scalar_one_or_none() is not None


def publish_again(producer: Runtime, event_id: str) -> None:
    """Make the relay publish an already published event once more, as after a crash between the
    broker's confirm and the row's update."""
    wait_until(lambda: sent(producer, event_id), message="first publication")
    with producer.engine.begin() as conn:
        conn.execute(update(producer.outbox).where(producer.outbox.c.event_id == event_id).values(sent_at=None))
    wait_until(lambda: sent(producer, event_id), message="second publication")


def test_an_email_change_from_the_broker_is_recorded_for_the_new_address(runtime, producer):
    account_id = str(uuid.uuid4())
    event = publish(producer, email_change(account_id))
    wait_until(lambda: effects(runtime, event) == 1, message="email change notification recorded")
    assert kept_for_account(runtime, account_id) == [
        ("email_change_confirmation", event.personal["email"], event.personal["confirmation_url"])]


def test_an_event_from_the_broker_has_one_effect_even_when_published_twice(runtime, producer):
    first = publish(producer, fresh_example("order.placed"))
    wait_until(lambda: effects(runtime, first) == 1, message="notification recorded")
    publish_again(producer, first.id)
    marker = publish(producer, fresh_example("order.placed"))  # queued behind the duplicate
    wait_until(lambda: effects(runtime, marker) == 1, message="the next event recorded")
    assert effects(runtime, first) == 1
    assert inbox_rows(runtime, first.id) == 1
