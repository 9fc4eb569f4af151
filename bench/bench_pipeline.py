#!/usr/bin/env python
"""Benchmark of the event pipeline (coc_shared) against a raw pika + psycopg reference.

Run by hand: ``.venv/bin/python bench/bench_pipeline.py`` (or ``make bench``); ``--help`` lists the
options. It is not a test: it prints figures, each beside its target and a raw reference measured
in the same run on the same machine, and profiles the parts that miss their target.

1. relay     OutboxRelay publishing N outbox rows with publisher confirms (rows marked sent), vs
             psycopg SELECT + pika publish (confirm one by one, and batched with
             SelectConnection) + UPDATE.
2. consumer  one EventConsumer process handling N preloaded messages (handler: one insert +
             ctx.emit; effects + inbox + outbox in one transaction per batch), vs pika
             basic_consume + psycopg doing the three inserts per message, one transaction per
             batch, ack after commit.
3. latency   producer (1 event per transaction at a steady rate) -> relay -> consumer, three
             processes; latency = effect committed - event committed, p50/p99/max; same with the
             raw pieces.

It creates its own database (``coc_bench_<run>``) and BUS_PREFIX (``bench<run>.``) like
coc_shared.testing does, and removes both at the end. Logs of the framework processes (JSON lines at
LOG_LEVEL, INFO by default, as in production) go to a temporary file, deleted unless --keep-logs.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import logging
import multiprocessing as mp
import os
import platform
import pstats
import queue
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from datetime import UTC, datetime
from urllib.parse import unquote, urlparse

import pika
import psycopg
from marshmallow import fields
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    text,
)
from sqlalchemy.engine import make_url

from coc_shared.bus import Broker, OutgoingMessage, Publisher
from coc_shared.catalogue import EventType, TolerantSchema, register
from coc_shared.config import Settings
from coc_shared.consumer import EventConsumer
from coc_shared.db import ensure_schema, normalise_url
from coc_shared.envelope import Event
from coc_shared.logging import configure_logging
from coc_shared.migrate import upgrade
from coc_shared.outbox import notify_channel
from coc_shared.service import OPS_MIGRATIONS, Runtime, ServiceDefinition
from coc_shared.tables import OPS_SCHEMA, create_outbox_notify_trigger, messaging_tables

TARGET_RELAY = 3000.0  # events/s
TARGET_CONSUMER = 1000.0  # events/s
TARGET_P99_MS = 50.0

# ---------------------------------------------------------------------------------------------
# The bench service: a real ServiceDefinition on the shared runtime (its own schema and tables).
# ---------------------------------------------------------------------------------------------
SERVICE = "bench"
SCHEMA = "bench"
PING, HANDLED = "bench.ping", "bench.handled"
metadata = MetaData(schema=SCHEMA)
effects = Table(
    "effects",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("event_id", String(36), nullable=False),
    Column("seq", Integer, nullable=False),
    # the handler's clock: when the effect row was written (committed a few ms later with its batch)
    Column(
        "handled_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=text("clock_timestamp()"),
    ),
)
OUTBOX, INBOX = messaging_tables(metadata, SCHEMA)


class PingV1(TolerantSchema):
    seq = fields.Integer(required=True)


class HandledV1(TolerantSchema):
    seq = fields.Integer(required=True)


register(EventType(PING, 1, SERVICE, (SERVICE,), PingV1, None, "Benchmark event.", {"seq": 1}))
register(
    EventType(
        HANDLED,
        1,
        SERVICE,
        ("bench-sink",),
        HandledV1,
        None,
        "Emitted by the benchmark handler.",
        {"seq": 1},
    )
)


def bench_handlers(runtime: Runtime):
    def on_ping(event, ctx):
        ctx.add(effects, {"event_id": event.id, "seq": event.data["seq"]})
        ctx.emit(HANDLED, {"seq": event.data["seq"]})

    return {PING: on_ping}


DEFINITION = ServiceDefinition(
    name=SERVICE, metadata=metadata, migrations="", handlers=bench_handlers
)


def make_runtime(cfg: dict) -> Runtime:
    settings = Settings.from_env(
        SERVICE,
        database_url=cfg["db_url"],
        parking_database_url=cfg["db_url"],
        rabbitmq_url=cfg["amqp_url"],
        bus_prefix=cfg["prefix"],
        log_level=cfg["log_level"],
    )
    return Runtime(DEFINITION, settings)


def setup_logging(cfg: dict) -> None:
    configure_logging(SERVICE, cfg["log_level"], stream=open(cfg["log_path"], "a", buffering=1))
    logging.getLogger("pika").setLevel(logging.WARNING)


# ---------------------------------------------------------------------------------------------
# Names, set-up and clean-up
# ---------------------------------------------------------------------------------------------
def queue_names(cfg: dict) -> dict:
    broker = Broker(cfg["amqp_url"], cfg["prefix"])
    q = broker.queue_name(SERVICE)
    sink = broker.queue_name("bench-sink")
    retry = [broker.retry_queue_name(q, d) for d in cfg["retry_delays"]]
    return {
        "queue": q,
        "sink": sink,
        "exchange": broker.exchange_name,
        "all": [q, broker.dead_queue_name(q), *retry, sink, broker.dead_queue_name(sink)],
    }


def pika_params(cfg: dict) -> pika.ConnectionParameters:
    """The kombu-style URL (``amqp://u:p@host:port//``, vhost "/") as pika parameters."""
    u = urlparse(cfg["amqp_url"])
    vhost = unquote(u.path[1:]) if len(u.path) > 1 else "/"
    return pika.ConnectionParameters(
        host=u.hostname or "127.0.0.1",
        port=u.port or 5672,
        virtual_host=vhost or "/",
        credentials=pika.PlainCredentials(
            unquote(u.username or "guest"), unquote(u.password or "guest")
        ),
    )


def amqp(cfg: dict) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika_params(cfg))


def broker_blocked(cfg: dict, wait: float = 3.0) -> bool:
    """True when the broker blocks publishers (memory or disk alarm): a confirmed publish stalls."""
    params = pika_params(cfg)
    params.blocked_connection_timeout = wait
    conn = pika.BlockingConnection(params)
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.basic_publish(
            "", f"{cfg['prefix']}no-such-queue", b"probe"
        )  # routed nowhere, confirmed at once
        return False
    except (pika.exceptions.ConnectionBlockedTimeout, pika.exceptions.AMQPConnectionError):
        return True
    finally:
        if conn.is_open:
            conn.close()


def wait_for_unblocked_broker(cfg: dict, max_wait: float) -> None:
    deadline = time.monotonic() + max_wait
    warned = False
    while broker_blocked(cfg):
        if not warned:
            print(
                "   RabbitMQ blocks publishers (resource alarm, e.g. vm_memory_high_watermark 0 "
                f"set by a test); waiting up to {max_wait:.0f} s for it to clear ...",
                flush=True,
            )
            warned = True
        if time.monotonic() > deadline:
            raise RuntimeError(
                "RabbitMQ still blocks publishers (resource alarm); re-run when it is cleared"
            )
        time.sleep(5)


def queue_depth(cfg: dict, name: str) -> int:
    conn = amqp(cfg)
    try:
        return conn.channel().queue_declare(name, passive=True).method.message_count
    finally:
        conn.close()


def purge(cfg: dict, *names: str) -> None:
    conn = amqp(cfg)
    try:
        ch = conn.channel()
        for name in names:
            ch.queue_purge(name)
    finally:
        conn.close()


def pg(cfg: dict, autocommit: bool = True) -> psycopg.Connection:
    return psycopg.connect(cfg["dsn"], autocommit=autocommit, connect_timeout=5)


def sql(cfg: dict, statement: str, params=None):
    with pg(cfg) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else None


