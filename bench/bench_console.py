"""The support console's pages with 100,000 parked messages and 100,000 orders in the database,
measured as a browser asks for them, beside the bare SQL of the same queries in the same run.

    .venv/bin/python bench/bench_console.py [--orders 100000] [--parked 100000] [--requests 300]

It creates a database of its own (dropped at the end), migrates the five services and the console,
loads the orders (with three timeline events each and a support record on one in ten) and the
parked messages (spread over five services, six event types, four error classes, the last 48
hours; 90 % waiting, the rest discarded) with INSERT ... SELECT FROM generate_series, then VACUUM
ANALYZE. It starts the five services and the console under gunicorn with the options of their
Dockerfiles' CMD, logs a staff member in (password and
TOTP code, as a person would) and, with a ``requests`` session carrying the session cookie, asks
``--requests`` times in a row (after 20 of warm-up):

* the grouped failures page ``GET /failures`` (each service's parked-summary: groups and the
  chart's hours),
* a group's page ``GET /failures/<service>?event_type&error_type`` (the largest group),
* an order's story ``GET /orders?q=<number>`` (a random order each time: its timeline, payment,
  supplier request, mails, GDPR requests, support records, parked messages in every service, the
  console's audit entries).

Beside each, the same queries as bare SQL on one psycopg connection (no HTTP, no Python layers):
the ten summary queries (groups and hours of five services); the group's messages; the story's
look-ups (order by number, its events, its support records, its parked messages in the five
services). Printed: p50, p95, p99 and max of each, the target (p99 < 300 ms), the load average.
Exit status 0 when every page meets it, 1 otherwise.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import random
import re
import sys
import tempfile
import time
import uuid
from datetime import datetime

import psycopg
import pyotp
import requests

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from bench_orders import start_gunicorn, stop  # noqa: E402

SERVER = os.environ.get("DATABASE_URL", "postgresql://root@127.0.0.1:5432/postgres")
AMQP = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
SERVICES = ("orders", "payments", "supplier-gateway", "notifications", "gdpr")
TARGET_P99_MS = 300.0
EVENT_TYPES = (
    "order.placed",
    "payment.confirmed",
    "documents.sent_to_supplier",
    "certificate.shipped",
    "invoice.issued",
    "refund.requested",
)
ERRORS = ("KeyError", "TimeoutError", "IntegrityError", "SMTPServerDisconnected")
PASSWORD = "bench console pass phrase"


def module_of(service: str) -> str:
    return "coc_" + service.replace("-", "_")


def database_urls(run: str) -> tuple[str, str]:
    """(SQLAlchemy URL of the run's database, its libpq DSN)."""
    base = SERVER.rsplit("/", 1)[0]
    dsn = f"{base}/coc_bench_console_{run}"
    return dsn.replace("postgresql://", "postgresql+psycopg://", 1), dsn


def environment(db_url: str, prefix: str, workdir: str) -> dict:
    from coc_shared.testing import STAFF_KEYS, TEST_KEK

    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": db_url,
            "PARKING_DATABASE_URL": db_url,
            "RABBITMQ_URL": AMQP,
            "BUS_PREFIX": prefix,
            "BUS_VERIFY_PUBLISHERS": "false",
            "STAFF_TOKEN_PUBLIC_KEY": STAFF_KEYS[1],
            "CUSTOMER_TOKEN_SECRET": "bench-customer-secret-" + "y" * 32,
            "PERSONAL_DATA_KEK": TEST_KEK,
            "LOG_LEVEL": "WARNING",
            # the services' own settings, as the tests set them (documents and certificates in
            # this run's folder)
            "ORDERS_DOCUMENT_KEY": base64.b64encode(b"k" * 32).decode(),
            "ORDERS_DOCUMENT_STORE": "local",
            "ORDERS_DOCUMENTS_DIR": os.path.join(workdir, "documents"),
            "ORDERS_RATE_LIMIT_STORAGE": "memory://",
            "ORDERS_DOCUMENT_LINK_SECRET": "bench-document-link-secret-" + "l" * 32,
            "SUPPLIER_GATEWAY_SUPPLIER_SECRET": "bench-supplier-secret-" + "s" * 32,
            "SUPPLIER_GATEWAY_DOCUMENT_LINK_SECRET": "bench-document-link-secret-" + "l" * 32,
            "SUPPLIER_GATEWAY_CERTIFICATE_KEY": base64.b64encode(b"c" * 32).decode(),
            "SUPPLIER_GATEWAY_CERTIFICATE_STORE": "local",
            "SUPPLIER_GATEWAY_CERTIFICATES_DIR": os.path.join(workdir, "certificates"),
            "NOTIFICATIONS_UNSUBSCRIBE_SECRET": "bench-unsubscribe-secret-" + "u" * 32,
        }
    )
    return env


