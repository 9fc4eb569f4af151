"""pytest plugin shared by every test folder: the real PostgreSQL and RabbitMQ, isolated per run.

* URLs come from ``DATABASE_URL`` / ``RABBITMQ_URL``, defaulting to the local services; where
  none answers and a Docker engine exists, testcontainers starts them.
* A test that needs a service fails (never skips) when it cannot be reached.
* Each run creates its own database (``coc_t_<run>``) and uses its own ``BUS_PREFIX`` so that
  parallel or earlier runs never see each other's messages; both are removed at the end.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from urllib.parse import urlparse

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool
from sqlalchemy.engine import make_url

from .config import ENV_VARS, Settings
from .db import normalise_url

RUN_ID = uuid.uuid4().hex[:10]


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def wait_until(condition, timeout: float = 30.0, interval: float = 0.05, message: str = "condition"):
    """Poll ``condition`` until it returns a truthy value; fail the test after ``timeout`` seconds."""
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
    return shutil.which("docker") is not None and subprocess.run(
        ["docker", "info"], capture_output=True).returncode == 0


def _service_url(var: str, default_port: int, container_factory) -> str:
    url = os.environ.get(var) or ENV_VARS[var][0]
    if _reachable(url, default_port):
        return url
    if not os.environ.get(var) and _docker_available():
        container, url = container_factory()
        _Containers.started.append(container)
        return url
    pytest.fail(f"{var}={url} is not reachable and no Docker engine can start one "
                f"(start the local service: see README 'Running the tests')", pytrace=False)


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
    return _service_url("RABBITMQ_URL", 5672, _rabbitmq_container)


@pytest.fixture(scope="session")
def database_url(postgres_server_url):
    """A database of this run's own, dropped at the end."""
    server = make_url(normalise_url(postgres_server_url))
    name = f"coc_t_{RUN_ID}"
    # No pool: a test may restart PostgreSQL, and teardown must still reach it with a new connection.
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
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
        out = subprocess.run(["rabbitmqctl", "list_queues", "-q", "--no-table-headers", "name"],
                             capture_output=True, text=True, timeout=60)
        names = [n.strip() for n in out.stdout.splitlines() if n.strip().startswith(prefix)]
    with kombu.Connection(rabbitmq_url) as conn:
        channel = conn.channel()
        for name in names:
            try:
                channel.queue_delete(name)
            except Exception:  # noqa: BLE001 - best effort cleanup
                channel = conn.channel()
        try:
            channel.exchange_delete(prefix + "coc.events")
        except Exception:  # noqa: BLE001
            pass


@pytest.fixture(scope="session")
def settings_factory(database_url, rabbitmq_url, bus_prefix):
    """Settings for a service under test: this run's database and bus prefix, fast retries."""
    def make(service: str, **overrides) -> Settings:
        values = dict(database_url=database_url, parking_database_url=database_url, rabbitmq_url=rabbitmq_url,
                      bus_prefix=bus_prefix, retry_delays=(0.3, 0.6), quick_attempts=3,
                      staff_token_secret="test-secret-" + "x" * 32,
                      customer_token_secret="test-customer-secret-" + "y" * 32)
        values.update(overrides)
        return Settings.from_env(service, **values)
    return make


def service_env(settings: Settings) -> dict:
    """Environment variables that make a child process use ``settings``."""
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": settings.database_url, "PARKING_DATABASE_URL": settings.parking_database_url,
        "RABBITMQ_URL": settings.rabbitmq_url, "BUS_PREFIX": settings.bus_prefix,
        "RETRY_DELAYS": ",".join(str(d) for d in settings.retry_delays),
        "RETRY_QUICK_ATTEMPTS": str(settings.quick_attempts),
        "STAFF_TOKEN_SECRET": settings.staff_token_secret or "",
        "CUSTOMER_TOKEN_SECRET": settings.customer_token_secret or "",
        "QUEUE_DELIVERY_LIMIT": str(settings.delivery_limit),
        "OUTBOX_POLL_SECONDS": "0.2",
    })
    return env


def pytest_sessionfinish(session, exitstatus):
    for container in _Containers.started:
        try:
            container.stop()
        except Exception:  # noqa: BLE001
            pass
