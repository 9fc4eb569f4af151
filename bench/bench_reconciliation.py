"""Stuck orders and the reconciliation with 100,000 orders, measured beside the bare SQL of the
same reads in the same run.

    .venv/bin/python bench/bench_reconciliation.py [--orders 100000] [--page 500]

It creates a database of its own (dropped at the end), migrates the services and the console and
loads, with INSERT ... SELECT FROM generate_series, ``--orders`` orders spread over the statuses
(one applied event each, placed over the last weeks), their payments (paid, due or cancelled; one
in a hundred disagreeing with orders), the numbered invoices of the paid ones and the supplier
requests of those at the supplier. It starts the five services and the console under gunicorn
(their Dockerfiles' options) and measures, each once after one warm-up:

* the reconciliation as ``coc-console reconcile`` runs it (``reconciliation.reconcile``: orders'
  ``GET /v1/staff/order-states`` a page at a time, payments' and the gateway's
  ``POST /v1/staff/order-states`` per page), beside the same reads as bare SQL on one psycopg
  connection, page by page (the orders page, then the payments, invoices, refunds and requests of
  its ids); then five views of the Disagreements page (``GET /disagreements``, 5,000 orders
  each, following the "Next orders" links) as a signed-in browser asks for them;
* the stuck-order detector (``report_stuck``, the worker loop's pass: it reports every stuck order
  once) and a second pass (nothing new to report), beside the bare SQL of its candidates' query.

Printed: orders compared, disagreements found, HTTP calls made, seconds and orders per second.
"""

from __future__ import annotations

import argparse
import html
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime

import psycopg

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from bench_console import (  # noqa: E402
    SERVER,
    SERVICES,
    environment,
    gunicorn_options,
    machine,
    migrate,
    module_of,
    staff_session,
)
from bench_orders import start_gunicorn, stop  # noqa: E402

STATUSES = (
    "delivered",
    "delivered",
    "shipped",
    "certificate_received",
    "sent_to_supplier",
    "paid",
    "placed",
    "cancelled",
    "delivered",
    "delivered",
)
REQUEST_OF = {
    "delivered": "delivered",
    "shipped": "shipped",
    "certificate_received": "issued",
    "sent_to_supplier": "sent",
}


def load(dsn: str, orders: int) -> None:
    statuses = "ARRAY[" + ", ".join(f"'{s}'" for s in STATUSES) + "]"
    order_id = "md5('order' || n)::uuid::text"
    status = f"({statuses})[1 + n % 10]"
    requests_case = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in REQUEST_OF.items())
    statements = [
        f"""INSERT INTO orders.orders (seq, id, status, placed_at, updated_at, payment_method,
              brand, vin, first_registration_date, vehicle_extra, total_cents, currency, vat_rate,
              vat_cents, documents_required, marketing_consent, customer, shipping_address)
            SELECT n, {order_id}, {status}, now() - n * interval '30 seconds',
              now() - interval '1 day', 'card', 'Peugeot', 'VF3ABCDEF' || lpad(n::text, 8, '0'),
              date '2019-05-14', '{{}}', 24900, 'EUR', '20', 4150, '[]', false, '{{}}', '{{}}'
            FROM generate_series(1, {orders}) AS n""",
        f"""INSERT INTO orders.order_events (event_id, order_id, event_type, occurred_at,
              recorded_at, outcome, status_after)
            SELECT gen_random_uuid()::text, {order_id}, 'payment.confirmed',
              now() - n * interval '30 seconds' + interval '1 hour', now(), 'applied', {status}
            FROM generate_series(1, {orders}) AS n""",
        # payments: one in a hundred of the paid orders still due here (a disagreement)
        f"""INSERT INTO payments.payments_due (order_id, order_number, method, amount_cents,
              currency, status, event_id, created_at, paid_at)
            SELECT {order_id}, 'COC-2026-' || lpad(n::text, 6, '0'), 'card', 24900, 'EUR',
              CASE WHEN {status} = 'placed' OR n % 100 = 0 THEN 'due'
                   WHEN {status} = 'cancelled' THEN 'cancelled' ELSE 'paid' END,
              gen_random_uuid()::text, now() - interval '2 days',
              CASE WHEN {status} IN ('placed', 'cancelled') OR n % 100 = 0 THEN NULL
                   ELSE now() - interval '2 days' END
            FROM generate_series(1, {orders}) AS n""",
        f"""INSERT INTO payments.invoices_to_issue (seq, number, order_id, issued_at, provider,
              data, correlation_id)
            SELECT n, 'F-' || n, {order_id}, now(), 'systempay', '{{}}', {order_id}
            FROM generate_series(1, {orders}) AS n
            WHERE {status} NOT IN ('placed', 'cancelled') AND n % 100 <> 0""",
        f"""INSERT INTO supplier_gateway.supplier_requests (order_id, order_placed, paid,
              documents_completed, document_ids, status, created_at, updated_at, supplier,
              sent_at, issued_at, shipped_at, delivered_at)
            SELECT {order_id}, true, true, true, '[]', CASE {status} {requests_case} END,
              now(), now(), 'psa-coc', now(),
              CASE WHEN {status} IN ('certificate_received', 'shipped', 'delivered')
                   THEN now() END,
              CASE WHEN {status} IN ('shipped', 'delivered') THEN now() END,
              CASE WHEN {status} = 'delivered' THEN now() END
            FROM generate_series(1, {orders}) AS n
            WHERE {status} IN ('delivered', 'shipped', 'certificate_received',
                               'sent_to_supplier')""",
    ]
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)
        for table in (
            "orders.orders",
            "orders.order_events",
            "payments.payments_due",
            "payments.invoices_to_issue",
            "supplier_gateway.supplier_requests",
        ):
            conn.execute(f"VACUUM ANALYZE {table}")


