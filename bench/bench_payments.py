#!/usr/bin/env python
"""Benchmark of the payments service's card notifications (not a test; run by hand).

``.venv/bin/python bench/bench_payments.py [--orders 3000] [--concurrency 8] [--repeat 3]``

Sets up its own database (``coc_bench_pay_<run>``) and BUS_PREFIX, records N payments due, starts
the payments API under gunicorn *as deployed* (the Dockerfile's ``-c
python:coc_payments.entrypoints.gunicorn_conf``; ``--api-workers``/``--api-threads`` override it)
and its outbox relay (``coc-payments relay``) as real processes, then posts one signed Systempay
notification (AUTHORISED) per order from a pool of client threads as fast as the service takes
them. A queue bound to ``payment.confirmed`` observes the events.

The client must not steal the service's CPU on a two-core machine: every notification is built
and signed before the clock starts, and each client thread posts on one kept-alive
``http.client`` connection (no ``requests``: about 4x the client CPU per request). The client's,
the API's (gunicorn master and workers) and the relay's CPU per callback are printed (from
``getrusage`` and ``/proc``, little affected by other load), with the load average.

Prints callbacks/s (answered 200, wall time of the posting phase) and the time from sending a
callback to its ``payment.confirmed`` being delivered from the broker (p50/p99/max; this includes
the relay's publish with confirms and the broker's delivery to the observer, so it is an upper
bound of "callback to published"). Targets: >= 300 callbacks/s, p99 < 200 ms. ``--repeat N``
runs N times (a new database each time) and prints each run, the best and the spread.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import kombu
import requests
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from coc_payments.adapters import tables
from coc_payments.domain.references import creditor_reference
from coc_payments.service import definition
from coc_shared.config import Settings
from coc_shared.db import normalise_url
from coc_shared.service import Runtime

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
KEY = "bench-key-" + "b" * 22
SITE_ID = "12345678"


def signature(fields: dict) -> str:
    data = "+".join(str(v) for k, v in sorted(fields.items()) if k.startswith("vads_")) + "+" + KEY
    return base64.b64encode(hmac.new(KEY.encode(), data.encode(), hashlib.sha256).digest()).decode()


def notification(order_number: str, amount: int) -> bytes:
    fields = {
        "vads_amount": str(amount),
        "vads_ctx_mode": "TEST",
        "vads_currency": "978",
        "vads_order_id": order_number,
        "vads_site_id": SITE_ID,
        "vads_trans_status": "AUTHORISED",
        "vads_trans_uuid": uuid.uuid4().hex,
        "vads_card_number": "497010XXXXXX0054",
        "vads_trans_date": datetime.now(UTC).strftime("%Y%m%d%H%M%S"),
        "vads_trans_id": "000001",
        "vads_version": "V2",
        "vads_payment_config": "SINGLE",
        "vads_page_action": "PAYMENT",
        "vads_url_check_src": "PAY",
    }
    fields["signature"] = signature(fields)
    return urlencode(fields).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its waited-for children (gunicorn's workers are not
    waited for until they exit: add them with ``tree_cpu``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    """CPU of ``pid`` and its live children (one level: gunicorn master and workers)."""
    total = cpu_seconds(pid)
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return total + sum(cpu_seconds(int(c)) for c in children)


def postgres_cpu() -> float:
    """CPU of every PostgreSQL process of the machine (approximate: other users' queries count
    too)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text_ = stat.read_text()
        except OSError:
            continue
        if "(postgres)" in text_ or "(postmaster)" in text_:
            total += sum(int(v) for v in text_.rsplit(")", 1)[1].split()[11:13]) / os.sysconf(
                "SC_CLK_TCK"
            )
    return total


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--api-workers", type=int, default=None, help="override the deployed gunicorn_conf"
    )
    parser.add_argument(
        "--api-threads", type=int, default=None, help="override the deployed gunicorn_conf"
    )
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgresql://root@127.0.0.1:5432/coc"),
    )
    parser.add_argument(
        "--rabbitmq-url",
        default=os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//"),
    )
    args = parser.parse_args()
    results = []
    for i in range(args.repeat):
        if args.repeat > 1:
            print(f"--- run {i + 1} of {args.repeat}", flush=True)
        results.append(run_once(args))
    if len(results) > 1:
        rates = [r["callbacks_per_s"] for r in results]
        p99s = [r["received_to_published_ms_p99"] for r in results]
        best = max(results, key=lambda r: r["callbacks_per_s"])
        print(
            f"=== {len(results)} runs: callbacks/s best {max(rates)} (spread "
            f"{min(rates)}-{max(rates)}); p99 callback->payment.confirmed {min(p99s)}-{max(p99s)} "
            f"ms; load average {results[0]['load_before']} .. {results[-1]['load_after']}"
        )
        print(verdict(best))
    return 0 if all(not r["errors"] for r in results) else 1


