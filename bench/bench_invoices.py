#!/usr/bin/env python
"""Benchmark of invoicing: invoices issued per second by one payments worker, beside the bare
rendering of the same invoice in the same run; then two workers at once, whose numbering must stay
without gap.

Run by hand: ``.venv/bin/python bench/bench_invoices.py [--invoices 600]``. Not a test: it prints
figures beside the target (>= 50 invoices/s by one worker).

1. render     the same invoice's page drawn by fpdf2 (PDF/A-3B, its font embedded), N times; then
              the Factur-X PDF (the page + the CII XML embedded by the factur-x library), in this
              one thread (the bare reference); then the same Factur-X PDFs by a pool of
              INVOICE_RENDER_PROCESSES processes (what two cores can render at most).
2. one worker ``coc-payments worker`` (a real process: consumer, relay, its loops) handling N
              payment.confirmed queued beforehand on the real RabbitMQ: the consumer numbers each
              invoice in its transaction (gap-free counter, the invoice's data), the worker's
              ``invoices`` loop renders the numbered ones in its process pool and, a batch per
              transaction, stores them (AES-GCM), chains them (SHA-256) and writes their
              invoice.issued to the outbox, which the relay publishes; rate = invoices issued
              (with their PDF) per second from the first batch's commit to the last, and from the
              worker's start (process and pool start-up included); and the invoice.issued events
              confirmed by the broker.
3. two workers the same with two worker processes on the queue at once; then the series is read
              back: numbers 1..n without gap or duplicate, chain intact.

It creates its own database (``coc_bench_<run>``) and BUS_PREFIX and removes both at the end.
"""

from __future__ import annotations

import argparse
import base64
import os
import platform
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from coc_payments.adapters import tables
from coc_payments.adapters.invoice_pdf import facturx_pdf, render_facturx, render_pdf
from coc_payments.domain.billing import Payment, Sale, invoice_data
from coc_payments.service import definition
from coc_payments.service_layer.invoicing import verify_series
from coc_shared.catalogue import example_event, lookup
from coc_shared.config import Settings
from coc_shared.consumer import HandlerContext
from coc_shared.db import normalise_url
from coc_shared.logging import configure_logging
from coc_shared.service import Runtime
from coc_shared.testing import delete_bus_names

TARGET = 50.0
ROOT = Path(__file__).resolve().parents[1]
KEY = base64.b64encode(os.urandom(32)).decode()
BILLING = {
    "SELLER_NAME": "COC Bench SAS",
    "SELLER_STREET": "1 rue de la Paix",
    "SELLER_POSTAL_CODE": "75002",
    "SELLER_CITY": "Paris",
    "SELLER_SIREN": "732829320",
    "SELLER_VAT_NUMBER": "FR44732829320",
    "SELLER_LEGAL_MENTIONS": "SAS au capital de 10 000 € - RCS Paris 732 829 320",
    "INVOICE_KEY": KEY,
}
PERSONAL = {
    "first_name": "Émilie",
    "last_name": "Dupont-Lefèvre",
    "email": "emilie@example.org",
    "phone": "+33612345678",
    "shipping_address": {
        "line1": "1 rue de la Paix",
        "postal_code": "75002",
        "city": "Paris",
        "country": "FR",
    },
    "company": {"name": "Garage Martin SARL", "siren": "542065479", "vat_number": "FR82542065479"},
}


def sample_data() -> dict:
    data = dict(example_event(lookup("order.placed", 1)).data, order_id=str(uuid.uuid4()))
    sale = Sale.from_order_placed(data, PERSONAL, "20.0")
    payment = Payment("card", "systempay", uuid.uuid4().hex, datetime.now(UTC))
    seller = {
        "name": BILLING["SELLER_NAME"],
        "address": {
            "line1": "1 rue de la Paix",
            "postal_code": "75002",
            "city": "Paris",
            "country": "FR",
        },
        "siren": "732829320",
        "vat_number": "FR44732829320",
        "legal_mentions": BILLING["SELLER_LEGAL_MENTIONS"],
    }
    return invoice_data("FA-00000001", datetime.now(UTC), sale, payment, seller)


def bench_render(n: int) -> tuple[float, float]:
    data = sample_data()
    render_pdf(data), render_facturx(data)  # warm up (font cmap, imports)
    start = time.perf_counter()
    for _ in range(n):
        render_pdf(data)
    bare = n / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(n):
        render_facturx(data)
    return bare, n / (time.perf_counter() - start)