def bare_reconciliation(dsn: str, page: int) -> int:
    """The reconciliation's reads as bare SQL, page by page; returns the orders read."""
    read, after = 0, 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            rows = conn.execute(
                """SELECT id, seq, placed_at, status, updated_at FROM orders.orders
                   WHERE seq > %s ORDER BY seq LIMIT %s""",
                (after, page),
            ).fetchall()
            ids = [r[0] for r in rows]
            if ids:
                for sql in (
                    """SELECT order_id, status, paid_at FROM payments.payments_due
                       WHERE order_id = ANY(%s)""",
                    """SELECT order_id, number FROM payments.billing_documents
                       WHERE kind = 'invoice' AND order_id = ANY(%(ids)s)
                       UNION ALL SELECT order_id, number FROM payments.invoices_to_issue
                       WHERE order_id = ANY(%(ids)s)""",
                    """SELECT order_id, sum(amount_cents) FROM payments.refunds
                       WHERE order_id = ANY(%s) AND status = 'completed' GROUP BY order_id""",
                    """SELECT order_id, status, supplier, sent_at, issued_at, shipped_at,
                       delivered_at FROM supplier_gateway.supplier_requests
                       WHERE order_id = ANY(%s)""",
                ):
                    params = {"ids": ids} if "%(ids)s" in sql else (ids,)
                    conn.execute(sql, params).fetchall()
            read += len(rows)
            if len(rows) < page:
                return read
            after = rows[-1][1]


STUCK_CANDIDATES_SQL = """
SELECT o.id, o.seq, o.placed_at, o.status, o.documents_completed_at,
  (SELECT max(e.occurred_at) FROM orders.order_events e WHERE e.order_id = o.id
     AND e.outcome = 'applied' AND e.status_after = o.status) AS entered_at,
  (SELECT max(e.occurred_at) FROM orders.order_events e WHERE e.order_id = o.id
     AND e.event_type = 'supplier.request_overdue') AS promise_passed_at
FROM orders.orders o WHERE o.seq > %s AND o.status IN ('placed', 'payment_failed', 'paid',
  'supplier_rejected', 'sent_to_supplier', 'certificate_received', 'shipped')
ORDER BY o.seq LIMIT 500"""


def bare_stuck(dsn: str) -> int:
    read, after = 0, 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            rows = conn.execute(STUCK_CANDIDATES_SQL, (after,)).fetchall()
            read += len(rows)
            if len(rows) < 500:
                return read
            after = rows[-1][1]


def start_all(env: dict, workdir: str) -> tuple[list, dict, str]:
    """The five services and the console under gunicorn (as bench_console starts them); returns
    the processes, the services' URLs and the console's."""
    from coc_console.config import url_variable
    from coc_shared.testing import STAFF_KEYS

    procs, urls = [], {}
    for service in (*SERVICES, "console"):
        app = f"{module_of(service)}.entrypoints.api:create_app()"
        service_env = env
        if service == "console":
            service_env = {**env, "STAFF_TOKEN_PRIVATE_KEY": STAFF_KEYS[0]}
            service_env.update({url_variable(s): u for s, u in urls.items()})
        log = open(os.path.join(workdir, f"{service}.log"), "w")
        proc, port = start_gunicorn(app, service_env, gunicorn_options(service), log)
        procs.append(proc)
        urls[service] = f"http://127.0.0.1:{port}"
    console = urls.pop("console")
    return procs, urls, console