def migrate(env: dict) -> None:
    """Every schema, as ``coc-<service> migrate`` would (in this process, with ``env``)."""
    import importlib

    from coc_shared.service import Runtime

    saved = dict(os.environ)
    os.environ.update(env)
    try:
        for service in (*SERVICES, "console"):
            definition = importlib.import_module(module_of(service) + ".service").definition
            runtime = Runtime(definition)
            runtime.migrate()
            runtime.dispose()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def load(dsn: str, orders: int, parked: int) -> None:
    """The orders (three events each, a support record on one in ten) and the parked messages."""
    services = "ARRAY[" + ", ".join(f"'{s}'" for s in SERVICES) + "]"
    events = "ARRAY[" + ", ".join(f"'{e}'" for e in EVENT_TYPES) + "]"
    errors = "ARRAY[" + ", ".join(f"'{e}'" for e in ERRORS) + "]"
    order_id = "md5('order' || n)::uuid::text"
    statements = [
        f"""INSERT INTO orders.orders (seq, id, status, placed_at, updated_at, payment_method,
              brand, vin, first_registration_date, vehicle_extra, total_cents, currency, vat_rate,
              vat_cents, documents_required, marketing_consent, customer, shipping_address)
            SELECT n, {order_id}, 'paid', now() - n * interval '1 minute', now(), 'card',
              'peugeot', 'VF3ABCDEF' || lpad(n::text, 8, '0'), date '2019-05-14', '{{}}', 24900,
              'EUR', '0.20', 4150, '[]', false,
              json_build_object('first_name', 'Émilie', 'email',
                                'customer' || n || '@example.org'),
              '{{"line1": "1 rue de la Paix", "city": "Paris", "country": "FR"}}'
            FROM generate_series(1, {orders}) AS n""",
        f"""INSERT INTO orders.order_events (event_id, order_id, event_type, occurred_at,
              recorded_at, outcome, status_after)
            SELECT gen_random_uuid()::text, {order_id}, e.type,
              now() - n * interval '1 minute' + e.k * interval '1 second', now(), 'applied', e.st
            FROM generate_series(1, {orders}) AS n,
              (VALUES (0, 'order.placed', 'placed'), (1, 'payment.confirmed', 'paid'),
                      (2, 'documents.sent_to_supplier', 'at_supplier')) AS e(k, type, st)""",
        f"""INSERT INTO orders.support_records (id, order_id, account_id, channel, summary, staff,
              staff_role, contacted_at, recorded_at)
            SELECT gen_random_uuid()::text, {order_id}, NULL, 'phone',
              'asked when the certificate ships', 'sam', 'support', now(), now()
            FROM generate_series(1, {orders}, 10) AS n""",
        f"""INSERT INTO ops.parked_messages (service, host, queue, routing_key, event_id,
              event_type, order_id, correlation_id, body, headers, properties, error_type,
              error_message, attempts, first_failed_at, last_failed_at, parked_at, status)
            SELECT s.service, 'bench', 'coc.' || s.service, s.event_type, s.event_id,
              s.event_type, s.order_id, s.order_id,
              convert_to(json_build_object('id', s.event_id, 'type', s.event_type,
                'data', json_build_object('order_id', s.order_id))::text, 'UTF8'),
              '{{}}', '{{}}', s.error_type, s.error_type || ': the handler failed', 5,
              now() - (n % 2880) * interval '1 minute' - interval '5 minutes',
              now() - (n % 2880) * interval '1 minute',
              now() - (n % 2880) * interval '1 minute',
              CASE WHEN n % 10 = 0 THEN 'discarded' ELSE 'parked' END
            FROM generate_series(1, {parked}) AS n,
              LATERAL (SELECT ({services})[1 + n % 5] AS service,
                ({events})[1 + (n / 5) % 6] AS event_type,
                ({errors})[1 + (n / 30) % 4] AS error_type,
                gen_random_uuid()::text AS event_id,
                md5('order' || (1 + (n * 7919) % {orders}))::uuid::text AS order_id) AS s""",
    ]
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)
        for table in ("orders.orders", "orders.order_events", "orders.support_records"):
            conn.execute(f"VACUUM ANALYZE {table}")
        conn.execute("VACUUM ANALYZE ops.parked_messages")