def bench_render_pool(n: int, processes: int) -> float:
    """The same Factur-X PDF by a pool of ``processes`` (started and warmed up before timing)."""
    data = sample_data()
    with ProcessPoolExecutor(processes) as pool:
        list(pool.map(facturx_pdf, [data] * (2 * processes)))
        start = time.perf_counter()
        list(pool.map(facturx_pdf, [data] * n, chunksize=max(1, n // (4 * processes))))
        return n / (time.perf_counter() - start)


# --------------------------------------------------------------------------- the pipeline
def settings(database_url: str, prefix: str) -> Settings:
    return Settings.from_env(
        "payments",
        database_url=database_url,
        parking_database_url=database_url,
        bus_prefix=prefix,
        verify_publishers=False,
        extra=BILLING,
    )


def queue_confirmations(rt: Runtime, n: int) -> list[str]:
    """N orders recorded (order.placed handled as the consumer does) and their payment.confirmed
    published to the broker (before any worker runs: they wait in the queue)."""
    placed = lookup("order.placed", 1)
    orders = []
    with rt.engine.begin() as conn:
        for i in range(n):
            event = example_event(placed)
            order_id = str(uuid.uuid4())
            event.data = dict(
                event.data, order_id=order_id, order_number=f"COC-B-{uuid.uuid4().hex[:12]}"
            )
            event.personal = PERSONAL if i % 2 else {**PERSONAL, "company": None}
            ctx = HandlerContext(conn, event, "payments", rt.outbox, rt.statements)
            rt.handlers["order.placed"](event, ctx)
            ctx.flush()
            orders.append(event.data)
    with rt.unit_of_work() as uow:
        for data in orders:
            uow.emit(
                "payment.confirmed",
                {
                    "order_id": data["order_id"],
                    "order_number": data["order_number"],
                    "method": "card",
                    "provider": "systempay",
                    "provider_transaction_id": uuid.uuid4().hex,
                    "amount": data["total"],
                },
                subject=data["order_id"],
            )
        uow.commit()
    relay = rt.make_relay(threading.Event())
    while relay.publish_pending():
        pass
    return [o["order_id"] for o in orders]


def invoices(rt: Runtime) -> int:
    with rt.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(tables.billing_documents)).scalar()


def numbered(rt: Runtime) -> int:
    """Invoices numbered: issued, or waiting for the invoices loop."""
    with rt.engine.connect() as conn:
        return sum(
            conn.execute(select(func.count()).select_from(t)).scalar()
            for t in (tables.billing_documents, tables.invoices_to_issue)
        )


def events_sent(rt: Runtime) -> int:
    o = rt.outbox
    with rt.engine.connect() as conn:
        return conn.execute(
            select(func.count())
            .select_from(o)
            .where(o.c.event_type == "invoice.issued", o.c.sent_at.is_not(None))
        ).scalar()


def run_workers(rt: Runtime, env: dict, workers: int, expected: int, log_dir: Path) -> dict:
    procs = [
        subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "coc-payments"), "worker"],
            env=env,
            stdout=open(log_dir / f"worker-{workers}-{i}.log", "wb"),
            stderr=subprocess.STDOUT,
        )
        for i in range(workers)
    ]
    before = invoices(rt)
    started = time.monotonic()
    first = last = all_numbered = None
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            done = invoices(rt) - before
            now = time.monotonic()
            if all_numbered is None and numbered(rt) - before >= expected:
                all_numbered = now
            if done and first is None:
                first = (now, done)
            if done >= expected:
                last = now
                break
            time.sleep(0.05)
        while events_sent(rt) < before + expected and time.monotonic() < deadline:
            time.sleep(0.05)
        sent_at = time.monotonic()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
    counted = expected - first[1]
    return {
        "invoices": expected,
        "rate": counted / (last - first[0]) if last and last > first[0] else float("nan"),
        "rate_from_start": expected / (last - started) if last else float("nan"),
        "first_after_s": first[0] - started if first else float("nan"),
        "numbered_after_s": (all_numbered or float("nan")) - started,
        "issued_after_s": last - started if last else float("nan"),
        "events_sent_after_s": sent_at - last if last else float("nan"),
    }