def reset_tables(cfg: dict) -> None:
    sql(cfg, f"TRUNCATE {SCHEMA}.outbox, {SCHEMA}.inbox, {SCHEMA}.effects RESTART IDENTITY")


def counts(cfg: dict) -> dict:
    row = sql(
        cfg,
        f"SELECT (SELECT count(*) FROM {SCHEMA}.effects), (SELECT count(*) FROM {SCHEMA}.inbox), "
        f"(SELECT count(*) FROM {SCHEMA}.outbox), "
        f"(SELECT count(*) FROM {SCHEMA}.outbox WHERE sent_at IS NOT NULL)",
    )[0]
    return dict(zip(("effects", "inbox", "outbox", "sent"), row))


def create_environment(cfg: dict) -> None:
    server = make_url(normalise_url(cfg["server_url"]))
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{cfg["db_name"]}"'))
    admin.dispose()
    runtime = make_runtime(cfg)
    upgrade(runtime.engine, OPS_MIGRATIONS, OPS_SCHEMA)
    ensure_schema(runtime.engine, SCHEMA)
    metadata.create_all(runtime.engine)
    with runtime.engine.begin() as conn:
        create_outbox_notify_trigger(conn, SCHEMA)  # as the services' migrations do
    runtime.declare_topology()  # exchange, service queue bound to bench.ping, dead and delay queues
    conn = runtime.broker.connect()
    try:
        # a downstream queue for the events the handler emits, so that the relay can route them
        runtime.broker.declare_service(conn.channel(), "bench-sink", [HANDLED], ())
    finally:
        conn.release()
    runtime.engine.dispose()