def verdict(result: dict) -> str:
    ok_rate = result["callbacks_per_s"] >= 300
    p99 = result["received_to_published_ms_p99"]
    ok_p99 = p99 is not None and p99 < 200
    return (
        f"{'PASS' if ok_rate and ok_p99 else 'MISS'}: {result['callbacks_per_s']} callbacks/s "
        f"({'>=' if ok_rate else '<'} 300), p99 callback->payment.confirmed {p99} ms "
        f"({'<' if ok_p99 else '>='} 200)"
    )


def record_payments_due(runtime: Runtime, orders: list[tuple[str, str]]) -> None:
    """A card payment due of 249 EUR for each (order id, order number) of ``orders``."""
    now = datetime.now(UTC)
    with runtime.engine.begin() as conn:
        conn.execute(
            insert(tables.payments_due),
            [
                {
                    "order_id": oid,
                    "order_number": num,
                    "method": "card",
                    "amount_cents": 24900,
                    "currency": "EUR",
                    "status": "due",
                    "event_id": str(uuid.uuid4()),
                    "created_at": now,
                    "reference": creditor_reference(num),
                    "correlation_id": oid,
                }
                for oid, num in orders
            ],
        )


def start_observer(
    runtime: Runtime,
    rabbitmq_url: str,
    prefix: str,
    received: dict[str, float],
    stop: threading.Event,
) -> None:
    """A thread that records in ``received`` when the payment.confirmed of each order id
    arrives, until ``stop`` is set; returns once it consumes (or after 10 s)."""
    ready = threading.Event()

    def observe():
        exchange = runtime.broker.exchange()
        q = kombu.Queue(
            f"{prefix}bench.observer",
            exchange=exchange,
            routing_key="payment.confirmed",
            auto_delete=True,
            exclusive=True,
        )

        def on_message(body, message):
            doc = json.loads(message.body)
            received[doc["data"]["order_id"]] = time.monotonic()
            message.ack()

        with kombu.Connection(rabbitmq_url) as conn:
            with conn.Consumer([q], callbacks=[on_message], accept=["json", "application/json"]):
                ready.set()
                while not stop.is_set():
                    try:
                        conn.drain_events(timeout=0.2)
                    except Exception:
                        pass

    threading.Thread(target=observe, daemon=True).start()
    ready.wait(10)


def api_command(args, port: int) -> list[str]:
    """The Dockerfile's command, bound to a local port (and the overrides asked for, if any)."""
    api = [
        str(BIN / "gunicorn"),
        "-c",
        "python:coc_payments.entrypoints.gunicorn_conf",
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
    ]
    if args.api_workers is not None:
        api += ["--workers", str(args.api_workers)]
    if args.api_threads is not None:
        api += ["--threads", str(args.api_threads)]
    api.append("coc_payments.entrypoints.api:create_app()")
    return api


def wait_until_healthy(base: str, logdir: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                break
        except (requests.ConnectionError, requests.Timeout):
            pass
        if time.monotonic() > deadline:
            raise SystemExit("the API did not start; logs in " + str(logdir))
        time.sleep(0.1)


def open_clients(port: int, concurrency: int) -> list[http.client.HTTPConnection]:
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(concurrency)]
    for conn in conns:  # every client connection open and every worker's database pool warm
        for _ in range(3):
            conn.request("GET", "/readyz")
            conn.getresponse().read()
    return conns


