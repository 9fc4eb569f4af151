"""What a service is made of, and how it runs.

A service declares a ``ServiceDefinition`` (name, tables, event handlers, HTTP routes, migration
scripts). ``Runtime`` wires it to the configured database and broker; the same objects run in
both modes (RabbitMQ + PostgreSQL, or memory transport + SQLite), only the URLs differ.

Command line of every service (``coc-<service> <command>``)::

    migrate   create/upgrade its schema (and the ops schema), declare its queues
    api       serve its HTTP API (development server; production uses gunicorn, see Dockerfile)
    worker    run its consumer and its outbox relay until SIGTERM
    consume   run only the consumer;   relay   run only the outbox relay
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask
from sqlalchemy import MetaData

from . import keystore, tracing
from .bus import Broker, Publisher, wait_for_connection
from .config import APPLICATIONS, ConfigError, Settings
from .consumer import EventConsumer, Handler
from .db import make_engine
from .http import create_base_app
from .logging import configure_logging, get_logger, in_service
from .migrate import package_migrations, upgrade
from .outbox import OutboxRelay
from .parking import ParkingStore
from .tables import OPS_SCHEMA, messaging_tables
from .unit_of_work import StatementCache, UnitOfWork
from .worker_http import WorkerListener, worker_port

log = get_logger(__name__)
OPS_MIGRATIONS = package_migrations(__file__)


@dataclass(frozen=True)
class Sandbox:
    """A stand-in for an outside party (a bank, a supplier, a carrier, an SMTP server) that
    ``make run`` starts beside the services on a developer's machine, never in production."""

    name: str
    command: list[str]  # run with the venv's bin folder first on PATH
    address: str  # printed for the developer
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class ServiceDefinition:
    name: str
    metadata: MetaData
    migrations: str  # folder of the service's alembic scripts
    handlers: Callable[[Runtime], dict[str, Handler]] = lambda runtime: {}
    register_api: Callable[[Flask, Runtime], None] | None = None
    # Service-specific commands of `coc-<name>`: name -> function(runtime, remaining argv) -> exit
    # code.
    commands: dict[str, Callable[[Runtime, list[str]], int]] = field(default_factory=dict)
    # For `make run` only: environment defaults a developer's machine needs (e.g. a local key),
    # given the run's data folder; never applied in production, where everything is configured.
    development_defaults: Callable[[str], dict[str, str]] | None = None
    # Loops of the service's worker besides the consumer and the relay (e.g. a sender that
    # delivers what handlers recorded "to send"): name -> function(runtime, stop), run until stop.
    loops: Callable[[Runtime], dict[str, Callable[[threading.Event], None]]] | None = None
    # How much each of those loops has still to do (``/metrics``' coc_sender_backlog): name ->
    # function() -> count.
    backlogs: Callable[[Runtime], dict[str, Callable[[], int]]] | None = None
    # For `make run` only: the sandboxes of the outside parties this service talks to, given the
    # run's data folder (started before the services, stopped with them).
    sandboxes: Callable[[str], list[Sandbox]] | None = None
    # The service's own configuration object, built once from its declared variables (and the
    # raw overrides of ``Settings.extra``); available as ``runtime.config``.
    config: Callable[[dict], object] | None = None
    # Broker declarations of the service besides its event queues (e.g. the supplier gateway's
    # exchanges and queues of the suppliers): function(runtime, channel), run by `migrate`.
    topology: Callable[[Runtime, object], None] | None = None
    # Schemas another role owns in production, where the service may only write (payments:
    # ``archive``, the invoice archive): name -> folder of their alembic scripts. ``migrate``
    # migrates them where the service's role may (tests, `make run`, SQLite: a file ATTACHed like
    # the service's own), else checks their owner did (``coc_shared.migrate.upgrade``).
    foreign_schemas: dict[str, str] = field(default_factory=dict)

    @property
    def schema(self) -> str:
        return self.name.replace("-", "_")

    @property
    def schemas(self) -> tuple[str, ...]:
        """Every schema the service's connections use."""
        return (self.schema, OPS_SCHEMA, *self.foreign_schemas)