def destroy_environment(cfg: dict) -> None:
    names = queue_names(cfg)
    queues = set(names["all"])
    if shutil.which("rabbitmqctl"):
        try:
            out = subprocess.run(
                ["rabbitmqctl", "list_queues", "-q", "--no-table-headers", "name"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            queues |= {
                n.strip() for n in out.stdout.splitlines() if n.strip().startswith(cfg["prefix"])
            }
        except Exception:
            pass
    error = None
    for _attempt in range(5):
        try:
            conn = amqp(cfg)
            for name in sorted(queues):
                try:
                    conn.channel().queue_delete(name)
                except pika.exceptions.ChannelClosedByBroker:
                    pass
            conn.channel().exchange_delete(names["exchange"])
            conn.close()
            error = None
            break
        except Exception as exc:
            error = exc
            time.sleep(2)
    if error is not None:
        print(f"  (clean-up of the bus names {cfg['prefix']}* failed: {error!r})")
    try:
        server = make_url(normalise_url(cfg["server_url"]))
        admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": cfg["db_name"]},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{cfg["db_name"]}"'))
        admin.dispose()
    except Exception as exc:
        print(f"  (dropping database {cfg['db_name']} failed: {exc})")


# ---------------------------------------------------------------------------------------------
# Untimed preparation
# ---------------------------------------------------------------------------------------------
def fill_outbox(cfg: dict, n: int, per_tx: int = 2000) -> None:
    """N bench.ping events written through Runtime.unit_of_work()/uow.emit, in big transactions."""
    runtime = make_runtime(cfg)
    for start in range(0, n, per_tx):
        with runtime.unit_of_work() as uow:
            for i in range(start, min(n, start + per_tx)):
                uow.emit(PING, {"seq": i}, subject=f"order-{i}")
            uow.commit()
    runtime.engine.dispose()
    sql(cfg, f"ANALYZE {SCHEMA}.outbox")


def preload_queue(cfg: dict, n: int) -> None:
    """N bench.ping envelopes in the service's queue (published with confirms by the shared
    Publisher)."""
    broker = Broker(cfg["amqp_url"], cfg["prefix"])
    publisher = Publisher(broker)
    try:
        for start in range(0, n, 1000):
            batch = []
            for i in range(start, min(n, start + 1000)):
                ev = Event(
                    type=PING,
                    data={"seq": i},
                    producer=SERVICE,
                    correlation_id=str(uuid.uuid4()),
                    subject=f"order-{i}",
                )
                batch.append(
                    OutgoingMessage(
                        message_id=ev.id,
                        body=ev.to_json(),
                        routing_key=PING,
                        event_type=PING,
                        correlation_id=ev.correlation_id,
                    )
                )
            result = publisher.publish_batch(batch)
            if result.failed:
                raise RuntimeError(f"preload: {len(result.failed)} messages not confirmed")
    finally:
        publisher.close()
    name = queue_names(cfg)["queue"]
    deadline = time.monotonic() + 10
    while queue_depth(cfg, name) < n and time.monotonic() < deadline:
        time.sleep(0.1)


# ---------------------------------------------------------------------------------------------
# Child processes (spawned: each has its own interpreter, GIL, connections)
# ---------------------------------------------------------------------------------------------
def _child(fn, cfg, out, *args):
    try:
        out.put(("ok", fn(cfg, *args)))
    except BaseException as exc:
        out.put(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))


def _result(proc, out, name: str, timeout: float):
    """The child's (status, value), or an error if it died without one or took too long."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                status, value = out.get(timeout=1.0)
                break
            except queue.Empty:
                if not proc.is_alive():
                    try:
                        status, value = out.get(timeout=1.0)
                        break
                    except queue.Empty:
                        raise RuntimeError(
                            f"{name}: its process died (exit code {proc.exitcode})"
                        ) from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name}: no result within {timeout:.0f} s") from None
    finally:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.terminate()
    if status != "ok":
        raise RuntimeError(f"{name} failed in its process: {value}")
    return value


def run_child(fn, cfg, *args, timeout: float = 900):
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_child, args=(fn, cfg, out, *args), daemon=True)
    proc.start()
    return _result(proc, out, fn.__name__, timeout)


class Background:
    """A child process that runs until told to stop, then hands back its result."""

    def __init__(self, fn, cfg, *args):
        ctx = mp.get_context("spawn")
        self.stop = ctx.Event()
        self.ready = ctx.Event()
        self.out = ctx.Queue()
        self.name = fn.__name__
        self.proc = ctx.Process(
            target=_child, args=(fn, cfg, self.out, self.stop, self.ready, *args), daemon=True
        )
        self.proc.start()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.2):
            if not self.proc.is_alive() or time.monotonic() > deadline:
                self.finish(timeout=1)
                raise RuntimeError(f"{self.name} did not get ready")

    def finish(self, timeout: float = 60):
        self.stop.set()
        return _result(self.proc, self.out, self.name, timeout)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class MachineLoad:
    """CPU busy share of the whole machine (every process, ours and others') between start and
    stop."""

    @staticmethod
    def _sample():
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        idle = values[3] + values[4]
        return sum(values), idle

    def __init__(self):
        self.start = self._sample()

    def busy(self) -> float:
        total, idle = self._sample()
        d_total, d_idle = total - self.start[0], idle - self.start[1]
        return 1.0 - d_idle / d_total if d_total else float("nan")


QUIET = {"max_wait": 120.0, "threshold": 0.25}


def wait_for_quiet_machine() -> None:
    """Other work shares this machine's cores: before a measurement, wait (up to QUIET['max_wait']
    s) until the machine was less than QUIET['threshold'] busy over 2 s; the busy share during each
    measurement is printed beside it anyway."""
    deadline = time.monotonic() + QUIET["max_wait"]
    waited = False
    while True:
        load = MachineLoad()
        time.sleep(2)
        busy = load.busy()
        if busy < QUIET["threshold"] or time.monotonic() > deadline:
            if waited:
                print(f"   (waited for a quieter machine: now {busy:.0%} busy)", flush=True)
            return
        waited = True


class ServerCPU:
    """CPU seconds used by the PostgreSQL and RabbitMQ processes between start and stop (Linux
    /proc). All of their processes count, so other work on the same servers is included. Sampled
    every 0.25 s in a thread, so that a backend whose connection closes before the end still
    counts."""

    NAMES = {"postgres": "postgres", "beam.smp": "rabbitmq"}

    @classmethod
    def _sample(cls) -> dict:
        ticks = os.sysconf("SC_CLK_TCK")
        seen = {}
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    data = f.read()
            except OSError:
                continue
            server = cls.NAMES.get(data[data.index("(") + 1 : data.rindex(")")])
            if server:
                fields_ = data[data.rindex(")") + 2 :].split()
                seen[pid] = (server, (int(fields_[11]) + int(fields_[12])) / ticks)  # utime + stime
        return seen

    def __init__(self):
        self.first = self.last = None
        self._stop = threading.Event()
        try:
            self.first = self._sample()
        except Exception:
            return
        self.last = dict(self.first)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(0.25):
            self.last.update(self._sample())

    def used(self) -> dict:
        if self.first is None:
            return {}
        self._stop.set()
        self._thread.join()
        self.last.update(self._sample())
        totals = {"postgres": 0.0, "rabbitmq": 0.0}
        for pid, (server, cpu) in self.last.items():
            totals[server] += cpu - self.first.get(pid, (server, 0.0))[1]
        return totals


def _profiled(profile_path: str | None):
    """cProfile with its default (wall-clock) timer: waiting for PostgreSQL shows up in
    psycopg's ``wait``, waiting for RabbitMQ in ``recv``/``select``. (A CPU timer, time.thread_time,
    costs a system call per function call and distorts the shares far more.)"""
    return cProfile.Profile() if profile_path else None


def _run_profiled(prof, fn, *args):
    """Run fn in the current thread under prof (a profiler only sees the thread that enabled it)."""
    if prof is None:
        return fn(*args)
    prof.enable()
    try:
        return fn(*args)
    finally:
        prof.disable()


# --- 1. relay -------------------------------------------------------------------------------
def fw_relay_burst(cfg: dict, profile_path: str | None = None) -> dict:
    """OutboxRelay.publish_pending until the outbox has no unsent row (what OutboxRelay.run
    does)."""
    setup_logging(cfg)
    runtime = make_runtime(cfg)
    stop = threading.Event()
    relay = runtime.make_relay(stop)
    relay.publisher._ensure()  # connect and declare before the clock starts
    with runtime.engine.connect():
        pass
    prof = _profiled(profile_path)
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    if prof:
        prof.enable()
    total = 0
    while True:
        n = relay.publish_pending()
        total += n
        if n == 0:
            break
    if prof:
        prof.disable()
    elapsed = time.perf_counter() - t0
    cpu = cpu_seconds() - cpu0
    if prof:
        prof.dump_stats(profile_path)
    relay.publisher.close()
    runtime.engine.dispose()
    return {"published": total, "seconds": elapsed, "cpu": cpu, "batch": relay.batch_size}


SELECT_UNSENT = (
    f"SELECT seq, event_id, event_type, correlation_id, body, attempts FROM {SCHEMA}.outbox "
    "WHERE sent_at IS NULL AND (next_attempt_at IS NULL OR next_attempt_at <= %s) "
    "ORDER BY seq LIMIT %s FOR UPDATE SKIP LOCKED"
)
MARK_SENT = f"UPDATE {SCHEMA}.outbox SET sent_at = %s WHERE seq = ANY(%s)"


def _props(event_id, event_type, correlation_id) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type="application/json",
        content_encoding="utf-8",
        delivery_mode=2,
        message_id=event_id,
        correlation_id=correlation_id,
        type=event_type,
        headers={},
    )


def _raw_publish_pending_blocking(db, ch, exchange: str, batch: int) -> int:
    """One batch: SELECT unsent rows, publish each waiting for its confirm, UPDATE sent, COMMIT."""
    rows = db.execute(SELECT_UNSENT, (datetime.now(UTC), batch)).fetchall()
    if not rows:
        db.rollback()
        return 0
    sent = []
    for seq, event_id, event_type, correlation_id, body, _attempts in rows:
        try:
            ch.basic_publish(
                exchange,
                event_type,
                bytes(body),
                _props(event_id, event_type, correlation_id),
                mandatory=True,
            )
            sent.append(seq)
        except (pika.exceptions.UnroutableError, pika.exceptions.NackError):
            pass
    if sent:
        db.execute(MARK_SENT, (datetime.now(UTC), sent))
    db.commit()
    return len(sent)


def raw_relay_blocking_burst(cfg: dict, limit: int) -> dict:
    """psycopg + pika BlockingConnection with confirm_delivery: every publish waits for its
    confirm."""
    exchange = queue_names(cfg)["exchange"]
    db = pg(cfg, autocommit=False)
    conn = amqp(cfg)
    ch = conn.channel()
    ch.confirm_delivery()
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    total = 0
    while total < limit:
        n = _raw_publish_pending_blocking(db, ch, exchange, min(500, limit - total))
        total += n
        if n == 0:
            break
    elapsed = time.perf_counter() - t0
    cpu = cpu_seconds() - cpu0
    conn.close()
    db.close()
    return {"published": total, "seconds": elapsed, "cpu": cpu}


class _AsyncRawRelay:
    """psycopg + pika SelectConnection with asynchronous confirms: a batch of up to 500 rows is
    published at once, its confirms (often 'multiple') are awaited together, then the rows are
    marked sent and the next batch selected; the same protocol as OutboxRelay."""

    def __init__(self, cfg: dict, batch: int = 500):
        self.cfg = cfg
        self.batch = batch
        self.exchange = queue_names(cfg)["exchange"]
        self.db = pg(cfg, autocommit=False)
        self.tag = 0
        self.low = 1
        self.pending: dict[int, tuple[int, str]] = {}
        self.acked: list[int] = []
        self.returned: set[str] = set()
        self.published = self.failed = 0
        self.t0 = self.t1 = None
        self.cpu0 = self.cpu = 0.0
        self.error = None
        self.conn = pika.SelectConnection(
            pika_params(cfg),
            on_open_callback=self._on_open,
            on_open_error_callback=self._on_error,
            on_close_callback=lambda c, r: c.ioloop.stop(),
        )

    def run(self) -> dict:
        self.conn.ioloop.start()
        self.db.close()
        if self.error:
            raise RuntimeError(self.error)
        return {
            "published": self.published,
            "failed": self.failed,
            "seconds": self.t1 - self.t0,
            "cpu": self.cpu,
        }

    def _on_error(self, conn, err):
        self.error = f"connection failed: {err}"
        conn.ioloop.stop()

    def _on_open(self, conn):
        conn.channel(on_open_callback=self._on_channel)

    def _on_channel(self, ch):
        self.ch = ch
        ch.add_on_return_callback(lambda _ch, _m, props, _b: self.returned.add(props.message_id))
        ch.confirm_delivery(ack_nack_callback=self._on_confirm, callback=self._start)

    def _start(self, _frame):
        self.cpu0 = cpu_seconds()
        self.t0 = time.perf_counter()
        self._next_batch()

    def _next_batch(self):
        rows = self.db.execute(SELECT_UNSENT, (datetime.now(UTC), self.batch)).fetchall()
        if not rows:
            self.db.rollback()
            self.t1 = time.perf_counter()
            self.cpu = cpu_seconds() - self.cpu0
            self.conn.close()
            return
        self.acked = []
        for seq, event_id, event_type, correlation_id, body, _attempts in rows:
            self.tag += 1
            self.pending[self.tag] = (seq, event_id)
            self.ch.basic_publish(
                self.exchange,
                event_type,
                bytes(body),
                _props(event_id, event_type, correlation_id),
                mandatory=True,
            )

    def _on_confirm(self, frame):
        method = frame.method
        ok = isinstance(method, pika.spec.Basic.Ack)
        tags = (
            range(self.low, method.delivery_tag + 1) if method.multiple else (method.delivery_tag,)
        )
        for tag in tags:
            entry = self.pending.pop(tag, None)
            if entry is None:
                continue
            seq, event_id = entry
            if ok and event_id not in self.returned:
                self.acked.append(seq)
            else:
                self.failed += 1
        while self.low <= self.tag and self.low not in self.pending:
            self.low += 1
        if not self.pending:
            if self.acked:
                self.db.execute(MARK_SENT, (datetime.now(UTC), self.acked))
                self.published += len(self.acked)
            self.db.commit()
            self.returned.clear()
            self.conn.ioloop.call_later(0, self._next_batch)


def raw_relay_async_burst(cfg: dict) -> dict:
    return _AsyncRawRelay(cfg).run()


# --- 2. consumer ----------------------------------------------------------------------------
class BenchConsumer(EventConsumer):
    """EventConsumer, unchanged, with observation only: counts handled messages (stops at
    ``target``) and records, per event, the time its transaction's COMMIT returned."""

    def __init__(
        self,
        *args,
        target: int | None = None,
        profile: cProfile.Profile | None = None,
        record: bool = False,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.target = target
        self.profile = profile
        self.record = record
        self.handled = 0
        self.t0 = self.t_end = None
        self.cpu0 = self.cpu = 0.0
        self.committed_at: dict[str, float] = {}

    def _collect(self, conn) -> None:
        if self.t0 is None:
            self.t0 = time.perf_counter()
            self.cpu0 = cpu_seconds()
            if self.profile:
                self.profile.enable()
        super()._collect(conn)

    def _handle_in_transaction(self, batch) -> None:
        super()._handle_in_transaction(batch)
        if self.record:
            now = time.time()
            for item in batch:
                if item.outcome == "done":
                    self.committed_at[item.event.id] = now

    def _process(self, batch, retry_publisher, stop) -> None:
        super()._process(batch, retry_publisher, stop)
        self.handled += len(batch)
        if self.target is not None and self.handled >= self.target:
            self.t_end = time.perf_counter()
            self.cpu = cpu_seconds() - self.cpu0
            if self.profile:
                self.profile.disable()
            stop.set()


def _make_bench_consumer(runtime: Runtime, **kwargs) -> BenchConsumer:
    s = runtime.settings
    return BenchConsumer(
        service=SERVICE,
        engine=runtime.worker_engine,
        inbox=runtime.inbox,
        outbox=runtime.outbox,
        broker=runtime.broker,
        handlers=runtime.handlers,
        parking=runtime.parking,
        prefetch=s.prefetch,
        batch_size=s.batch_size,
        quick_attempts=s.quick_attempts,
        retry_delays=s.retry_delays,
        **kwargs,
    )


def fw_consumer_burst(cfg: dict, n: int, profile_path: str | None = None) -> dict:
    setup_logging(cfg)
    runtime = make_runtime(cfg)
    prof = _profiled(profile_path)
    consumer = _make_bench_consumer(runtime, target=n, profile=prof)
    stop = threading.Event()
    timer = threading.Timer(600, stop.set)  # safety net
    timer.daemon = True
    timer.start()
    consumer.run(stop)
    timer.cancel()
    if prof:
        prof.dump_stats(profile_path)
    runtime.engine.dispose()
    if consumer.t_end is None:
        raise RuntimeError(f"consumer handled only {consumer.handled} of {n}")
    return {
        "handled": consumer.handled,
        "seconds": consumer.t_end - consumer.t0,
        "cpu": consumer.cpu,
        "prefetch": consumer.prefetch,
        "batch": consumer.batch_size,
    }


RAW_INBOX = (
    f"INSERT INTO {SCHEMA}.inbox (queue, event_id, event_type, handled_at) VALUES (%s, %s, %s, %s)"
)
RAW_EFFECT = f"INSERT INTO {SCHEMA}.effects (event_id, seq) VALUES (%s, %s)"
RAW_OUTBOX = (
    f"INSERT INTO {SCHEMA}.outbox (event_id, event_type, correlation_id, subject, body, "
    "created_at, attempts) VALUES (%s, %s, %s, %s, %s, %s, 0)"
)


def _envelope(
    type_: str, data: dict, correlation_id: str, causation_id: str | None, subject: str | None
):
    now = datetime.now(UTC)
    event_id = str(uuid.uuid4())
    body = json.dumps(
        {
            "id": event_id,
            "type": type_,
            "version": 1,
            "occurred_at": now.isoformat(),
            "producer": SERVICE,
            "correlation_id": correlation_id,
            "causation_id": causation_id,
            "subject": subject,
            "data": data,
        },
        separators=(",", ":"),
    ).encode()
    return event_id, body, now


def _raw_consume(
    cfg: dict,
    n: int | None,
    stop_evt=None,
    ready_evt=None,
    prefetch: int = 200,
    batch_size: int = 100,
) -> dict:
    """pika basic_consume (prefetch) + psycopg: per message an inbox, an effect and an outbox
    insert; one transaction per batch of what has arrived (up to batch_size), multiple-ack after
    commit."""
    qname = queue_names(cfg)["queue"]
    channel_name = notify_channel(SCHEMA)
    db = pg(cfg, autocommit=False)
    conn = amqp(cfg)
    ch = conn.channel()
    ch.basic_qos(prefetch_count=prefetch)
    buf: list = []
    ch.basic_consume(
        qname, on_message_callback=lambda _c, m, p, b: buf.append((m, p, b)), auto_ack=False
    )
    if ready_evt is not None:
        ready_evt.set()
    committed_at: dict[str, float] = {}
    handled = 0
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    while (n is None or handled < n) and not (stop_evt is not None and stop_evt.is_set()):
        if not buf:
            conn.process_data_events(time_limit=0.5)
            if not buf:
                continue
        conn.process_data_events(time_limit=0)
        batch, buf[:] = buf[:batch_size], buf[batch_size:]
        ids = []
        with db.cursor() as cur:
            for _method, _props, body in batch:
                event = json.loads(body)
                now = datetime.now(UTC)
                cur.execute(RAW_INBOX, (qname, event["id"], event["type"], now))
                cur.execute(RAW_EFFECT, (event["id"], event["data"]["seq"]))
                out_id, out_body, at = _envelope(
                    HANDLED,
                    {"seq": event["data"]["seq"]},
                    event["correlation_id"],
                    event["id"],
                    event.get("subject"),
                )
                cur.execute(
                    RAW_OUTBOX,
                    (out_id, HANDLED, event["correlation_id"], event.get("subject"), out_body, at),
                )
                ids.append(event["id"])
            cur.execute("SELECT pg_notify(%s, '')", (channel_name,))
        db.commit()
        ch.basic_ack(batch[-1][0].delivery_tag, multiple=True)
        done = time.time()
        for event_id in ids:
            committed_at[event_id] = done
        handled += len(batch)
    elapsed = time.perf_counter() - t0
    cpu = cpu_seconds() - cpu0
    conn.close()
    db.close()
    return {"handled": handled, "seconds": elapsed, "cpu": cpu, "committed_at": committed_at}


def raw_consumer_burst(cfg: dict, n: int) -> dict:
    result = _raw_consume(cfg, n)
    result.pop("committed_at")
    return result


# --- 3. latency -----------------------------------------------------------------------------
def fw_consumer_bg(cfg: dict, stop_evt, ready_evt, profile_path: str | None = None) -> dict:
    setup_logging(cfg)
    runtime = make_runtime(cfg)
    consumer = _make_bench_consumer(runtime, record=True)
    stop = threading.Event()
    prof = _profiled(profile_path)
    thread = threading.Thread(target=_run_profiled, args=(prof, consumer.run, stop), daemon=True)
    thread.start()
    while not consumer.ready.wait(0.1):
        if stop_evt.is_set():
            break
    ready_evt.set()
    cpu0 = cpu_seconds()
    stop_evt.wait()
    cpu = cpu_seconds() - cpu0
    stop.set()
    thread.join(timeout=30)
    runtime.engine.dispose()
    if prof:
        prof.dump_stats(profile_path)
    return {"committed_at": consumer.committed_at, "cpu": cpu}


def fw_relay_bg(cfg: dict, stop_evt, ready_evt, profile_path: str | None = None) -> dict:
    setup_logging(cfg)
    runtime = make_runtime(cfg)
    stop = threading.Event()
    relay = runtime.make_relay(stop)
    relay.publisher._ensure()
    prof = _profiled(profile_path)
    thread = threading.Thread(target=_run_profiled, args=(prof, relay.run, stop), daemon=True)
    thread.start()
    time.sleep(0.5)  # LISTEN established
    ready_evt.set()
    cpu0 = cpu_seconds()
    stop_evt.wait()
    cpu = cpu_seconds() - cpu0
    stop.set()
    thread.join(timeout=30)
    runtime.engine.dispose()
    if prof:
        prof.dump_stats(profile_path)
    return {"cpu": cpu}


def raw_relay_bg(cfg: dict, stop_evt, ready_evt) -> dict:
    """LISTEN for the outbox notification, then publish what is unsent (confirm one by one), as the
    relay does; at 200 events/s a batch holds one or two rows, so batched confirms change
    nothing."""
    exchange = queue_names(cfg)["exchange"]
    db = pg(cfg, autocommit=False)
    listener = pg(cfg)
    listener.execute(f'LISTEN "{notify_channel(SCHEMA)}"')
    conn = amqp(cfg)
    ch = conn.channel()
    ch.confirm_delivery()
    ready_evt.set()
    cpu0 = cpu_seconds()
    while not stop_evt.is_set():
        n = _raw_publish_pending_blocking(db, ch, exchange, 500)
        if n >= 500:
            continue
        if n == 0:
            for _ in listener.notifies(timeout=0.5, stop_after=1):
                pass
        for _ in listener.notifies(timeout=0, stop_after=None):
            pass
        conn.process_data_events(time_limit=0)
    cpu = cpu_seconds() - cpu0
    conn.close()
    db.close()
    listener.close()
    return {"cpu": cpu}


def raw_consumer_bg(cfg: dict, stop_evt, ready_evt) -> dict:
    result = _raw_consume(cfg, None, stop_evt, ready_evt)
    return {"committed_at": result["committed_at"], "cpu": result["cpu"]}


def _paced(rate: float, total: int, commit_one) -> dict:
    """Calls commit_one(i) on a fixed schedule of ``rate`` per second; returns event id -> commit
    time."""
    committed: dict[str, float] = {}
    order: list[str] = []
    late = 0
    cpu0 = cpu_seconds()
    start = time.perf_counter() + 0.05
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        elif delay < -0.005:
            late += 1
        event_id = commit_one(i)
        committed[event_id] = time.time()
        order.append(event_id)
    elapsed = time.perf_counter() - start
    return {
        "committed_at": committed,
        "order": order,
        "rate": total / elapsed,
        "late": late,
        "cpu": cpu_seconds() - cpu0,
    }


def fw_producer(cfg: dict, rate: float, total: int, profile_path: str | None = None) -> dict:
    setup_logging(cfg)
    runtime = make_runtime(cfg)
    with runtime.engine.connect():
        pass

    def commit_one(i):
        with runtime.unit_of_work() as uow:
            event = uow.emit(PING, {"seq": i}, subject=f"order-{i}")
            uow.commit()
        return event.id

    prof = _profiled(profile_path)
    result = _run_profiled(prof, _paced, rate, total, commit_one)
    runtime.engine.dispose()
    if prof:
        prof.dump_stats(profile_path)
    return result


def raw_producer(cfg: dict, rate: float, total: int) -> dict:
    db = pg(cfg, autocommit=False)
    channel_name = notify_channel(SCHEMA)

    def commit_one(i):
        correlation_id = str(uuid.uuid4())
        event_id, body, at = _envelope(PING, {"seq": i}, correlation_id, None, f"order-{i}")
        db.execute(RAW_OUTBOX, (event_id, PING, correlation_id, f"order-{i}", body, at))
        db.execute("SELECT pg_notify(%s, '')", (channel_name,))
        db.commit()
        return event_id

    result = _paced(rate, total, commit_one)
    db.close()
    return result


def pct(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(-(-p * len(sorted_values) // 100)) - 1))
    return sorted_values[k]


def latency_run(
    cfg: dict,
    variant: str,
    rate: float,
    seconds: float,
    warmup: float,
    profile_dir: str | None = None,
) -> dict:
    """variant: 'coc_shared' or 'raw'.
    With profile_dir (framework variants): the producer, relay and consumer profile themselves."""
    prof = {
        k: os.path.join(profile_dir, f"latency-{k}.prof") if profile_dir else None
        for k in ("producer", "relay", "consumer")
    }
    raw = variant == "raw"
    reset_tables(cfg)
    names = queue_names(cfg)
    purge(cfg, names["queue"], names["sink"])
    if raw:
        consumer = Background(raw_consumer_bg, cfg)
    else:
        consumer = Background(fw_consumer_bg, cfg, prof["consumer"])
    relay = Background(raw_relay_bg, cfg) if raw else Background(fw_relay_bg, cfg, prof["relay"])
    load = None
    try:
        consumer.wait_ready()
        relay.wait_ready()
        total = int(rate * (seconds + warmup))
        load = MachineLoad()
        servers = ServerCPU()
        if raw:
            produced = run_child(raw_producer, cfg, rate, total)
        else:
            produced = run_child(fw_producer, cfg, rate, total, prof["producer"])
        deadline = time.monotonic() + 60
        while counts(cfg)["effects"] < total and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        busy = load.busy() if load else float("nan")
        server_cpu = servers.used() if load else {}
        try:
            handled = consumer.finish()
        finally:
            relayed = relay.finish()
    rows = sql(
        cfg, f"SELECT event_id, extract(epoch FROM handled_at)::float8 FROM {SCHEMA}.effects"
    )
    written_at = dict(rows)
    sent_at = dict(
        sql(
            cfg,
            f"SELECT event_id, extract(epoch FROM sent_at)::float8 FROM {SCHEMA}.outbox "
            "WHERE event_type = %s AND sent_at IS NOT NULL",
            (PING,),
        )
    )
    skip = int(rate * warmup)
    measured = produced["order"][skip:]
    committed = produced["committed_at"]
    lat_commit = sorted(
        (handled["committed_at"][e] - committed[e]) * 1000
        for e in measured
        if e in handled["committed_at"]
    )
    lat_written = sorted((written_at[e] - committed[e]) * 1000 for e in measured if e in written_at)
    lat_sent = sorted((sent_at[e] - committed[e]) * 1000 for e in measured if e in sent_at)
    return {
        "events": len(measured),
        "missing": len(measured) - len(lat_commit),
        "producer_rate": produced["rate"],
        "late": produced["late"],
        "commit": lat_commit,
        "written": lat_written,
        "sent": lat_sent,
        "busy": busy,
        "cpu_ms": {
            "producer": produced["cpu"] * 1000 / total,
            "relay": relayed["cpu"] * 1000 / total,
            "consumer": handled["cpu"] * 1000 / total,
            **{k: v * 1000 / total for k, v in server_cpu.items()},
        },
    }


# ---------------------------------------------------------------------------------------------
# Profiles
# ---------------------------------------------------------------------------------------------
def _where(file: str, func: str) -> str:
    if file == "~":
        return func
    for marker in ("site-packages/", "/src/", "/lib/python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    else:
        file = os.path.basename(file)
    return f"{file}:{func}"


def _package(file: str, func: str) -> str:
    if file == "~":
        if "psycopg" in func or "wait_c" in func:
            return "psycopg (C)"
        if (
            "select" in func
            or "poll" in func
            or "recv" in func
            or "sendall" in func
            or "send" in func
        ):
            return "socket I/O wait (select/recv/send)"
        return "builtins"
    for marker in ("site-packages/", "/src/"):
        if marker in file:
            return file.split(marker, 1)[1].split("/", 1)[0]
    if "/lib/python3.11/" in file:
        return "stdlib:" + file.split("/lib/python3.11/", 1)[1].split("/", 1)[0].removesuffix(".py")
    return os.path.basename(file)


def _calls(st: pstats.Stats, file_part: str, func: str) -> int:
    return sum(
        v[1] for (file, _line, name), v in st.stats.items() if file_part in file and name == func
    )


def profile_report(path: str, events: int, top: int = 12) -> list[str]:
    st = pstats.Stats(path)
    total = st.total_tt or 1e-9
    statements = _calls(st, "psycopg/cursor.py", "execute") + _calls(
        st, "psycopg/cursor.py", "executemany"
    )
    lines = [
        f"      {total:.2f} s wall time in the profiled thread = "
        f"{total * 1e6 / max(events, 1):,.0f} us per event; per event: "
        f"{statements / max(events, 1):.2f} SQL statements (psycopg execute/executemany, each a "
        "round trip unless pipelined), "
        f"{_calls(st, 'amqp/method_framing.py', 'write_frame') / max(events, 1):.2f} AMQP methods "
        f"sent, {_calls(st, 'amqp/transport.py', 'read_frame') / max(events, 1):.2f} AMQP frames "
        "read"
    ]
    by_pkg: dict[str, float] = {}
    rows = []
    for (file, _line, func), (_cc, nc, tt, ct, _callers) in st.stats.items():
        by_pkg[_package(file, func)] = by_pkg.get(_package(file, func), 0.0) + tt
        rows.append((tt, ct, nc, file, func))
    lines.append(
        "      self time by package: "
        + ", ".join(
            f"{k} {v / total:.0%}" for k, v in sorted(by_pkg.items(), key=lambda kv: -kv[1])[:10]
        )
    )
    lines.append("      top self time (share, function, calls):")
    for tt, _ct, nc, file, func in sorted(rows, key=lambda r: -r[0])[:top]:
        lines.append(f"        {tt / total:6.1%}  {_where(file, func)}  ({nc} calls)")
    lines.append(
        "      coc_shared (and bench) functions, cumulative time (share, function, calls):"
    )
    ours = [r for r in rows if any(m in r[3] for m in ("coc_shared", "bench_pipeline"))]
    for _tt, ct, nc, file, func in sorted(ours, key=lambda r: -r[1])[:top]:
        lines.append(f"        {ct / total:6.1%}  {_where(file, func)}  ({nc} calls)")
    big = [
        r
        for r in rows
        if not any(m in r[3] for m in ("coc_shared", "bench_pipeline", "threading"))
        and r[1] / total > 0.04
    ]
    lines.append("      library functions above 4% cumulative time:")
    for _tt, ct, nc, file, func in sorted(big, key=lambda r: -r[1])[:top]:
        lines.append(f"        {ct / total:6.1%}  {_where(file, func)}  ({nc} calls)")
    return lines


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------
CONNECTION_ERRORS = (
    "AdminShutdown",
    "OperationalError",
    "ConnectionClosed",
    "AMQPConnectionError",
    "StreamLostError",
    "ConnectionResetError",
    "ConnectionRefusedError",
    "BrokenPipeError",
    "unexpectedly closed",
    "Connection reset",
    "server closed the connection",
    "terminating connection",
    "Socket closed",
    "RecoverableConnectionError",
    "did not get ready",
    "OSError",
)


def wait_for_services(cfg: dict, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            sql(cfg, "SELECT 1")
            amqp(cfg).close()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


def retrying(cfg: dict, label: str, fn, attempts: int = 3):
    """Run one measurement; when PostgreSQL or RabbitMQ went away under it (other helpers restart
    them on this machine), wait for them and measure again from scratch."""
    for attempt in range(1, attempts + 1):
        try:
            wait_for_quiet_machine()
            return fn()
        except Exception as exc:
            text_ = f"{type(exc).__name__}: {exc}"
            if attempt == attempts or not any(m in text_ for m in CONNECTION_ERRORS):
                raise
            print(
                f"   ({label}: connection lost ({text_.splitlines()[0][:160]}); measuring again)",
                flush=True,
            )
            time.sleep(3)
            wait_for_services(cfg)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def server_versions(cfg: dict) -> str:
    try:
        pgv = sql(cfg, "SHOW server_version")[0][0]
    except Exception:
        pgv = "?"
    try:
        conn = amqp(cfg)
        rv = conn._impl.server_properties.get("version", b"?")
        rv = rv.decode() if isinstance(rv, bytes) else rv
        conn.close()
    except Exception:
        rv = "?"
    return f"PostgreSQL {pgv}, RabbitMQ {rv}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--events", type=int, default=20000, help="events of the relay and consumer runs (20000)"
    )
    parser.add_argument(
        "--raw-one-by-one",
        type=int,
        default=5000,
        help="events of the raw confirm-one-by-one relay run (5000; it is slow)",
    )
    parser.add_argument(
        "--rate", type=float, default=200.0, help="producer rate of the latency run (200/s)"
    )
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="measured duration of the latency run (20 s)"
    )
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="latency run: seconds not counted at the start"
    )
    parser.add_argument(
        "--only", default="relay,consumer,latency", help="comma-separated parts to run"
    )
    parser.add_argument(
        "--profile",
        choices=("auto", "always", "never"),
        default="auto",
        help="profile relay/consumer in separate runs: when below target (auto), always, never",
    )
    parser.add_argument(
        "--profile-events", type=int, default=10000, help="events of a profiled run (10000)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run each measurement this many times and print the best (the machine is shared) (1)",
    )
    parser.add_argument("--no-raw", action="store_true", help="skip the raw references")
    parser.add_argument(
        "--log-level",
        default=os.environ.get("LOG_LEVEL") or "INFO",
        help="LOG_LEVEL of the framework processes (INFO as in production)",
    )
    parser.add_argument(
        "--wait-for-broker",
        type=float,
        default=900,
        help="seconds to wait for a RabbitMQ resource alarm (blocked publishers) to clear (900)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=120,
        help="before each measurement, wait up to this many seconds for the machine to be "
        "less than 25%% busy (other work shares the cores) (120; 0: do not wait)",
    )
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the framework processes' log file"
    )
    return parser


class PipelineBench:
    """The parts of one run (relay, consumer, latency) and what they share: the options, the
    configuration, the settings, and the results and profiles that the summary prints."""

    def __init__(self, args, cfg: dict, names: dict, workdir: str, settings: Settings) -> None:
        self.args = args
        self.cfg = cfg
        self.names = names
        self.workdir = workdir
        self.settings = settings
        self.results: dict = {}
        self.profiles: list[str] = []

    def want_profile(self, rate, target):
        args = self.args
        return args.profile == "always" or (args.profile == "auto" and rate < target)

    @staticmethod
    def row(label, count, r, note=""):
        rate = count / r["seconds"]
        cpu_us = r["cpu"] * 1e6 / count
        runs = r.get("rates", [rate])
        print(f"   {label:55s} {rate:7,.0f} ev/s  {note}", flush=True)
        srv = r.get("servers") or {}
        print(
            f"   {'':55s} ({count} in {r['seconds']:.2f} s; process CPU {cpu_us:.0f} us/event, "
            f"i.e. a CPU-bound ceiling of {1e6 / cpu_us:,.0f}/s; PostgreSQL "
            f"{srv.get('postgres', 0) * 1e6 / count:.0f} and RabbitMQ "
            f"{srv.get('rabbitmq', 0) * 1e6 / count:.0f} us/event; machine {r['busy']:.0%} busy"
            + (
                f"; best of {len(runs)}: " + " / ".join(f"{x:,.0f}" for x in runs)
                if len(runs) > 1
                else ""
            )
            + ")",
            flush=True,
        )
        return rate

    def measure_relay(self, fn, count, *extra):
        cfg, names = self.cfg, self.names

        def go():
            purge(cfg, names["queue"])
            reset_tables(cfg)
            fill_outbox(cfg, count)
            load, servers = MachineLoad(), ServerCPU()
            r = run_child(fn, cfg, *extra)
            r["busy"], r["servers"] = load.busy(), servers.used()
            c = counts(cfg)
            depth = queue_depth(cfg, names["queue"])
            if c["sent"] != count or r["published"] != count or depth != count:
                print(
                    f"   !! {fn.__name__}: published {r['published']}, rows sent {c['sent']}, "
                    f"queue depth {depth}, of {count}"
                )
            purge(cfg, names["queue"])
            return r

        return retrying(cfg, fn.__name__, go)

    def measure_consumer(self, kind, count, profile_path=None):
        cfg, names = self.cfg, self.names

        def go():
            purge(cfg, names["queue"])
            reset_tables(cfg)
            preload_queue(cfg, count)
            load, servers = MachineLoad(), ServerCPU()
            if kind == "raw":
                r = run_child(raw_consumer_burst, cfg, count)
            else:
                r = run_child(fw_consumer_burst, cfg, count, profile_path)
            r["busy"], r["servers"] = load.busy(), servers.used()
            c = counts(cfg)
            if not (c["effects"] == c["inbox"] == c["outbox"] == count == r["handled"]):
                print(
                    f"   !! consumer {kind}: rows {c}, handled {r['handled']}, expected "
                    f"{count} each"
                )
            purge(cfg, names["queue"])
            return r

        return retrying(cfg, f"consumer {kind}", go)

    def interleaved(self, variants, measure, rate_of):
        """Each variant measured args.repeat times, the variants taking turns (the machine's
        load drifts); returns the best run of each variant, with the rates of all its runs."""
        args, cfg = self.args, self.cfg
        runs = {v: [] for v in variants}
        for _ in range(args.repeat):
            for v in variants:
                wait_for_unblocked_broker(cfg, args.wait_for_broker)
                runs[v].append(measure(v))
        best = {}
        for v, rs in runs.items():
            best[v] = max(rs, key=rate_of)
            best[v]["rates"] = [rate_of(r) for r in rs]
            best[v]["runs"] = rs
        return best

    def relay_part(self) -> None:
        """1. The outbox relay, beside the raw references; profiled when below target."""
        args, results, profiles = self.args, self.results, self.profiles
        n, settings, workdir = args.events, self.settings, self.workdir
        print(
            f"\n1. Outbox relay, publisher confirms: {n} events -> exchange -> quorum queue "
            f"bound to {PING!r}, rows marked sent "
            f"(OUTBOX_BATCH_SIZE={settings.outbox_batch_size}); CPU = relay process only",
            flush=True,
        )
        relay_rate = lambda r: r["published"] / r["seconds"]  # noqa: E731
        kinds = {
            "fw": (
                "coc_shared OutboxRelay (kombu/py-amqp, batched confirms)",
                fw_relay_burst,
                (),
                n,
            )
        }
        if not args.no_raw:
            kinds["blocking"] = (
                "raw psycopg + pika Blocking, confirm one by one",
                raw_relay_blocking_burst,
                (args.raw_one_by_one,),
                args.raw_one_by_one,
            )
            kinds["async"] = (
                "raw psycopg + pika SelectConnection, batched confirms",
                raw_relay_async_burst,
                (),
                n,
            )
        best = self.interleaved(
            list(kinds),
            lambda k: self.measure_relay(kinds[k][1], kinds[k][3], *kinds[k][2]),
            relay_rate,
        )
        rate = results["relay"] = relay_rate(best["fw"])
        for k, (label, _fn, _extra, _limit) in kinds.items():
            r = best[k]
            results["relay_" + k] = relay_rate(r)
            note = (
                f"target >= {TARGET_RELAY:,.0f}  {verdict(rate >= TARGET_RELAY)}"
                if k == "fw"
                else f"{relay_rate(r) / rate:4.1f}x the relay"
            )
            self.row(label, r["published"], r, note)
        if self.want_profile(rate, TARGET_RELAY):
            path = os.path.join(workdir, "relay.prof")
            rp = self.measure_relay(fw_relay_burst, args.profile_events, path)
            profiles.append(
                f"\n   Profile of the OutboxRelay.publish_pending loop ({rp['published']} "
                f"events, {rp['published'] / rp['seconds']:,.0f} ev/s under the profiler):"
            )
            profiles.extend(profile_report(path, rp["published"]))

    def consumer_part(self) -> None:
        """2. One consumer process, beside the raw reference; profiled when below target."""
        args, results, profiles = self.args, self.results, self.profiles
        n, settings, workdir = args.events, self.settings, self.workdir
        print(
            f"\n2. One consumer process: {n} preloaded messages, handler = 1 insert + "
            "ctx.emit; effects + inbox + outbox in one transaction per batch "
            f"(CONSUMER_PREFETCH={settings.prefetch}, "
            f"CONSUMER_BATCH_SIZE={settings.batch_size}); CPU = consumer process only",
            flush=True,
        )
        labels = {"fw": "coc_shared EventConsumer (batched inbox/outbox writes)"}
        if not args.no_raw:
            labels["raw"] = "raw pika basic_consume + psycopg, 3 inserts/msg"
        consumer_rate = lambda r: r["handled"] / r["seconds"]  # noqa: E731
        best = self.interleaved(list(labels), lambda k: self.measure_consumer(k, n), consumer_rate)
        for kind, label in labels.items():
            r = best[kind]
            rate = results["consumer_" + kind] = consumer_rate(r)
            if kind == "fw":
                note = f"target >= {TARGET_CONSUMER:,.0f}  {verdict(rate >= TARGET_CONSUMER)}"
            else:
                note = f"{rate / results['consumer_fw']:4.1f}x the consumer"
            self.row(label, r["handled"], r, note)
        if self.want_profile(results["consumer_fw"], TARGET_CONSUMER):
            for kind in ("fw",):
                path = os.path.join(workdir, f"consumer-{kind}.prof")
                rp = self.measure_consumer(kind, args.profile_events, path)
                what = "EventConsumer"
                profiles.append(
                    f"\n   Profile of the {what} thread ({rp['handled']} events, "
                    f"{rp['handled'] / rp['seconds']:,.0f} ev/s under the profiler):"
                )
                profiles.extend(profile_report(path, rp["handled"]))

    def latency_part(self) -> None:
        """3. Latency, event committed -> effect committed, at a steady rate."""
        args, cfg, results, profiles = self.args, self.cfg, self.results, self.profiles
        workdir = self.workdir
        print(
            f"\n3. Latency, event committed -> effect committed, at a steady {args.rate:.0f} "
            f"events/s for {args.seconds:.0f} s (+{args.warmup:.0f} s warm-up not counted); "
            "producer, relay and consumer each in its own process; the relay also publishes "
            f"the {HANDLED} events the handler emits",
            flush=True,
        )
        variants = ["coc_shared"] + ([] if args.no_raw else ["raw"])
        best = self.interleaved(
            variants,
            lambda v: retrying(
                cfg,
                f"latency {v}",
                lambda: latency_run(cfg, v, args.rate, args.seconds, args.warmup),
            ),
            lambda x: -pct(x["commit"], 99),
        )
        for label in variants:
            lr = results[f"latency_{label}"] = best[label]
            for what, values in (
                ("effect committed", lr["commit"]),
                ("effect row written", lr["written"]),
                ("relay marked sent", lr["sent"]),
            ):
                p99 = pct(values, 99)
                note = ""
                if label == "coc_shared" and what == "effect committed":
                    note = (
                        f"  target p99 <= {TARGET_P99_MS:.0f} ms  {verdict(p99 <= TARGET_P99_MS)}"
                    )
                print(
                    f"   {label:10s} {what:19s} p50 {pct(values, 50):7.1f} ms   p99 {p99:7.1f} "
                    f"ms   max {values[-1] if values else float('nan'):7.1f} ms{note}"
                )
            cpu = lr["cpu_ms"]
            print(
                f"   {'':10s} ({lr['events']} events, producer at {lr['producer_rate']:.1f}/s, "
                f"{lr['late']} commits started >5 ms late, {lr['missing']} not handled)"
            )
            print(
                f"   {'':10s} (CPU ms per event: producer {cpu['producer']:.2f}, relay "
                f"{cpu['relay']:.2f}, consumer {cpu['consumer']:.2f}, PostgreSQL "
                f"{cpu.get('postgres', float('nan')):.2f}, RabbitMQ "
                f"{cpu.get('rabbitmq', float('nan')):.2f}: "
                f"{sum(cpu.values()) * args.rate / 1000:.2f} of the {os.cpu_count()} cores at "
                f"{args.rate:.0f}/s; machine {lr['busy']:.0%} busy in all)",
                flush=True,
            )
            if len(lr["runs"]) > 1:
                print(
                    f"   {'':10s} (best of {len(lr['runs'])} runs by p99; p50/p99 (machine "
                    "busy) of each: "
                    + ", ".join(
                        f"{pct(x['commit'], 50):.1f}/{pct(x['commit'], 99):.1f} ms "
                        f"({x['busy']:.0%})"
                        for x in lr["runs"]
                    )
                    + ")"
                )
        p99 = pct(results["latency_coc_shared"]["commit"], 99)
        if args.profile == "always" or (args.profile == "auto" and not p99 <= TARGET_P99_MS):
            pdir = os.path.join(workdir, "latency-profiles")
            os.makedirs(pdir, exist_ok=True)
            secs = min(args.seconds, 10.0)
            lp = retrying(
                cfg,
                "latency profile",
                lambda: latency_run(cfg, "coc_shared", args.rate, secs, args.warmup, pdir),
            )
            total = int(args.rate * (secs + args.warmup))
            profiles.append(
                f"\n   Profiles of the latency run's processes ({total} events at "
                f"{args.rate:.0f}/s; under the profiler p50 {pct(lp['commit'], 50):.1f} ms, "
                f"p99 {pct(lp['commit'], 99):.1f} ms):"
            )
            for part in ("producer", "relay", "consumer"):
                profiles.append(f"    {part}:")
                profiles.extend(
                    profile_report(os.path.join(pdir, f"latency-{part}.prof"), total, top=8)
                )

    def print_summary(self) -> None:
        results, profiles = self.results, self.profiles
        print("\nSummary (targets for this 2-core machine):")
        if "relay" in results:
            raws = ", ".join(
                f"{k} {results['relay_' + k]:,.0f}"
                for k in ("async", "blocking")
                if "relay_" + k in results
            )
            print(
                f"   relay publish rate    {results['relay']:8,.0f} ev/s   target >= "
                f"{TARGET_RELAY:,.0f}   {verdict(results['relay'] >= TARGET_RELAY)}   (raw: "
                f"{raws or '-'})"
            )
        if "consumer_fw" in results:
            others = ", ".join(
                f"{k} {results['consumer_' + k]:,.0f}"
                for k in ("raw",)
                if "consumer_" + k in results
            )
            print(
                f"   one consumer          {results['consumer_fw']:8,.0f} ev/s   target >= "
                f"{TARGET_CONSUMER:,.0f}   {verdict(results['consumer_fw'] >= TARGET_CONSUMER)}   "
                f"({others or '-'})"
            )
        if "latency_coc_shared" in results:
            lr = results["latency_coc_shared"]
            p99 = pct(lr["commit"], 99)
            others = ", ".join(
                f"{k} p99 {pct(results['latency_' + k]['commit'], 99):.1f} ms"
                for k in ("raw",)
                if "latency_" + k in results
            )
            print(
                f"   latency p99           {p99:8.1f} ms     target <= {TARGET_P99_MS:.0f} ms      "
                f"{verdict(p99 <= TARGET_P99_MS)}   (p50 {pct(lr['commit'], 50):.1f} ms, max "
                f"{lr['commit'][-1]:.1f} ms; {others or '-'})"
            )
        for line in profiles:
            print(line)


def run_config(log_level: str) -> dict:
    """A run's own database (created later), bus prefix and log file, from DATABASE_URL and
    RABBITMQ_URL (the local servers by default)."""
    run = uuid.uuid4().hex[:8]
    server_url = os.environ.get("DATABASE_URL") or "postgresql://root@127.0.0.1:5432/postgres"
    amqp_url = os.environ.get("RABBITMQ_URL") or "amqp://guest:guest@127.0.0.1:5672//"
    db_name = f"coc_bench_{run}"
    db_url = (
        make_url(normalise_url(server_url))
        .set(database=db_name)
        .render_as_string(hide_password=False)
    )
    workdir = tempfile.mkdtemp(prefix="coc-bench-")
    return {
        "server_url": server_url,
        "db_name": db_name,
        "db_url": db_url,
        "amqp_url": amqp_url,
        "dsn": make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False),
        "prefix": f"bench{run}.",
        "log_level": log_level,
        "log_path": os.path.join(workdir, "framework.log"),
        "retry_delays": Settings.from_env(SERVICE).retry_delays,
    }


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    QUIET["max_wait"] = args.quiet_wait
    parts = {p.strip() for p in args.only.split(",") if p.strip()}

    cfg = run_config(args.log_level)
    workdir = os.path.dirname(cfg["log_path"])
    names = queue_names(cfg)
    setup_logging(cfg)
    print(f"coc pipeline benchmark  {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}  {machine()}")
    print(
        f"database {cfg['db_name']}, BUS_PREFIX {cfg['prefix']}, "
        f"framework LOG_LEVEL={args.log_level} "
        f"(log: {cfg['log_path']})"
    )
    t_start = time.monotonic()
    try:
        create_environment(cfg)
        print(
            server_versions(cfg)
            + f"; service queue {names['queue']} is a quorum queue, as in production"
        )
        bench = PipelineBench(args, cfg, names, workdir, make_runtime(cfg).settings)
        if "relay" in parts:
            bench.relay_part()
        if "consumer" in parts:
            bench.consumer_part()
        if "latency" in parts:
            bench.latency_part()
        bench.print_summary()
        print(f"\ntotal run time {time.monotonic() - t_start:.0f} s")
        return 0
    finally:
        destroy_environment(cfg)
        if args.keep_logs:
            print(f"framework logs kept in {cfg['log_path']}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
