"""pytest plugin shared by every test folder: the real PostgreSQL and RabbitMQ, isolated per run.

* URLs come from ``DATABASE_URL`` / ``RABBITMQ_URL``, defaulting to the local services; where
  none answers and a Docker engine exists, testcontainers starts them.
* A test that needs a service fails (never skips) when it cannot be reached.
* Each run creates its own database (``coc_t_<run>``) and uses its own ``BUS_PREFIX`` so that
  parallel or earlier runs never see each other's messages; both are removed at the end.
* Helpers and fixtures for the services' tests (at the end): fresh catalogue events, handling,
  publishing through a producer's outbox, row counters and the checks every service passes.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from urllib.parse import urlparse

import pytest
from sqlalchemy import create_engine, func, inspect, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from .config import ENV_VARS, Settings
from .db import normalise_url

RUN_ID = uuid.uuid4().hex[:10]


def _staff_keys() -> tuple[str, str]:
    from .tokens import new_staff_keys

    return new_staff_keys()


# This run's staff-token key pair: services get the public key (settings_factory), tests issue
# tokens with the private one (staff_token, staff_headers).
STAFF_KEYS = _staff_keys()


def staff_token(name: str = "alice", role: str = "support", **kwargs) -> str:
    """A staff token signed with this run's private key (for every service unless ``audience``)."""
    from .tokens import issue_staff_token

    return issue_staff_token(STAFF_KEYS[0], name, role, **kwargs).token


def staff_headers(name: str = "alice", role: str = "support", **kwargs) -> dict:
    return {"Authorization": f"Bearer {staff_token(name, role, **kwargs)}"}


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=2
        ):
            return True
    except OSError:
        return False


def wait_until(
    condition, timeout: float = 30.0, interval: float = 0.05, message: str = "condition"
):
    """Poll ``condition`` until it returns a truthy value; fail the test after ``timeout``
    seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message} (last value: {last!r})")


class _Containers:
    started: list = []


def _docker_available() -> bool:
    return (
        shutil.which("docker") is not None
        and subprocess.run(["docker", "info"], capture_output=True).returncode == 0
    )


def _service_url(var: str, default_port: int, container_factory) -> str:
    url = os.environ.get(var) or ENV_VARS[var].default
    if _reachable(url, default_port):
        return url
    if not os.environ.get(var) and _docker_available():
        container, url = container_factory()
        _Containers.started.append(container)
        return url
    pytest.fail(
        f"{var}={url} is not reachable and no Docker engine can start one "
        f"(start the local service: see README 'Running the tests')",
        pytrace=False,
    )


def _postgres_container():
    from testcontainers.postgres import PostgresContainer

    container = PostgresContainer("postgres:16").start()
    return container, container.get_connection_url().replace("+psycopg2", "")


def _rabbitmq_container():
    from testcontainers.rabbitmq import RabbitMqContainer

    container = RabbitMqContainer("rabbitmq:3.13-management").start()
    params = container.get_connection_params()
    return container, f"amqp://guest:guest@{params.host}:{params.port}//"


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    return _service_url("DATABASE_URL", 5432, _postgres_container)


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    """The broker's administrator account (tests' own queues and inspection); services under test
    connect as their own users (``broker_accounts``)."""
    return _service_url("RABBITMQ_URL", 5672, _rabbitmq_container)


def admin_broker_url() -> str:
    """The administrator account's URL, for a test helper that has no fixture at hand."""
    return os.environ.get("RABBITMQ_URL") or ENV_VARS["RABBITMQ_URL"].default


@pytest.fixture(scope="session")
def database_url(postgres_server_url):
    """A database of this run's own, dropped at the end."""
    server = make_url(normalise_url(postgres_server_url))
    name = f"coc_t_{RUN_ID}"
    # No pool: a test may restart PostgreSQL, and teardown must still reach it with a new
    # connection.
    admin = create_engine(
        server.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
            {"n": name},
        )
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture(scope="session")
def bus_prefix(rabbitmq_url):
    prefix = f"t{RUN_ID}."
    yield prefix
    delete_bus_names(rabbitmq_url, prefix)