def gunicorn_options(service: str) -> list[str]:
    """The gunicorn options of the service's Dockerfile CMD (a JSON array), without the bind
    address and the application."""
    text = open(os.path.join(ROOT, "services", service, "Dockerfile"), encoding="utf-8").read()
    argv = json.loads(re.search(r"^CMD\s+(\[.*\])\s*$", text, re.MULTILINE).group(1))
    options, rest = [], argv[1:-1]
    while rest:
        arg = rest.pop(0)
        if arg in ("--bind", "-b"):
            rest.pop(0)
        elif not arg.startswith("--bind="):
            options.append(arg)
    return options


def start_all(env: dict, workdir: str) -> tuple[list, str]:
    """The five services and the console under gunicorn (their Dockerfiles' options)."""
    procs, urls = [], {}
    for service in SERVICES:
        options = gunicorn_options(service)
        log = open(os.path.join(workdir, f"{service}.log"), "w")
        proc, port = start_gunicorn(
            f"{module_of(service)}.entrypoints.api:create_app()", env, options, log
        )
        procs.append(proc)
        urls[service] = f"http://127.0.0.1:{port}"
    from coc_console.config import url_variable
    from coc_shared.testing import STAFF_KEYS

    console_env = {**env, "STAFF_TOKEN_PRIVATE_KEY": STAFF_KEYS[0]}
    console_env.update({url_variable(s): u for s, u in urls.items()})
    options = gunicorn_options("console")
    log = open(os.path.join(workdir, "console.log"), "w")
    proc, port = start_gunicorn(
        "coc_console.entrypoints.api:create_app()", console_env, options, log
    )
    procs.append(proc)
    return procs, f"http://127.0.0.1:{port}"


def staff_session(env: dict, console: str) -> requests.Session:
    """A browser's session: the log-in form (its CSRF cookie), password and TOTP code."""
    from coc_console.service import definition
    from coc_console.service_layer import auth
    from coc_shared.service import Runtime

    saved = dict(os.environ)
    os.environ.update(env)
    try:
        runtime = Runtime(definition)
        created = auth.create_staff(runtime, "bench-admin", "admin", PASSWORD)
        runtime.dispose()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    browser = requests.Session()
    form = browser.get(f"{console}/login")
    csrf = re.search(r'name="csrf" value="([^"]*)"', form.text).group(1)
    answer = browser.post(
        f"{console}/login",
        data={
            "csrf": csrf,
            "name": "bench-admin",
            "password": PASSWORD,
            "code": pyotp.TOTP(created.totp_secret).now(),
        },
        allow_redirects=False,
    )
    if answer.status_code != 302:
        raise SystemExit(f"log-in refused: {answer.status_code} {answer.text[:300]}")
    return browser