def with_env(env: dict, call):
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return call()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def seconds(call) -> tuple[float, object]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--page", type=int, default=500)
    parser.add_argument("--keep", action="store_true", help="keep the database and the logs")
    args = parser.parse_args(argv)
    run = uuid.uuid4().hex[:8]
    name = f"coc_bench_reconcile_{run}"
    base = SERVER.rsplit("/", 1)[0]
    dsn = f"{base}/{name}"
    db_url = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    workdir = tempfile.mkdtemp(prefix="coc-bench-reconcile-")
    env = environment(db_url, f"bench{run}.", workdir)
    print(
        f"coc reconciliation benchmark  {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}  ", end=""
    )
    print(f"{machine()}\ndatabase {name}; logs in {workdir}")
    with psycopg.connect(SERVER, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    procs = []
    try:
        migrate(env)
        took, _ = seconds(lambda: load(dsn, args.orders))
        print(
            f"loaded {args.orders:,} orders with their payments, invoices and requests in "
            f"{took:.1f} s"
        )
        procs, urls, console = start_all(env, workdir)
        browser = staff_session(env, console)
        measure(args, env, dsn, urls, browser, console)
        return 0
    finally:
        for proc in procs:
            stop(proc)
        if not args.keep:
            with psycopg.connect(SERVER, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def measure(args, env: dict, dsn: str, urls: dict, browser, console: str) -> None:
    from datetime import timedelta

    from coc_console.adapters.services_client import StaffApiClient
    from coc_console.domain.model import Staff
    from coc_console.service_layer import reconciliation
    from coc_shared.testing import STAFF_KEYS

    client = StaffApiClient(urls, STAFF_KEYS[0], 120.0)
    calls = {"n": 0}
    original = client.call

    def counting(*a, **kw):
        calls["n"] += 1
        return original(*a, **kw)

    client.call = counting
    staff = Staff(0, "bench", "support")
    n = args.orders

    def reconcile():
        return reconciliation.reconcile(client, staff, settle=timedelta(0), page=args.page)

    reconcile()  # warm-up
    calls["n"] = 0
    took, result = seconds(reconcile)
    raw, read = seconds(lambda: bare_reconciliation(dsn, args.page))
    print(
        f"\nreconciliation of {result.orders_checked:,} orders ({args.page} per page): "
        f"{len(result.disagreements):,} disagreements, {calls['n']} HTTP calls"
    )
    print(f"  through the staff APIs  {took:7.2f} s  {n / took:9,.0f} orders/s")
    print(
        f"  bare SQL, same reads    {raw:7.2f} s  {read / raw:9,.0f} orders/s  (x{took / raw:.1f})"
    )
    views, url = [], f"{console}/disagreements?settle_minutes=0"
    for _ in range(5):  # the first views, each following the previous one's "Next orders" link
        took, answer = seconds(lambda url=url: browser.get(url, timeout=600))
        assert answer.status_code == 200 and 'id="disagreements"' in answer.text, answer.text[:300]
        views.append(took)
        found = re.search(r'id="next" href="([^"]*)"', answer.text)
        if found is None:
            break
        url = console + html.unescape(found.group(1))
    print(
        f"  the Disagreements page  {statistics.median(views):7.2f} s  median of {len(views)} "
        f"views of {reconciliation.PAGE_VIEW_ORDERS:,} orders (max {max(views):.2f} s)"
    )

    from coc_orders.service import definition
    from coc_orders.service_layer import stuck
    from coc_shared.service import Runtime

    runtime = with_env(env, lambda: Runtime(definition))
    try:
        first, reported = seconds(lambda: stuck.report_stuck(runtime, runtime.config.deadlines))
        second, again = seconds(lambda: stuck.report_stuck(runtime, runtime.config.deadlines))
    finally:
        runtime.dispose()
    raw, read = seconds(lambda: bare_stuck(dsn))
    print(f"\nstuck-order detector over {n:,} orders ({read:,} in a watched status):")
    print(f"  first pass   {first:7.2f} s  {len(reported):,} reported (order.stuck emitted)")
    print(f"  second pass  {second:7.2f} s  {len(again):,} reported (each once)")
    print(f"  bare SQL of its candidates' query  {raw:7.2f} s")
    page_took, answer = seconds(lambda: browser.get(f"{console}/stuck", timeout=600))
    assert answer.status_code == 200 and 'id="stuck"' in answer.text, answer.text[:300]
    print(f"  the Stuck orders page (first 200)  {page_took:7.2f} s")
    load1, load5, _ = os.getloadavg()
    print(f"\nload average during the run: {load1:.2f} (1 min), {load5:.2f} (5 min)")


if __name__ == "__main__":
    sys.exit(main())