def delete_bus_names(rabbitmq_url: str, prefix: str) -> None:
    """Delete this run's queues and exchange (names are listed by rabbitmqctl where it exists)."""
    import kombu

    names = []
    if shutil.which("rabbitmqctl"):
        out = subprocess.run(
            ["rabbitmqctl", "list_queues", "-q", "--no-table-headers", "name"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        names = [n.strip() for n in out.stdout.splitlines() if n.strip().startswith(prefix)]
    with kombu.Connection(rabbitmq_url) as conn:
        channel = conn.channel()
        for name in names:
            try:
                channel.queue_delete(name)
            except Exception:
                channel = conn.channel()
        try:
            channel.exchange_delete(prefix + "coc.events")
        except Exception:
            pass


@pytest.fixture(scope="session")
def broker_accounts(rabbitmq_url, bus_prefix):
    """This run's RabbitMQ users, one per service and one for the support tools (service ->
    password), created on the local broker with ``rabbitmqctl`` (coc_shared.broker_users) and
    deleted at the end. Empty where no local ``rabbitmqctl`` can create them, except under CI,
    which must test the broker's authentication."""
    from . import broker_users

    if not shutil.which("rabbitmqctl"):
        if os.environ.get("CI"):
            pytest.fail("rabbitmqctl is needed to create the services' broker users", pytrace=False)
        yield {}
        return
    passwords = {service: uuid.uuid4().hex for service in broker_users.all_services()}
    broker_users.import_definitions(broker_users.definitions(bus_prefix, passwords))
    urls = {
        service: broker_users.with_credentials(
            rabbitmq_url, broker_users.broker_user(bus_prefix, service), password
        )
        for service, password in passwords.items()
    }
    for url in urls.values():
        wait_until(lambda url=url: _can_connect(url), timeout=30, message="the broker users")
    yield urls
    broker_users.delete_users([broker_users.broker_user(bus_prefix, s) for s in passwords])


def _can_connect(url: str) -> bool:
    import kombu

    try:
        with kombu.Connection(url, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1)
        return True
    except Exception:
        return False


TEST_KEK = base64.b64encode(b"test-key-encryption-key-32-bytes").decode()


@pytest.fixture(scope="session")
def settings_factory(database_url, rabbitmq_url, bus_prefix, broker_accounts):
    """Settings for a service under test: this run's database and bus prefix, fast retries. The
    five services (and ``support``) connect as their own broker user, and their consumers refuse
    events that their producer did not publish; other (test-only) services use the administrator
    account without that check."""

    def make(service: str, **overrides) -> Settings:
        own_url = broker_accounts.get(service)
        values = dict(
            database_url=database_url,
            parking_database_url=database_url,
            rabbitmq_url=own_url or rabbitmq_url,
            verify_publishers=own_url is not None,
            bus_prefix=bus_prefix,
            retry_delays=(0.3, 0.6),
            quick_attempts=3,
            staff_token_public_key=STAFF_KEYS[1],
            customer_token_secret="test-customer-secret-" + "y" * 32,
            personal_data_kek=TEST_KEK,  # the personal parts are sealed in every test
        )
        values.update(overrides)
        return Settings.from_env(service, **values)

    return make


def service_env(settings: Settings) -> dict:
    """Environment variables that make a child process use ``settings``."""
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": settings.database_url,
            "PARKING_DATABASE_URL": settings.parking_database_url,
            "RABBITMQ_URL": settings.rabbitmq_url,
            "BUS_PREFIX": settings.bus_prefix,
            "RETRY_DELAYS": ",".join(str(d) for d in settings.retry_delays),
            "RETRY_QUICK_ATTEMPTS": str(settings.quick_attempts),
            "STAFF_TOKEN_PUBLIC_KEY": settings.staff_token_public_key or "",
            "CUSTOMER_TOKEN_SECRET": settings.customer_token_secret or "",
            "PERSONAL_DATA_KEK": settings.personal_data_kek or "",
            "QUEUE_DELIVERY_LIMIT": str(settings.delivery_limit),
            "OUTBOX_POLL_SECONDS": "0.2",
            "BUS_VERIFY_PUBLISHERS": "true" if settings.verify_publishers else "false",
            # tests run workers side by side: a worker's listener only where a test asks for one
            "WORKER_PORT": str(settings.worker_port if settings.worker_port is not None else 0),
        }
    )
    return env