def percentiles(times: list[float]) -> dict:
    ordered = sorted(times)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000

    return {"p50": at(0.5), "p95": at(0.95), "p99": at(0.99), "max": ordered[-1] * 1000}


def timed(call, count: int, warm: int = 20) -> list[float]:
    for _ in range(warm):
        call()
    times = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def page(browser: requests.Session, url: str, must: str):
    def get():
        answer = browser.get(url)
        if answer.status_code != 200 or must not in answer.text:
            raise SystemExit(f"{url}: {answer.status_code} {answer.text[:500]}")

    return get


# the bare SQL of the pages' queries ---------------------------------------------------------
SUMMARY_SQL = (
    """SELECT event_type, error_type, count(*), min(first_failed_at), max(last_failed_at)
       FROM ops.parked_messages WHERE status = 'parked' AND service = %(s)s
       GROUP BY event_type, error_type ORDER BY count(*) DESC, event_type, error_type""",
    """SELECT date_trunc('hour', timezone('UTC', parked_at)) AS hour, count(*)
       FROM ops.parked_messages WHERE service = %(s)s
       AND parked_at >= date_trunc('hour', now()) - interval '23 hours' GROUP BY hour""",
)
GROUP_SQL = """SELECT id, event_id, event_type, order_id, error_type, error_message, attempts,
       first_failed_at, last_failed_at, status FROM ops.parked_messages
       WHERE status = 'parked' AND service = %(s)s AND event_type = %(e)s AND error_type = %(x)s
       ORDER BY id LIMIT 200"""
STORY_SQL = (
    "SELECT * FROM orders.orders WHERE seq = %(seq)s",
    "SELECT * FROM orders.order_events WHERE order_id = %(id)s ORDER BY occurred_at, id",
    """SELECT * FROM orders.support_records WHERE order_id = %(id)s
       ORDER BY contacted_at DESC, id LIMIT 200""",
)
STORY_PARKED_SQL = """SELECT id, service, queue, routing_key, event_id, event_type, order_id,
       error_type, error_message, attempts, first_failed_at, last_failed_at, parked_at, status
       FROM ops.parked_messages WHERE service = %(s)s AND order_id = %(id)s ORDER BY id LIMIT 100"""


def bare(conn, statements: list[tuple[str, dict]]):
    def run():
        for sql, params in statements:
            conn.execute(sql, params).fetchall()

    return run


def largest_group(conn) -> tuple[str, str, str]:
    return conn.execute(
        """SELECT service, event_type, error_type FROM ops.parked_messages WHERE status = 'parked'
           GROUP BY 1, 2, 3 ORDER BY count(*) DESC LIMIT 1"""
    ).fetchone()