def _bind_stand_in(rt: Runtime) -> None:
    """A queue bound to invoice.issued in place of notifications' (else the broker returns the
    events as unroutable)."""
    import kombu

    with kombu.Connection(rt.settings.rabbitmq_url) as conn:
        queue = kombu.Queue(
            f"{rt.settings.bus_prefix}bench.invoice_issued",
            exchange=rt.broker.exchange(),
            routing_key="invoice.issued",
        )
        queue(conn.channel()).declare()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=600)
    parser.add_argument("--render", type=int, default=200)
    args = parser.parse_args()
    server = os.environ.get("DATABASE_URL") or "postgresql://root@127.0.0.1:5432/postgres"
    run = uuid.uuid4().hex[:8]
    name, prefix = f"coc_bench_{run}", f"bench{run}."
    admin = create_engine(
        make_url(normalise_url(server)).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    database_url = make_url(normalise_url(server)).set(database=name).render_as_string(False)
    log_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-invoices-{run}"
    log_dir.mkdir(parents=True, exist_ok=True)
    # this process's relay logs each batch at debug: into the run's folder, not among the figures
    configure_logging("bench-invoices", "INFO", stream=open(log_dir / "bench.log", "a"))
    rt = Runtime(definition, settings(database_url, prefix))
    try:
        print(
            f"# bench_invoices {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}",
            flush=True,
        )
        bare, facturx = bench_render(args.render)
        print(
            f"render (same invoice, {args.render}x): bare fpdf2 page {bare:.1f}/s "
            f"({1000 / bare:.1f} ms), Factur-X PDF {facturx:.1f}/s ({1000 / facturx:.1f} ms)",
            flush=True,
        )
        processes = rt.config.invoice_render_processes
        pooled = bench_render_pool(args.render, processes) if processes else float("nan")
        print(
            f"render in a pool of {processes} processes (same invoice, {args.render}x): "
            f"Factur-X PDF {pooled:.1f}/s",
            flush=True,
        )
        rt.migrate()
        rt.declare_topology()
        _bind_stand_in(rt)
        env = dict(os.environ)
        env.update(BILLING)
        env.update(
            {
                "DATABASE_URL": database_url,
                "RABBITMQ_URL": rt.settings.rabbitmq_url,
                "BUS_PREFIX": prefix,
                "BUS_VERIFY_PUBLISHERS": "false",
                "LOG_LEVEL": "WARNING",
                "OUTBOX_POLL_SECONDS": "0.2",
            }
        )
        queue_confirmations(rt, args.invoices)
        one = run_workers(rt, env, 1, args.invoices, log_dir)
        verdict = "PASS" if one["rate"] >= TARGET else "MISS"
        print(
            f"one worker: {one['rate']:.1f} invoices/s over {args.invoices} "
            f"(number, PDF, Factur-X, encrypted store, event; target >= {TARGET:.0f}/s: "
            f"{verdict}); {one['rate_from_start']:.1f}/s from the worker's start; every "
            f"invoice.issued confirmed by the broker "
            f"{one['events_sent_after_s'] * 1000:.0f} ms after the last invoice",
            flush=True,
        )
        print(
            f"  = {one['rate'] / facturx:.2f} x the bare Factur-X rendering, "
            f"{one['rate'] / bare:.2f} x the bare page, {one['rate'] / pooled:.2f} x the pool's "
            "rendering",
            flush=True,
        )
        print(
            f"  from the worker's start: first batch issued at {one['first_after_s']:.1f} s, all "
            f"numbered by the consumer at {one['numbered_after_s']:.1f} s, all issued at "
            f"{one['issued_after_s']:.1f} s",
            flush=True,
        )
        queue_confirmations(rt, args.invoices)
        two = run_workers(rt, env, 2, args.invoices, log_dir)
        with rt.engine.connect() as conn:
            t = tables.billing_documents
            seqs = (
                conn.execute(select(t.c.seq).where(t.c.kind == "invoice").order_by(t.c.seq))
                .scalars()
                .all()
            )
            per_order = conn.execute(
                select(func.count(), func.count(func.distinct(t.c.order_id))).select_from(t)
            ).one()
        gap_free = seqs == list(range(1, len(seqs) + 1))
        report = verify_series(rt, base64.b64decode(KEY))
        print(
            f"two workers at once: {two['rate']:.1f} invoices/s over {args.invoices}; series of "
            f"{len(seqs)}: {'1..n without gap' if gap_free else 'GAP'}, "
            f"{'no duplicate' if per_order[0] == per_order[1] else 'DUPLICATE'}, chain "
            f"{'intact' if report.ok else report.problems[:3]}",
            flush=True,
        )
        return 0 if gap_free and report.ok else 1
    finally:
        rt.dispose()
        delete_bus_names(rt.settings.rabbitmq_url, prefix)
        with admin.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))


if __name__ == "__main__":
    sys.exit(main())