def pytest_sessionfinish(session, exitstatus):
    for container in _Containers.started:
        try:
            container.stop()
        except Exception:
            pass


# --------------------------------------------------------------------------- services' tests
# Helpers the services' test modules share. Services are described by their ServiceDefinition
# (``runtime.definition``): its name, its schema and its metadata.


def fresh_example(event_type: str, order_id: Callable[[], str] | None = None):
    """The catalogue's example of ``event_type``, with a new event id and new order/account ids
    (``order_id``, when given, makes the order id instead of a new uuid)."""
    from .catalogue import example_event, lookup

    event = example_event(lookup(event_type, 1))
    data = dict(event.data)
    for key in ("order_id", "account_id"):
        if data.get(key):
            data[key] = (
                order_id() if (key == "order_id" and order_id is not None) else str(uuid.uuid4())
            )
    event.data = data
    event.subject = data.get("order_id") or data.get("account_id")
    return event


def handle(rt, event) -> None:
    """Handle ``event`` in a transaction of ``rt`` as its consumer does (without the broker)."""
    from .consumer import HandlerContext
    from .unit_of_work import run_after_commit

    with rt.engine.begin() as conn:
        ctx = HandlerContext(conn, event, rt.definition.name, rt.outbox, rt.statements, rt.keys)
        rt.handlers[event.type](event, ctx)
        ctx.flush()
    run_after_commit(ctx.take_after_commit())


def opened(rt, body) -> dict:
    """An outbox row's body (bytes, text or a dict) as a dict whose sealed personal part is
    opened with ``rt``'s key store (``None`` when its subject is erased), as a consumer sees it."""
    import json

    from .envelope import Event

    if isinstance(body, (bytes, bytearray, memoryview, str)):
        body = json.loads(bytes(body) if not isinstance(body, str) else body)
    event = Event.from_json(json.dumps(body))
    if event.sealed is None:
        return body
    if rt.keys is not None:
        rt.keys.unseal_event(event)
    return {**body, "personal": event.personal}


def count_rows(rt, table, where) -> int:
    """How many rows of ``table`` in ``rt``'s database satisfy ``where``."""
    with rt.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(where)).scalar_one()


def inbox_rows(rt, event_id: str) -> int:
    """How many times ``rt``'s inbox recorded ``event_id`` (1 once handled, never more)."""
    return count_rows(rt, rt.inbox, rt.inbox.c.event_id == event_id)


def publish(producer, event):
    """Write ``event`` through the producer's outbox, in a transaction as the producer does."""
    with producer.unit_of_work() as uow:
        emitted = uow.emit(event.type, event.data, subject=event.subject, personal=event.personal)
        uow.commit()
    return emitted


def sent(producer, event_id: str) -> bool:
    """Whether the producer's relay marked ``event_id`` as sent."""
    with producer.engine.connect() as conn:
        return (
            conn.execute(
                select(producer.outbox.c.sent_at).where(producer.outbox.c.event_id == event_id)
            ).scalar_one_or_none()
            is not None
        )


def clear_sent_at(producer, event_id: str) -> None:
    """Mark ``event_id`` as not sent: the relay publishes it (once more), as after a crash between
    the broker's confirm and the row's update."""
    with producer.engine.begin() as conn:
        conn.execute(
            update(producer.outbox)
            .where(producer.outbox.c.event_id == event_id)
            .values(sent_at=None)
        )


def publish_again(producer, event_id: str) -> None:
    """Make the relay publish an already published event once more, as after a crash between the
    broker's confirm and the row's update."""
    wait_until(lambda: sent(producer, event_id), message="first publication")
    clear_sent_at(producer, event_id)
    wait_until(lambda: sent(producer, event_id), message="second publication")


@pytest.fixture
def runtime_factory(settings_factory):
    """Makes runtimes of a service (``runtime_factory(definition, migrate=True, **settings)``) on
    this run's database and bus prefix, migrated unless ``migrate`` is False; their engines are
    disposed at the end of the test."""
    made = []

    def make(definition, migrate: bool = True, **overrides):
        from .service import Runtime

        rt = Runtime(
            definition,
            settings_factory(definition.name, **{"outbox_poll_seconds": 0.2, **overrides}),
        )
        if migrate:
            rt.migrate()
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.dispose()


