"""Load run of ``POST /v1/orders`` beside a bare Flask endpoint, both under gunicorn on PostgreSQL.

    .venv/bin/python bench/bench_orders.py [--clients 16] [--seconds 10] [--workers 4]

* orders: the service as deployed (``gunicorn 'coc_orders.entrypoints.api:create_app()'``), valid
  guest orders (full validation, pricing, order row, order.placed in the outbox, one transaction);
* bare: a Flask endpoint (this file's ``bare_app()``) that inserts the same JSON into one table in
  one transaction, with no validation.

Same gunicorn settings for both, same PostgreSQL (a database of its own, dropped at the end), the
same closed-loop load: ``--clients`` threads each sending one request after the other on a kept-alive
connection. Prints requests/s and p50/p99 latency of each, and the ratio.
Target (issue 3): orders ≥ half the bare rate, p99 < 100 ms at 16 clients.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BIN = os.path.join(ROOT, ".venv", "bin")
PG = os.environ.get("DATABASE_URL", "postgresql://root@127.0.0.1:5432/coc")

ORDER = {
    "customer": {"first_name": "Émilie", "last_name": "Dupont-Lefèvre", "email": "emilie@example.org",
                 "phone": "+33612345678"},
    "shipping_address": {"line1": "1 rue de la Paix", "postal_code": "75002", "city": "Paris", "country": "FR"},
    "company": {"name": "Garage Martin SARL", "siren": "303265045", "vat_number": "FR40303265045"},
    "vehicle": {"vin": "VF3ABCDEF12345678", "first_registration_date": "2019-05-14"},
    "payment_method": "card",
}


def bare_app():
    """The reference: the same JSON inserted in one transaction, nothing else."""
    from flask import Flask, jsonify, request
    from sqlalchemy import create_engine, text

    url = os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_engine(url, pool_size=5, max_overflow=10)
    app = Flask("bare")

    @app.post("/bare")
    def bare():
        body = request.get_json()
        with engine.begin() as conn:
            new_id = conn.execute(text("INSERT INTO bench_bare (body) VALUES (CAST(:b AS jsonb)) RETURNING id"),
                                  {"b": json.dumps(body)}).scalar_one()
        return jsonify({"id": new_id}), 201

    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def start_gunicorn(target: str, env: dict, workers: int, threads: int, chdir: str | None = None):
    port = free_port()
    cmd = [os.path.join(BIN, "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
           "--threads", str(threads), "--log-level", "warning"]
    if chdir:
        cmd += ["--chdir", chdir]
    proc = subprocess.Popen(cmd + [target], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    wait_port(port, proc)
    return proc, port


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def load(port: int, path: str, clients: int, seconds: float, warmup: float) -> dict:
    body = json.dumps(ORDER).encode()
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start_at = time.monotonic() + warmup
    end_at = start_at + seconds

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            t0 = time.monotonic()
            if t0 >= end_at:
                break
            try:
                conn.request("POST", path, body=body, headers={"Content-Type": "application/json",
                                                               "User-Agent": "bench_orders/1"})
                response = conn.getresponse()
                response.read()
                ok = response.status == 201
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                ok = False
            t1 = time.monotonic()
            if t0 >= start_at:
                if ok:
                    latencies[i].append(t1 - t0)
                else:
                    errors[i] += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    all_lat = sorted(x for lat in latencies for x in lat)
    n = len(all_lat)
    return {"requests": n, "errors": sum(errors), "rps": n / seconds,
            "p50_ms": statistics.median(all_lat) * 1000 if n else float("nan"),
            "p99_ms": all_lat[min(n - 1, int(n * 0.99))] * 1000 if n else float("nan")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (both apps)")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (both apps)")
    args = parser.parse_args()

    sys.path.insert(0, os.path.join(ROOT, "shared", "src"))
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    server = make_url(PG.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"coc_bench_orders_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db_url = server.set(database=name).render_as_string(hide_password=False).replace("+psycopg", "")
    env = dict(os.environ, DATABASE_URL=db_url, PARKING_DATABASE_URL=db_url, BUS_PREFIX=f"bench{uuid.uuid4().hex[:6]}.",
               LOG_LEVEL="WARNING", ORDERS_RATE_LIMIT_ORDERS="100000000/minute",
               CUSTOMER_TOKEN_SECRET="bench-secret-" + "x" * 32, PYTHONPATH=HERE)
    procs = []
    try:
        subprocess.run([os.path.join(BIN, "coc-orders"), "migrate"], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE bench_bare (id bigserial PRIMARY KEY, body jsonb NOT NULL, "
                              "created_at timestamptz NOT NULL DEFAULT now())"))
        results = {}
        for label, target, chdir, path in [("bare", "bench_orders:bare_app()", HERE, "/bare"),
                                           ("orders", "coc_orders.entrypoints.api:create_app()", None, "/v1/orders")]:
            proc, port = start_gunicorn(target, env, args.workers, args.threads, chdir)
            procs.append(proc)
            results[label] = load(port, path, args.clients, args.seconds, args.warmup)
            stop(proc)
        with engine.connect() as conn:
            placed = conn.execute(text("SELECT count(*) FROM orders.orders")).scalar_one()
            outbox = conn.execute(text("SELECT count(*) FROM orders.outbox WHERE event_type = 'order.placed'")).scalar_one()
        engine.dispose()
    finally:
        for proc in procs:
            stop(proc)
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()

    print(f"POST /v1/orders vs bare insert — {args.clients} clients, {args.seconds:.0f} s each, "
          f"gunicorn {args.workers} workers x {args.threads} threads, PostgreSQL")
    print(f"{'':8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for label in ("bare", "orders"):
        r = results[label]
        print(f"{label:8} {r['rps']:9.1f} {r['p50_ms']:8.1f} {r['p99_ms']:8.1f} {r['errors']:7d}")
    ratio = results["orders"]["rps"] / results["bare"]["rps"] if results["bare"]["rps"] else float("nan")
    print(f"orders / bare rate: {ratio:.2f} (target >= 0.50); orders p99 {results['orders']['p99_ms']:.1f} ms "
          f"(target < 100 ms); rows: {placed} orders, {outbox} order.placed in the outbox")
    return 0


if __name__ == "__main__":
    sys.exit(main())
