"""Load run of ``POST /v1/orders`` beside a bare Flask endpoint, both under gunicorn on PostgreSQL.

    .venv/bin/python bench/bench_orders.py [--repeat 3] [--clients 16] [--seconds 10]

* orders: the service as deployed: ``gunicorn 'coc_orders.entrypoints.api:create_app()'`` with the
  options of the ``CMD`` of ``services/orders/Dockerfile`` (workers, threads, worker class... read
  from the file, so that the bench cannot drift from the deployment); valid guest orders (full
  validation, pricing, order row, timeline row, order.placed in the outbox, one transaction);
* bare: a Flask endpoint (this file's ``bare_app()``) that inserts the same JSON into one table in
  one transaction, with no validation, under the same gunicorn options.

Same PostgreSQL (a database of its own, dropped at the end), the same closed-loop load:
``--clients`` threads each sending one request after the other (on a kept-alive connection when
the server keeps it). ``--repeat N`` rounds, each measuring bare then orders back to back, so that
each round's ratio compares two measurements taken under the same machine load. Printed per round
and summarised (best and spread): requests/s, p50/p99 latency, errors, the CPU per request of the
server (gunicorn processes) and of its PostgreSQL backends (from /proc: little affected by other
load; PostgreSQL runs on this machine), the load average and how busy the
two CPUs were during the measurement. Verdict on the best round (the least disturbed one), with the
targets of issue 3: orders >= half the bare rate, orders p99 < 100 ms at 16 clients.
Exit status 0 on PASS, 1 on MISS, 2 on a broken run (errors, missing rows).
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BIN = os.path.join(ROOT, ".venv", "bin")
DOCKERFILE = os.path.join(ROOT, "services", "orders", "Dockerfile")
PG = os.environ.get("DATABASE_URL", "postgresql://root@127.0.0.1:5432/coc")
TARGET_RATIO = 0.5
TARGET_P99_MS = 100.0

ORDER = {
    "customer": {
        "first_name": "Émilie",
        "last_name": "Dupont-Lefèvre",
        "email": "emilie@example.org",
        "phone": "+33612345678",
    },
    "shipping_address": {
        "line1": "1 rue de la Paix",
        "postal_code": "75002",
        "city": "Paris",
        "country": "FR",
    },
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
            new_id = conn.execute(
                text("INSERT INTO bench_bare (body) VALUES (CAST(:b AS jsonb)) RETURNING id"),
                {"b": json.dumps(body)},
            ).scalar_one()
        return jsonify({"id": new_id}), 201

    return app


# gunicorn as deployed ---------------------------------------------------------------------------


def deployed_gunicorn_options(path: str = DOCKERFILE) -> list[str]:
    """The gunicorn options of the Dockerfile's CMD, without --bind/-b and the application."""
    text = open(path, encoding="utf-8").read()
    match = re.search(r"^CMD\s+(\[.*\])\s*$", text, re.MULTILINE)
    if match:
        argv = json.loads(match.group(1))
    else:
        match = re.search(r"^CMD\s+(.+)$", text, re.MULTILINE)
        if not match:
            raise SystemExit(f"no CMD in {path}")
        argv = shlex.split(match.group(1))
    if not argv or os.path.basename(argv[0]) != "gunicorn":
        raise SystemExit(f"the CMD of {path} does not run gunicorn: {argv}")
    options, rest = [], argv[1:]
    i = 0
    while i < len(rest):
        arg = rest[i]
        if arg in ("--bind", "-b"):
            i += 2
            continue
        if arg.startswith("--bind="):
            i += 1
            continue
        if not arg.startswith("-"):  # the application ("module:callable")
            i += 1
            continue
        options.append(arg)
        if (
            "=" not in arg
            and i + 1 < len(rest)
            and not rest[i + 1].startswith("-")
            and ":" not in rest[i + 1]
        ):
            options.append(rest[i + 1])
            i += 1
        i += 1
    return options


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, log, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.flush()
            with open(log.name, encoding="utf-8", errors="replace") as f:
                raise RuntimeError(f"gunicorn exited with {proc.returncode}: {f.read()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def start_gunicorn(target: str, env: dict, options: list[str], log, chdir: str | None = None):
    """gunicorn on a free port; its output (the service's JSON log lines: stderr) goes to
    ``log``."""
    port = free_port()
    cmd = [os.path.join(BIN, "gunicorn"), "--bind", f"127.0.0.1:{port}", *options]
    if chdir:
        cmd += ["--chdir", chdir]
    proc = subprocess.Popen(cmd + [target], env=env, stdout=log, stderr=log, start_new_session=True)
    wait_port(port, proc, log)
    return proc, port


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# measuring ---------------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                found += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return found


def process_tree_cpu(pid: int) -> float:
    """utime + stime (seconds) of ``pid`` and its living descendants (the gunicorn workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            continue
        todo += _children(p)
    return total


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot."""
    with open("/proc/stat") as f:
        values = [int(x) for x in f.readline().split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return total - idle, total


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def backends_cpu(pids: list[int]) -> float:
    """utime + stime (seconds) of these PostgreSQL backends (the server runs on this machine)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            pass
    return total


def load(
    port: int, path: str, clients: int, seconds: float, warmup: float, server_pid: int, backends
) -> dict:
    body = json.dumps(ORDER).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "bench_orders/2"}
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    sent = [0] * clients  # every 201, warm-up included (to check the rows written)
    statuses: dict[int, int] = {}
    start_at = time.monotonic() + warmup
    end_at = start_at + seconds
    marks: dict[str, tuple] = {}

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            t0 = time.monotonic()
            if t0 >= end_at:
                break
            status = None
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            t1 = time.monotonic()
            if status == 201:
                sent[i] += 1
            if t0 >= start_at and t1 <= end_at:
                if status == 201:
                    latencies[i].append(t1 - t0)
                else:
                    errors[i] += 1
                    statuses[status or 0] = statuses.get(status or 0, 0) + 1
        conn.close()

    def sampler() -> None:
        time.sleep(max(0.0, start_at - 0.3 - time.monotonic()))
        pids = backends()  # the server's connections, opened during the warm-up
        time.sleep(max(0.0, start_at - time.monotonic()))
        marks["start"] = (
            process_tree_cpu(server_pid),
            backends_cpu(pids),
            machine_cpu(),
            os.getloadavg()[0],
        )
        time.sleep(max(0.0, end_at - time.monotonic()))
        marks["end"] = (
            process_tree_cpu(server_pid),
            backends_cpu(pids),
            machine_cpu(),
            os.getloadavg()[0],
        )

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    threads.append(threading.Thread(target=sampler))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    all_lat = sorted(x for lat in latencies for x in lat)
    n = len(all_lat)
    (cpu_a, pg_a, (busy_a, total_a), load_a), (cpu_b, pg_b, (busy_b, total_b), load_b) = (
        marks["start"],
        marks["end"],
    )
    return {
        "requests": n,
        "errors": sum(errors),
        "statuses": statuses,
        "ok_total": sum(sent),
        "rps": n / seconds,
        "p50_ms": percentile(all_lat, 50) * 1000,
        "p99_ms": percentile(all_lat, 99) * 1000,
        "cpu_ms": (cpu_b - cpu_a) / n * 1000 if n else float("nan"),
        "pg_cpu_ms": (pg_b - pg_a) / n * 1000 if n else float("nan"),
        "busy": (busy_b - busy_a) / max(1, total_b - total_a),
        "load": max(load_a, load_b),
    }


def wait_quiet(max_wait: float, threshold: float = 0.25) -> float:
    """Wait (at most ``max_wait`` s) for the machine to be under ``threshold`` busy over 2 s."""
    deadline = time.monotonic() + max_wait
    while True:
        busy_a, total_a = machine_cpu()
        time.sleep(2.0)
        busy_b, total_b = machine_cpu()
        busy = (busy_b - busy_a) / max(1, total_b - total_a)
        if busy < threshold or time.monotonic() >= deadline:
            return busy


def fmt(r: dict) -> str:
    return (
        f"{r['rps']:8.1f} {r['p50_ms']:7.1f} {r['p99_ms']:7.1f} {r['errors']:6d} "
        f"{r['cpu_ms']:8.2f} {r['pg_cpu_ms']:7.2f} "
        f"{r['busy'] * 100:5.0f}% {r['load']:5.2f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="rounds (bare then orders in each)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=20.0,
        help="seconds to wait, before each measurement, for the machine to be < 25%% busy",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        help="LOG_LEVEL of both servers (INFO as deployed: one JSON line per order, to a file)",
    )
    parser.add_argument(
        "--gunicorn",
        default=None,
        help="gunicorn options instead of the Dockerfile's, e.g. '--workers 4 --threads 2' "
        "(then the verdict is not about the deployment)",
    )
    args = parser.parse_args()

    deployed = deployed_gunicorn_options()
    options = shlex.split(args.gunicorn) if args.gunicorn is not None else deployed
    as_deployed = options == deployed
    if as_deployed:
        options_origin = " (as in the Dockerfile)"
    else:
        options_origin = " (NOT the Dockerfile: " + " ".join(deployed) + ")"

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    server = make_url(PG.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"coc_bench_orders_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        pg_version = conn.execute(text("SHOW server_version")).scalar_one()
    db_url = server.set(database=name).render_as_string(hide_password=False).replace("+psycopg", "")
    env = dict(
        os.environ,
        DATABASE_URL=db_url,
        PARKING_DATABASE_URL=db_url,
        BUS_PREFIX=f"bench{uuid.uuid4().hex[:6]}.",
        LOG_LEVEL=args.log_level,
        ORDERS_RATE_LIMIT_ORDERS="100000000/minute",
        CUSTOMER_TOKEN_SECRET="bench-secret-" + "x" * 32,
        PYTHONPATH=HERE,
    )
    procs: dict[str, subprocess.Popen] = {}
    log = tempfile.NamedTemporaryFile("w+b", prefix="bench_orders_", suffix=".log", delete=False)
    rounds: list[dict] = []
    broken = []
    try:
        subprocess.run(
            [os.path.join(BIN, "coc-orders"), "migrate"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.begin() as conn:
            conn.execute(
                text(
                    "CREATE TABLE bench_bare (id bigserial PRIMARY KEY, body jsonb NOT NULL, "
                    "created_at timestamptz NOT NULL DEFAULT now())"
                )
            )
        endpoints = {
            "bare": ("bench_orders:bare_app()", HERE, "/bare"),
            "orders": ("coc_orders.entrypoints.api:create_app()", None, "/v1/orders"),
        }
        ports = {}

        def backends() -> list[int]:
            with admin.connect() as conn:
                return list(
                    conn.execute(
                        text(
                            "SELECT pid FROM pg_stat_activity WHERE datname = :n AND "
                            "pid <> pg_backend_pid()"
                        ),
                        {"n": name},
                    ).scalars()
                )

        for label, (target, chdir, _) in endpoints.items():
            procs[label], ports[label] = start_gunicorn(target, env, options, log, chdir)
        print(
            f"POST /v1/orders vs bare insert: {args.clients} clients, {args.seconds:.0f} s "
            f"(+{args.warmup:.0f} s warm-up) each, {args.repeat} round(s); gunicorn "
            f"{' '.join(options)}{options_origin}; "
            f"LOG_LEVEL={args.log_level}; PostgreSQL {pg_version}; {os.cpu_count()} CPUs",
            flush=True,
        )
        print(
            f"{'round':5} {'':7} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} "
            f"{'CPU ms/r':>8} {'PG ms/r':>7} "
            f"{'busy':>6} {'load':>5}",
            flush=True,
        )
        totals = {"bare": 0, "orders": 0}
        for i in range(1, args.repeat + 1):
            results = {}
            for label, (_, _, path) in endpoints.items():
                wait_quiet(args.quiet_wait)
                results[label] = r = load(
                    ports[label],
                    path,
                    args.clients,
                    args.seconds,
                    args.warmup,
                    procs[label].pid,
                    backends,
                )
                totals[label] += r["ok_total"]
                print(f"{i:5d} {label:7} {fmt(r)}", flush=True)
                if r["errors"]:
                    broken.append(
                        f"round {i} {label}: {r['errors']} failed requests {r['statuses']}"
                    )
            results["ratio"] = (
                results["orders"]["rps"] / results["bare"]["rps"] if results["bare"]["rps"] else 0.0
            )
            print(f"{i:5d} ratio   {results['ratio']:8.2f}", flush=True)
            rounds.append(results)
        with engine.connect() as conn:
            bare_rows = conn.execute(text("SELECT count(*) FROM bench_bare")).scalar_one()
            placed = conn.execute(text("SELECT count(*) FROM orders.orders")).scalar_one()
            events = conn.execute(text("SELECT count(*) FROM orders.order_events")).scalar_one()
            outbox = conn.execute(
                text("SELECT count(*) FROM orders.outbox WHERE event_type = 'order.placed'")
            ).scalar_one()
        engine.dispose()
        if not (placed == events == outbox == totals["orders"]) or bare_rows != totals["bare"]:
            broken.append(
                f"rows do not match the 201 answers: {placed} orders, {events} timeline rows, "
                f"{outbox} order.placed in the outbox for {totals['orders']} answers; {bare_rows} "
                f"bare rows for {totals['bare']}"
            )
    finally:
        for proc in procs.values():
            stop(proc)
        with admin.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
        log.close()
        log_size = os.path.getsize(log.name)
        os.unlink(log.name)

    print(f"servers' log: {log_size / 1e6:.1f} MB at LOG_LEVEL={args.log_level}")
    print(
        f"rows: {placed} orders = {events} timeline rows = {outbox} order.placed in the outbox "
        f"(= the {totals['orders']} answers 201); {bare_rows} bare rows"
    )
    print("summary: best round (highest orders rate) and spread over the rounds (min-max)")
    for label in ("bare", "orders"):
        rs = [r[label] for r in rounds]
        print(
            f"  {label:7} req/s {max(x['rps'] for x in rs):7.1f} ({min(x['rps'] for x in rs):.1f}-"
            f"{max(x['rps'] for x in rs):.1f})  p50 ms {min(x['p50_ms'] for x in rs):.1f} "
            f"({min(x['p50_ms'] for x in rs):.1f}-{max(x['p50_ms'] for x in rs):.1f})  p99 ms "
            f"{min(x['p99_ms'] for x in rs):.1f} ({min(x['p99_ms'] for x in rs):.1f}-"
            f"{max(x['p99_ms'] for x in rs):.1f})  CPU ms/request: gunicorn "
            f"{min(x['cpu_ms'] for x in rs):.2f} "
            f"({min(x['cpu_ms'] for x in rs):.2f}-{max(x['cpu_ms'] for x in rs):.2f}), PostgreSQL "
            f"backends {min(x['pg_cpu_ms'] for x in rs):.2f} "
            f"({min(x['pg_cpu_ms'] for x in rs):.2f}-{max(x['pg_cpu_ms'] for x in rs):.2f})"
        )
    ratios = [r["ratio"] for r in rounds]
    best = max(rounds, key=lambda r: r["orders"]["rps"])
    print(
        f"  ratio per round: {', '.join(f'{x:.2f}' for x in ratios)}; load average "
        f"{min(r[k]['load'] for r in rounds for k in ('bare', 'orders')):.2f}-"
        f"{max(r[k]['load'] for r in rounds for k in ('bare', 'orders')):.2f}"
    )
    ratio_ok = best["ratio"] >= TARGET_RATIO
    p99_ok = best["orders"]["p99_ms"] < TARGET_P99_MS
    verdict = "PASS" if ratio_ok and p99_ok else "MISS"
    print(
        f"best round: orders/bare {best['ratio']:.2f} (target >= {TARGET_RATIO:.2f}: "
        f"{'PASS' if ratio_ok else 'MISS'}); orders p99 {best['orders']['p99_ms']:.1f} ms "
        f"(target < {TARGET_P99_MS:.0f} ms at {args.clients} clients: "
        f"{'PASS' if p99_ok else 'MISS'})"
    )
    met = sum(
        1 for r in rounds if r["ratio"] >= TARGET_RATIO and r["orders"]["p99_ms"] < TARGET_P99_MS
    )
    print(f"rounds meeting both targets: {met} of {len(rounds)}")
    if not as_deployed:
        print(
            "note: gunicorn options differ from the Dockerfile's; the verdict is not about the "
            "deployment"
        )
    if broken:
        print("BROKEN RUN: " + "; ".join(broken))
        return 2
    print(f"verdict: {verdict}{'' if args.clients == 16 else ' (the target is at 16 clients)'}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