class Runtime:
    def __init__(self, definition: ServiceDefinition, settings: Settings | None = None):
        self.definition = definition
        self.settings = settings or Settings.from_env(definition.name)
        tracing.install(definition.name)
        self.config = (
            definition.config(self.settings.extra) if definition.config is not None else None
        )
        schema = definition.schema
        self.engine = make_engine(self.settings.database_url, schemas=definition.schemas)
        if self.settings.parking_database_url == self.settings.database_url:
            self.parking_engine = self.engine
        else:
            self.parking_engine = make_engine(
                self.settings.parking_database_url, schemas=(OPS_SCHEMA,)
            )
        self.outbox, self.inbox = messaging_tables(definition.metadata, schema)
        self.broker = Broker(
            self.settings.rabbitmq_url,
            self.settings.bus_prefix,
            self.settings.delivery_limit,
            ca_file=self.settings.rabbitmq_ca_file,
        )
        self._worker_engine = None
        # the data keys of the events' personal parts (ops.subject_keys): None, sealing off; on the
        # worker's engine when ops is in the same database (no ping: the store retries once)
        self.keys = keystore.from_settings(
            self.worker_engine if self.parking_engine is self.engine else self.parking_engine,
            self.settings,
        )
        self.parking = ParkingStore(self.parking_engine, keys=self.keys)
        self.statements = StatementCache()  # the unit of work's statements, built once per shape
        self._handlers: dict[str, Handler] | None = None
        self.consumer: EventConsumer | None = None

    @property
    def worker_engine(self):
        """The consumer's and relay's engine: no ping before each use (they retry on a dead
        connection)."""
        if self._worker_engine is None:
            if self.engine.dialect.name == "sqlite":
                self._worker_engine = self.engine
            else:
                self._worker_engine = make_engine(
                    self.settings.database_url,
                    schemas=self.definition.schemas,
                    pre_ping=False,
                )
        return self._worker_engine

    @property
    def handlers(self) -> dict[str, Handler]:
        if self._handlers is None:
            self._handlers = self.definition.handlers(self)
        return self._handlers

    # state changes with events
    def unit_of_work(
        self, correlation_id: str | None = None, causation_id: str | None = None
    ) -> UnitOfWork:
        """A unit of work on the pool without pre-ping: a connection found dead at the first
        statement is replaced (``reconnect``), which spares a ping per request."""
        return UnitOfWork(
            self.worker_engine,
            self.outbox,
            self.definition.name,
            correlation_id=correlation_id,
            causation_id=causation_id,
            reconnect=True,
            statements=self.statements,
            keys=self.keys,
        )

    # set-up
    def migrate(self) -> None:
        if self.definition.name not in APPLICATIONS:  # the console has no events: no ops table
            upgrade(self.parking_engine, OPS_MIGRATIONS, OPS_SCHEMA)
        for schema, migrations in self.definition.foreign_schemas.items():
            upgrade(self.engine, migrations, schema)
        upgrade(self.engine, self.definition.migrations, self.definition.schema)

    def declare_topology(self) -> None:
        conn = wait_for_connection(self.broker, what="declare")
        try:
            channel = conn.channel()
            if self.handlers:
                self.broker.declare_service(
                    channel, self.definition.name, list(self.handlers), self.settings.retry_delays
                )
            else:
                self.broker.declare_exchange(channel)
            if self.definition.topology is not None:
                self.definition.topology(self, channel)
        finally:
            conn.release()

    def broker_ready(self) -> str:
        if self.consumer is not None:
            return "ok" if self.consumer.ready.is_set() else "consumer not connected"
        conn = self.broker.connect()
        try:
            conn.ensure_connection(max_retries=1, timeout=2)
            return "ok"
        except Exception as exc:
            return f"unavailable: {type(exc).__name__}"
        finally:
            conn.release()

    def dispose(self) -> None:
        """Close every pooled database connection of this runtime."""
        for engine in {
            id(e): e
            for e in (self.engine, self.parking_engine, self._worker_engine)
            if e is not None
        }.values():
            engine.dispose()

    # parts
    def create_app(self) -> Flask:
        app = create_base_app(self)
        if self.definition.register_api is not None:
            self.definition.register_api(app, self)
        return app

    def make_consumer(self) -> EventConsumer:
        s = self.settings
        self.consumer = EventConsumer(
            service=self.definition.name,
            engine=self.worker_engine,
            inbox=self.inbox,
            outbox=self.outbox,
            broker=self.broker,
            handlers=self.handlers,
            parking=self.parking,
            prefetch=s.prefetch,
            batch_size=s.batch_size,
            quick_attempts=s.quick_attempts,
            retry_delays=s.retry_delays,
            statements=self.statements,
            verify_publishers=s.verify_publishers,
            keys=self.keys,
        )
        return self.consumer

    def make_relay(self, stop: threading.Event) -> OutboxRelay:
        publisher = Publisher(
            self.broker, confirm_timeout=self.settings.outbox_confirm_timeout, stop=stop
        )
        return OutboxRelay(
            self.worker_engine,
            self.outbox,
            publisher,
            batch_size=self.settings.outbox_batch_size,
            poll_seconds=self.settings.outbox_poll_seconds,
            retention_seconds=self.settings.outbox_retention_seconds,
        )

    def start_worker_threads(
        self, stop: threading.Event, consume: bool = True, relay: bool = True, loops: bool = True
    ) -> list[threading.Thread]:
        """The worker's parts as threads: the consumer, the outbox relay and the service's own
        loops (``ServiceDefinition.loops``), each running until ``stop`` is set."""
        threads = []
        if loops and self.definition.loops is not None:
            for name, loop in self.definition.loops(self).items():
                threads.append(
                    threading.Thread(
                        target=in_service(self.definition.name, loop),
                        args=(stop,),
                        name=f"{self.definition.name}-{name}",
                        daemon=True,
                    )
                )
        if consume and self.handlers:
            consumer = self.make_consumer()
            threads.append(
                threading.Thread(
                    target=in_service(self.definition.name, consumer.run),
                    args=(stop,),
                    name=f"{self.definition.name}-consumer",
                    daemon=True,
                )
            )
        if relay:
            threads.append(
                threading.Thread(
                    target=in_service(self.definition.name, self.make_relay(stop).run),
                    args=(stop,),
                    name=f"{self.definition.name}-relay",
                    daemon=True,
                )
            )
        for thread in threads:
            thread.start()
        return threads


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum, _frame):
        log.info("worker.stopping", signal=signum)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _run_command(command, runtime: Runtime, argv: list[str]) -> int:
    try:
        return command(runtime, argv)
    except ConfigError as exc:  # what the command needs is not configured: say which, no trace
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        return 2