@pytest.fixture
def start_with_producer(runtime_factory):
    """``start_with_producer(consumer, producer_definition)``: the consumer and relay of the runtime
    ``consumer``, and the relay of a producer service, as threads on the real broker (the consumer's
    queue is bound before anything is published); returns the producer's runtime. The threads stop
    at the end of the test."""
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start(consumer, producer_definition):
        producer = runtime_factory(producer_definition)
        consumer.declare_topology()
        purge_queue(consumer)
        forget_unsent(producer)
        threads.extend(
            consumer.start_worker_threads(stop) + producer.start_worker_threads(stop, consume=False)
        )
        return producer

    yield start
    stop.set()
    for thread in threads:
        thread.join(timeout=10)


def forget_unsent(producer) -> None:
    """Mark what ``producer``'s outbox holds unsent as sent: events earlier tests wrote there (the
    run's tests share its database) are not for the test about to start the producer's relay."""
    with producer.engine.begin() as conn:
        conn.execute(
            update(producer.outbox)
            .where(producer.outbox.c.sent_at.is_(None))
            .values(sent_at=func.now(), last_error="left by an earlier test")
        )


def purge_queue(runtime) -> int:
    """Empty ``runtime``'s queue: the tests of a run share its queues, and what an earlier test's
    producers published is not the next test's. Returns how many messages were dropped."""
    import kombu

    with kombu.Connection(admin_broker_url()) as conn:
        return (
            conn.default_channel.queue_purge(runtime.broker.queue_name(runtime.definition.name))
            or 0
        )


def assert_migrated(rt, tables: set[str], version: str) -> set[str]:
    """Migrating ``rt`` twice more changes nothing: its schema has ``tables`` (and the outbox,
    inbox and alembic_version) at ``version``. Returns the schema's tables."""
    schema = rt.definition.schema
    rt.migrate()
    rt.migrate()
    found = set(inspect(rt.engine).get_table_names(schema=schema))
    assert set(tables) | {"outbox", "inbox", "alembic_version"} <= found
    with rt.engine.connect() as conn:
        assert conn.execute(
            text(f'SELECT version_num FROM "{schema}".alembic_version')
        ).scalars().all() == [version]
    return found


def assert_migrations_match_metadata(rt) -> None:
    """The migrations of ``rt``'s service create exactly the tables of its metadata."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    schema = rt.definition.schema

    def own_schema(name, type_, parent_names):
        if type_ == "schema":
            return name == schema
        return not (type_ == "table" and name == "alembic_version")

    with rt.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_schemas": True, "include_name": own_schema}
        )
        assert compare_metadata(context, rt.definition.metadata) == []


def assert_handlers_work_on_sqlite(definition, tmp_path, effects, make_event=None) -> None:
    """The service's migrations run (twice) on SQLite, and each of its handlers leaves one row
    there (``effects(rt, event) == 1``); ``make_event(event_type, rt)`` defaults to a fresh
    example."""
    from .service import Runtime

    make_event = make_event or (lambda event_type, rt: fresh_example(event_type))
    url = f"sqlite:///{tmp_path}/main.db"
    rt = Runtime(
        definition,
        Settings.from_env(
            definition.name, database_url=url, parking_database_url=url, rabbitmq_url="memory://"
        ),
    )
    rt.migrate()
    rt.migrate()
    for event_type in rt.handlers:
        event = make_event(event_type, rt)
        handle(rt, event)
        assert effects(rt, event) == 1
    rt.dispose()


def assert_recorded_once(rt, event, effects) -> None:
    """``event`` handled twice has one effect."""
    for _ in range(2):
        handle(rt, event)
    assert effects(rt, event) == 1


def staff_client(rt):
    """``rt``'s Flask test client, after checking health, readiness and that the staff routes
    need a staff token; returns the client and the headers of a staff member's token."""
    client = rt.create_app().test_client()
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.get_json()
    assert ready.get_json()["checks"] == {"database": "ok", "broker": "ok"}

    auth = staff_headers("alice", "support")
    assert client.get("/v1/staff/parked").status_code == 401
    parked = client.get("/v1/staff/parked", headers=auth)
    assert parked.status_code == 200 and "items" in parked.get_json()
    return client, auth


