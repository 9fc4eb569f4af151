"""Fixtures of the shared library's tests; the helpers they use are in sharedkit.py.

The run-wide fixtures (settings_factory, database_url, rabbitmq_url, bus_prefix) come from
coc_shared.testing, loaded by the root conftest.py.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import kombu
import pytest
from kombu import Exchange, Queue
from sqlalchemy import Column, Integer, MetaData, String, Table

sys.path.insert(0, str(Path(__file__).parent))

from sharedkit import (
    InProcessService,
    _item_handler,
    migrate_ops,
    register_test_type,
    unique_suffix,
)

from coc_shared.bus import Broker, Publisher
from coc_shared.db import ensure_schema
from coc_shared.service import Runtime, ServiceDefinition
from coc_shared.tables import messaging_tables


@pytest.fixture
def broker(rabbitmq_url, bus_prefix) -> Broker:
    return Broker(rabbitmq_url, bus_prefix)


@pytest.fixture
def publisher(broker):
    pub = Publisher(broker, confirm_timeout=10)
    yield pub
    pub.close()


@pytest.fixture
def declare_queue(rabbitmq_url, bus_prefix, broker):
    """Declare a classic queue named with this run's prefix, bound to routing keys on the
    exchange."""
    conn = kombu.Connection(rabbitmq_url)
    channel = conn.channel()
    names = []

    def declare(routing_keys=(), arguments=None, name=None) -> str:
        name = name or f"{bus_prefix}test.{uuid.uuid4().hex[:12]}"
        exchange = Exchange(broker.exchange_name, type="topic", durable=True)
        exchange(channel).declare()
        queue = Queue(name, durable=False, auto_delete=False, queue_arguments=arguments or {})
        queue(channel).declare()
        for key in routing_keys:
            channel.queue_bind(name, exchange=broker.exchange_name, routing_key=key)
        names.append(name)
        return name

    yield declare
    for name in names:
        try:
            channel.queue_delete(name)
        except Exception:
            channel = conn.channel()
    conn.release()


@pytest.fixture
def make_service(settings_factory):
    """Build (and on teardown stop) a service with one handled test type, its own schema and
    queue."""
    made: list[InProcessService] = []

    def make(start: bool = True, **settings_overrides) -> InProcessService:
        name = f"t-{unique_suffix()}"
        schema = name.replace("-", "_")
        type_ = register_test_type()
        metadata = MetaData()
        effects = Table(
            "effects",
            metadata,
            Column("id", Integer, primary_key=True),
            Column("event_id", String(36), nullable=False),
            Column("n", Integer, nullable=False),
            schema=schema,
        )
        holder: dict = {}
        definition = ServiceDefinition(
            name=name,
            metadata=metadata,
            migrations="",
            handlers=lambda runtime: {type_: _item_handler(holder["service"])},
        )
        runtime = Runtime(definition, settings_factory(name, **settings_overrides))
        service = InProcessService(runtime=runtime, type=type_, effects=effects)
        holder["service"] = service
        migrate_ops(runtime.parking_engine)
        ensure_schema(runtime.engine, schema)
        messaging_tables(metadata, schema)
        metadata.create_all(runtime.engine)
        made.append(service)
        if start:
            service.start()
        return service

    yield make
    for service in made:
        service.close()


@pytest.fixture
def outbox_db(database_url):
    """An outbox table of its own (in a fresh schema): returns (engine, outbox)."""
    from coc_shared.db import make_engine

    engine = make_engine(database_url)
    schema = f"t_{unique_suffix()}"
    metadata = MetaData()
    outbox, _inbox = messaging_tables(metadata, schema)
    ensure_schema(engine, schema)
    metadata.create_all(engine)
    yield engine, outbox
    engine.dispose()