def main(definition: ServiceDefinition, argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"coc-{definition.name}")
    parser.add_argument(
        "command", choices=["migrate", "api", "worker", "consume", "relay", *definition.commands]
    )
    parser.add_argument(
        "arguments", nargs=argparse.REMAINDER, help="arguments of a service-specific command"
    )
    args = parser.parse_args(argv)
    rest = args.arguments
    if rest and args.command not in definition.commands:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    runtime = Runtime(definition)
    configure_logging(definition.name, runtime.settings.log_level)
    if args.command in definition.commands:
        return _run_command(definition.commands[args.command], runtime, rest)
    if args.command == "migrate":
        runtime.migrate()
        if not runtime.settings.embedded and definition.name not in APPLICATIONS:
            runtime.declare_topology()  # an application (the console) has no queue
        log.info("migrate.done", schema=definition.schema)
        return 0
    if args.command == "api":
        app = runtime.create_app()
        log.info("api.listening", host=runtime.settings.http_host, port=runtime.settings.http_port)
        app.run(host=runtime.settings.http_host, port=runtime.settings.http_port, threaded=True)
        return 0
    stop = threading.Event()
    _stop_on_signals(stop)
    threads = runtime.start_worker_threads(
        stop,
        consume=args.command in ("worker", "consume"),
        relay=args.command in ("worker", "relay"),
        loops=args.command == "worker",
    )
    log.info("worker.started", pid=os.getpid(), parts=[t.name for t in threads])
    listener = None
    port = worker_port(runtime.settings)
    if port:
        try:
            listener = WorkerListener(runtime, threads, port)
            listener.start()
        except OSError as exc:  # the work goes on; the missing probes say so
            log.error("worker.http_unavailable", port=port, error=str(exc))
    code = 0
    while not stop.is_set():
        stop.wait(1.0)
        if not all(t.is_alive() for t in threads):
            log.error("worker.thread_died", threads=[t.name for t in threads if not t.is_alive()])
            stop.set()
            code = 1
    for t in threads:
        t.join(timeout=10)
    if listener is not None:
        listener.stop()
    return code


def wsgi_app(definition: ServiceDefinition) -> Flask:
    """Entry point for gunicorn: ``gunicorn 'coc_<svc>.entrypoints.api:create_app()'``."""
    runtime = Runtime(definition)
    configure_logging(definition.name, runtime.settings.log_level)
    return runtime.create_app()