def assert_openapi_document_kept(
    client, kept, package: str, paths: set[str], staff_get: tuple[str, ...] = ()
) -> dict:
    """The OpenAPI document ``client``'s app serves at /openapi.json is the file ``kept`` in the
    repository (``services/<name>/openapi.json``, regenerated with ``python -m
    <package>.entrypoints.openapi``), an OpenAPI 3 document holding ``paths``, whose ``staff_get``
    paths' GET need a staff token. Returns the document."""
    from pathlib import Path

    from .openapi import render

    kept = Path(kept)
    served = client.get("/openapi.json")
    assert served.status_code == 200 and served.headers["X-Correlation-ID"]
    where = f"services/{kept.parent.name}/{kept.name}"
    assert render(served.get_json()) == kept.read_text(encoding="utf-8"), (
        f"regenerate it: python -m {package}.entrypoints.openapi > {where}"
    )
    doc = served.get_json()
    assert doc["openapi"].startswith("3.")
    missing = set(paths) - set(doc["paths"])
    assert not missing, f"not in the document: {sorted(missing)}"
    for path in staff_get:
        assert doc["paths"][path]["get"]["security"] == [{"staffAuth": []}], path
    return doc


def assert_one_effect_when_published_twice(runtime, producer, make_event, effects, what: str):
    """An event the producer publishes twice (``publish_again``) has one effect in ``runtime`` and
    one inbox row; a second event queued behind the duplicate shows it was delivered.
    ``make_event()`` makes a new event, ``what`` names its effect in timeout messages. Returns the
    event published twice."""
    first = publish(producer, make_event())
    wait_until(lambda: effects(runtime, first) == 1, message=what)
    publish_again(producer, first.id)
    marker = publish(producer, make_event())  # queued behind the duplicate
    wait_until(lambda: effects(runtime, marker) == 1, message="the next event recorded")
    assert effects(runtime, first) == 1
    assert inbox_rows(runtime, first.id) == 1
    return first


@pytest.fixture
def all_logs():
    """Everything logged during the test, as text: structlog's entries and the standard library's
    records (SQLAlchemy, Flask). Read from the logging itself, not from stdout or stderr, whose
    stream depends on which earlier test configured the logging."""
    import logging

    import structlog.testing

    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(
                f"{record.name} {record.levelname} {record.getMessage()} {record.exc_text or ''}"
            )
            if record.exc_info:
                records.append(logging.Formatter().formatException(record.exc_info))

    handler = Keep()
    logging.getLogger().addHandler(handler)
    with structlog.testing.capture_logs() as entries:
        yield lambda: "\n".join([*map(repr, entries), *records])
    logging.getLogger().removeHandler(handler)


def purge_reports_emitted(rt, event) -> int:
    """1 when the service reported (``retention.purged.<service>``, in the run's story: its
    correlation id) on the purge run ``event``: a purge changes only what has reached its end, so
    handling a run again changes nothing more; it is answered again, and gdpr keeps one report
    per service."""
    from .catalogue import purge_report_type

    outbox = rt.outbox
    reported = count_rows(
        rt,
        outbox,
        (outbox.c.event_type == purge_report_type(rt.definition.name))
        & (outbox.c.correlation_id == event.correlation_id),
    )
    return min(reported, 1)


@pytest.fixture
def log_stream():
    """The JSON log lines (service ``test-svc``, level DEBUG) to a StringIO; the previous logging
    configuration restored afterwards."""
    import io
    import logging

    import structlog

    from . import logging as coc_logging

    saved_config = structlog.get_config()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_configured = coc_logging._configured
    stream = io.StringIO()
    coc_logging.configure_logging("test-svc", level="DEBUG", stream=stream)
    yield stream
    structlog.configure(**saved_config)
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    coc_logging._configured = saved_configured
    structlog.contextvars.clear_contextvars()
