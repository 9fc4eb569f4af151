"""Integration tests of the orders service on the real PostgreSQL and RabbitMQ (this run's own
database and bus prefix, from coc_shared.testing)."""
import threading
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select, text, update

from coc_orders.adapters import orm
from coc_orders.service import definition
from coc_payments.service import definition as payments_definition
from coc_shared.auth import issue_staff_token
from coc_shared.catalogue import example_event, lookup
from coc_shared.config import Settings
from coc_shared.consumer import HandlerContext
from coc_shared.service import Runtime
from coc_shared.testing import wait_until

from orders_helpers import place

SERVICE = "orders"
SCHEMA = "orders"


# the status in which each lifecycle event applies
READY_FOR = {"payment.confirmed": "placed", "payment.failed": "placed", "documents.sent_to_supplier": "paid",
             "documents.rejected_by_supplier": "sent_to_supplier",
             "certificate.received": "sent_to_supplier", "certificate.shipped": "certificate_received",
             "payment.refunded": "cancelled"}


@pytest.fixture
def runtime(settings_factory):
    rt = Runtime(definition, settings_factory(SERVICE, outbox_poll_seconds=0.2))
    rt.migrate()
    yield rt
    rt.engine.dispose()


def fresh_example(event_type: str, rt: Runtime | None = None):
    """The catalogue's example of ``event_type``, with a new event id and new order/account ids
    (with ``rt``: the order exists there, in the status where the event applies)."""
    event = example_event(lookup(event_type, 1))
    data = dict(event.data)
    for key in ("order_id", "account_id"):
        if data.get(key):
            data[key] = place(rt, READY_FOR[event_type]) if (key == "order_id" and rt is not None) else str(uuid.uuid4())
    event.data = data
    event.subject = data.get("order_id") or data.get("account_id")
    return event


def effects(rt: Runtime, event) -> int:
    """How many rows the handling of ``event`` left in the service's own tables."""
    if event.type == "account.deactivated":
        table, where = orm.account_deactivations, orm.account_deactivations.c.account_id == event.data["account_id"]
    else:
        table, where = orm.order_events, orm.order_events.c.event_id == event.id
    with rt.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(where)).scalar_one()


def inbox_rows(rt: Runtime, event_id: str) -> int:
    with rt.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(rt.inbox).where(rt.inbox.c.event_id == event_id)).scalar_one()


def test_migrate_creates_the_schema_and_runs_again_without_change(runtime):
    runtime.migrate()
    runtime.migrate()
    tables = set(inspect(runtime.engine).get_table_names(schema=SCHEMA))
    assert {"order_events", "account_deactivations", "outbox", "inbox", "alembic_version"} <= tables
    assert "pending_notifications" not in tables  # orders_0003: the e-mail change is an event now
    with runtime.engine.connect() as conn:
        assert conn.execute(text(f'SELECT version_num FROM "{SCHEMA}".alembic_version')).scalars().all() == ["orders_0003"]


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
        event = fresh_example(event_type, rt)
        with rt.engine.begin() as conn:
            rt.handlers[event_type](event, HandlerContext(conn, event, SERVICE))
        assert effects(rt, event) == 1
    rt.engine.dispose()


@pytest.mark.parametrize("event_type", sorted(definition.handlers(None)))
def test_each_consumed_event_type_is_recorded_once(runtime, event_type):
    event = fresh_example(event_type, runtime)
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

    event = fresh_example("payment.confirmed", runtime)
    with runtime.engine.begin() as conn:
        runtime.handlers[event.type](event, HandlerContext(conn, event, SERVICE))
    path = f"/v1/staff/orders/{event.data['order_id']}/events"
    assert client.get(path).status_code == 401
    answer = client.get(path, headers=auth)
    assert answer.status_code == 200
    assert sorted((i["event_type"], i["status_after"]) for i in answer.get_json()["items"]) == [
        ("order.placed", "placed"), ("payment.confirmed", "paid")]


@pytest.fixture
def producer(runtime, settings_factory):
    """The consumer and relay of the orders service, and the relay of payments (the producer of
    the event used below), as threads on the real broker."""
    payments = Runtime(payments_definition, settings_factory("payments", outbox_poll_seconds=0.2))
    payments.migrate()
    runtime.declare_topology()  # the queue is bound before anything is published
    stop = threading.Event()
    threads = runtime.start_worker_threads(stop) + payments.start_worker_threads(stop, consume=False)
    yield payments
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    payments.engine.dispose()


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


def test_an_event_from_the_broker_has_one_effect_even_when_published_twice(runtime, producer):
    first = publish(producer, fresh_example("payment.confirmed", runtime))
    wait_until(lambda: effects(runtime, first) == 1, message="payment.confirmed recorded")
    publish_again(producer, first.id)
    marker = publish(producer, fresh_example("payment.confirmed", runtime))  # queued behind the duplicate
    wait_until(lambda: effects(runtime, marker) == 1, message="the next event recorded")
    assert effects(runtime, first) == 1
    assert inbox_rows(runtime, first.id) == 1