def machine() -> str:
    return f"{platform.node()} {os.cpu_count()} CPUs, Python {platform.python_version()}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--parked", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--keep", action="store_true", help="keep the database and the logs")
    args = parser.parse_args(argv)
    run = uuid.uuid4().hex[:8]
    db_url, dsn = database_urls(run)
    workdir = tempfile.mkdtemp(prefix="coc-bench-console-")
    env = environment(db_url, f"bench{run}.", workdir)
    print(f"coc console benchmark  {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}  {machine()}")
    print(f"database coc_bench_console_{run}; logs in {workdir}")
    with psycopg.connect(SERVER, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE coc_bench_console_{run}")
    procs = []
    try:
        migrate(env)
        started = time.perf_counter()
        load(dsn, args.orders, args.parked)
        with psycopg.connect(dsn) as conn:
            counts = conn.execute(
                """SELECT (SELECT count(*) FROM orders.orders),
                          (SELECT count(*) FROM ops.parked_messages),
                          (SELECT count(*) FROM ops.parked_messages WHERE status = 'parked')"""
            ).fetchone()
        print(
            f"loaded {counts[0]:,} orders (3 events each), {counts[1]:,} parked messages "
            f"({counts[2]:,} waiting) in {time.perf_counter() - started:.1f} s"
        )
        procs, console = start_all(env, workdir)
        browser = staff_session(env, console)
        return measure(args, dsn, browser, console)
    finally:
        for proc in procs:
            stop(proc)
        if not args.keep:
            with psycopg.connect(SERVER, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS coc_bench_console_{run} WITH (FORCE)")


def measure(args, dsn: str, browser: requests.Session, console: str) -> int:
    rng = random.Random(14)
    with psycopg.connect(dsn, autocommit=True) as conn:
        service, event_type, error_type = largest_group(conn)
        ids = {
            seq: oid
            for seq, oid in conn.execute(
                "SELECT seq, id FROM orders.orders WHERE seq = ANY(%s)",
                [rng.sample(range(1, args.orders + 1), min(args.orders, 2000))],
            )
        }
        placed = dict(
            conn.execute(
                "SELECT seq, placed_at FROM orders.orders WHERE seq = ANY(%s)", [list(ids)]
            ).fetchall()
        )
        numbers = {seq: f"COC-{placed[seq].year:04d}-{seq:06d}" for seq in ids}
        seqs = list(ids)

        def story_page():
            seq = rng.choice(seqs)
            page(browser, f"{console}/orders?q={numbers[seq]}", ids[seq])()

        def story_sql():
            seq = rng.choice(seqs)
            statements = [(sql, {"seq": seq, "id": ids[seq]}) for sql in STORY_SQL]
            statements += [(STORY_PARKED_SQL, {"s": s, "id": ids[seq]}) for s in SERVICES]
            bare(conn, statements)()

        group_url = f"{console}/failures/{service}?" + requests.compat.urlencode(
            {"event_type": event_type, "error_type": error_type}
        )
        summary = [(sql, {"s": s}) for s in SERVICES for sql in SUMMARY_SQL]
        group = [(GROUP_SQL, {"s": service, "e": event_type, "x": error_type})]
        cases = [
            (
                "grouped failures  GET /failures",
                page(browser, f"{console}/failures", 'id="groups"'),
                bare(conn, summary),
                "10 summary queries (groups + hours of 5 services)",
            ),
            (
                f"a group's page    GET /failures/{service}",
                page(browser, group_url, 'id="messages"'),
                bare(conn, group),
                "the group's 200 oldest messages",
            ),
            (
                "an order's story  GET /orders?q=<number>",
                story_page,
                story_sql,
                "order by number, events, support records, parked in 5 services",
            ),
        ]
        print(f"largest group: {service} {event_type} {error_type}")
        print(
            f"{args.requests} requests per page, one after the other (a browser), after 20 of "
            f"warm-up; bare SQL: the same queries on one psycopg connection, same count"
        )
        print(f"{'':44} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}   (ms)")
        ok = True
        for name, http_call, sql_call, what in cases:
            web = percentiles(timed(http_call, args.requests))
            raw = percentiles(timed(sql_call, args.requests))
            verdict = "PASS" if web["p99"] < TARGET_P99_MS else "MISS"
            ok = ok and verdict == "PASS"
            print(
                f"{name:44} "
                + " ".join(f"{web[k]:8.1f}" for k in ("p50", "p95", "p99", "max"))
                + f"   {verdict} (p99 < {TARGET_P99_MS:.0f} ms)"
            )
            print(
                f"{'  bare SQL, same queries':44} "
                + " ".join(f"{raw[k]:8.1f}" for k in ("p50", "p95", "p99", "max"))
                + f"   ({what})"
            )
        load1, load5, _ = os.getloadavg()
        print(f"load average during the run: {load1:.2f} (1 min), {load5:.2f} (5 min)")
        print("RESULT:", "PASS" if ok else "MISS")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