def post_notifications(
    conns: list[http.client.HTTPConnection], bodies: list[tuple[str, bytes]]
) -> tuple[dict[str, float], list[str]]:
    """Every (order id, body) of ``bodies`` posted by one client thread per connection; returns
    when each order's notification was sent, and the answers other than 200."""
    path = "/v1/callbacks/systempay"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    sent: dict[str, float] = {}
    errors: list[str] = []
    lock = threading.Lock()
    todo = iter(bodies)

    def client(conn: http.client.HTTPConnection) -> None:
        while True:
            with lock:
                item = next(todo, None)
            if item is None:
                return
            oid, body = item
            sent[oid] = time.monotonic()
            conn.request("POST", path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            if r.status != 200:
                errors.append(f"{r.status} {data[:200]!r}")

    threads = [threading.Thread(target=client, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sent, errors


def published_ms(runtime: Runtime) -> list:
    """Server side: callback received (callbacks.received_at) -> payment.confirmed confirmed by
    the broker (outbox.sent_at, set by the relay after the publisher confirm), in ms."""
    deadline = time.monotonic() + 30
    with runtime.engine.connect() as conn:
        while (
            time.monotonic() < deadline
            and conn.execute(
                text("SELECT count(*) FROM payments.outbox WHERE sent_at IS NULL")
            ).scalar()
        ):
            time.sleep(0.05)
        return [
            r[0] * 1000
            for r in conn.execute(
                text(
                    "SELECT extract(epoch FROM o.sent_at - c.received_at) "
                    "FROM payments.outbox o "
                    "JOIN payments.callbacks c ON c.order_id = o.subject "
                    "WHERE o.event_type = 'payment.confirmed'"
                )
            )
        ]


def drop_database(admin, db_name: str) -> None:
    with admin.connect() as conn:
        conn.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
            {"n": db_name},
        )
        conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}"'))


def delete_topology(rabbitmq_url: str, runtime: Runtime, settings: Settings) -> None:
    """The run's queues and exchange deleted, as far as the broker lets (errors ignored)."""
    try:
        with kombu.Connection(rabbitmq_url) as conn:
            channel = conn.channel()
            for q in (
                runtime.broker.queue_name("payments"),
                runtime.broker.dead_queue_name(runtime.broker.queue_name("payments")),
            ):
                try:
                    channel.queue_delete(q)
                except Exception:
                    channel = conn.channel()
            for delay in settings.retry_delays:
                try:
                    channel.queue_delete(
                        runtime.broker.retry_queue_name(
                            runtime.broker.queue_name("payments"), delay
                        )
                    )
                except Exception:
                    channel = conn.channel()
            channel.exchange_delete(runtime.broker.exchange_name)
    except Exception:
        pass


def run_once(args) -> dict:
    run = uuid.uuid4().hex[:8]
    server = make_url(normalise_url(args.database_url))
    db_name = f"coc_bench_pay_{run}"
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{db_name}"'))
    db_url = server.set(database=db_name).render_as_string(hide_password=False)
    prefix = f"benchpay{run}."
    settings = Settings.from_env(
        "payments",
        database_url=db_url,
        parking_database_url=db_url,
        rabbitmq_url=args.rabbitmq_url,
        bus_prefix=prefix,
    )
    runtime = Runtime(definition, settings)
    procs: list[subprocess.Popen] = []
    logdir = Path(tempfile.mkdtemp(prefix="bench_payments_"))
    observer_stop = threading.Event()
    try:
        runtime.migrate()
        runtime.declare_topology()
        orders = [(str(uuid.uuid4()), f"B{run}-{i:07d}") for i in range(args.orders)]
        record_payments_due(runtime, orders)

        # observer of payment.confirmed
        received: dict[str, float] = {}
        start_observer(runtime, args.rabbitmq_url, prefix, received, observer_stop)

        env = dict(os.environ)
        port = free_port()
        env.update(
            {
                "DATABASE_URL": db_url,
                "PARKING_DATABASE_URL": db_url,
                "RABBITMQ_URL": args.rabbitmq_url,
                "BUS_PREFIX": prefix,
                "SYSTEMPAY_SITE_ID": SITE_ID,
                "SYSTEMPAY_TEST_KEY": KEY,
                "SYSTEMPAY_MODE": "TEST",
                "LOG_LEVEL": "WARNING",
                "OUTBOX_POLL_SECONDS": "0.5",
            }
        )
        api = api_command(args, port)
        for name, cmd in (("api", api), ("relay", [str(BIN / "coc-payments"), "relay"])):
            log = open(logdir / f"{name}.log", "wb")
            procs.append(
                subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(ROOT))
            )
        wait_until_healthy(f"http://127.0.0.1:{port}", logdir)

        bodies = [(oid, notification(num, 24900)) for oid, num in orders]
        conns = open_clients(port, args.concurrency)
        api_pid, relay_pid = procs[0].pid, procs[1].pid
        cpu0 = (
            resource.getrusage(resource.RUSAGE_SELF),
            tree_cpu(api_pid),
            cpu_seconds(relay_pid),
            postgres_cpu(),
        )
        load_before = round(os.getloadavg()[0], 2)
        started = time.monotonic()
        sent, errors = post_notifications(conns, bodies)
        elapsed = time.monotonic() - started
        ru = resource.getrusage(resource.RUSAGE_SELF)
        cpu_client = (
            (ru.ru_utime + ru.ru_stime - cpu0[0].ru_utime - cpu0[0].ru_stime) / len(orders) * 1e6
        )
        cpu_api = (tree_cpu(api_pid) - cpu0[1]) / len(orders) * 1e6
        cpu_pg = (postgres_cpu() - cpu0[3]) / len(orders) * 1e6
        load_after = round(os.getloadavg()[0], 2)
        for conn in conns:
            conn.close()
        wait_until = time.monotonic() + 60
        while len(received) < len(orders) - len(errors) and time.monotonic() < wait_until:
            time.sleep(0.05)
        cpu_relay = (cpu_seconds(relay_pid) - cpu0[2]) / len(orders) * 1e6
        latencies = [(received[oid] - sent[oid]) * 1000 for oid in sent if oid in received]
        published = published_ms(runtime)
        result = {
            "machine": (
                f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}"
            ),
            "orders": len(orders),
            "concurrency": args.concurrency,
            "api": " ".join(api[1:-1]).replace(f"--bind 127.0.0.1:{port} ", ""),
            "load_before": load_before,
            "load_after": load_after,
            "cpu_us_per_callback": {
                "client": round(cpu_client),
                "api": round(cpu_api),
                "relay": round(cpu_relay),
                "postgres_all_approx": round(cpu_pg),
            },
            "errors": len(errors),
            "callbacks_per_s": round(len(orders) / elapsed, 1),
            "confirmed_observed": len(received),
            "received_to_published_ms_p50": round(float(percentile(published, 50)), 1)
            if published
            else None,
            "received_to_published_ms_p99": round(float(percentile(published, 99)), 1)
            if published
            else None,
            "received_to_published_ms_max": round(float(max(published)), 1) if published else None,
            "latency_ms_p50": round(percentile(latencies, 50), 1) if latencies else None,
            "latency_ms_p99": round(percentile(latencies, 99), 1) if latencies else None,
            "latency_ms_max": round(max(latencies), 1) if latencies else None,
        }
        print(json.dumps(result, indent=2))
        print(
            f"callbacks/s: {result['callbacks_per_s']} (target >= 300); callback received -> "
            "payment.confirmed published (broker-confirmed) p50 "
            f"{result['received_to_published_ms_p50']} ms, p99 "
            f"{result['received_to_published_ms_p99']} ms (target < 200); as the client/observer "
            f"saw it: p50 {result['latency_ms_p50']} ms, p99 {result['latency_ms_p99']} ms; load "
            f"average {load_before} -> {load_after}"
        )
        print(verdict(result), flush=True)
        if errors:
            print("first errors:", errors[:3], file=sys.stderr)
        return result
    finally:
        observer_stop.set()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        runtime.engine.dispose()
        drop_database(admin, db_name)
        admin.dispose()
        delete_topology(args.rabbitmq_url, runtime, settings)


if __name__ == "__main__":
    sys.exit(main())
