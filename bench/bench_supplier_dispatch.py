#!/usr/bin/env python
"""Benchmark: ready orders dispatched per second by one supplier-gateway worker to the amqp channel,
beside a bare pika publish of the same messages in the same run.

    .venv/bin/python bench/bench_supplier_dispatch.py              # 5,000 requests, 3 rounds
    .venv/bin/python bench/bench_supplier_dispatch.py --help

It creates its own database (``coc_bench_sup_<run>``) and BUS_PREFIX, migrates the gateway and
declares its topology, then per round:

1. gateway: N ready requests (each with its "to send" row, as the handler writes them) are
   dispatched by the gateway's amqp sender (``service_layer.dispatch.Sender``, the worker's loop,
   in this process): claim a batch with SKIP LOCKED, build each message (the directory's fields,
   signed document links), publish to ``coc.suppliers`` with publisher confirms, mark the rows
   sent, the requests ``sent`` and emit ``documents.sent_to_supplier``, one transaction per batch;
   the rate counts from the first claim to the last commit;
2. bare: the same N message bodies, built beforehand, published with pika (BlockingConnection,
   confirm_delivery: each publish waits for its confirm; mandatory, persistent) to the same
   exchange and queue.

Target (issue 9): gateway >= 500 requests/s and >= 1/3 of the bare rate. Figures: bench/README.md.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import sys
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import unquote, urlparse

import pika
from sqlalchemy import create_engine, insert, text

from coc_shared.config import Settings
from coc_shared.service import Runtime
from coc_supplier_gateway.adapters import tables
from coc_supplier_gateway.adapters.channels import AmqpChannel
from coc_supplier_gateway.service import definition
from coc_supplier_gateway.service_layer.dispatch import Sender

RUN = uuid.uuid4().hex[:8]


def environment(args) -> tuple[str, str]:
    server = args.database_url.rsplit("/", 1)[0]
    admin = create_engine(server + "/postgres", isolation_level="AUTOCOMMIT")
    name = f"coc_bench_sup_{RUN}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return server + "/" + name, name


def drop(args, name: str) -> None:
    server = args.database_url.rsplit("/", 1)[0]
    admin = create_engine(server + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
            {"n": name},
        )
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def make_runtime(database_url: str, args, prefix: str) -> Runtime:
    extra = {
        "SUPPLIER_GATEWAY_DOCUMENT_LINK_SECRET": "bench-document-link-secret-" + "x" * 32,
        "SUPPLIER_GATEWAY_SUPPLIER_SECRET": "bench-supplier-secret-" + "x" * 32,
        "SUPPLIER_GATEWAY_CERTIFICATE_KEY": base64.b64encode(b"b" * 32).decode(),
        "SUPPLIER_GATEWAY_SENDER_BATCH": str(args.batch),
    }
    settings = Settings.from_env(
        "supplier-gateway",
        database_url=database_url,
        parking_database_url=database_url,
        rabbitmq_url=args.rabbitmq_url,
        bus_prefix=prefix,
        verify_publishers=False,
        extra=extra,
    )
    return Runtime(definition, settings)


def load_ready(rt: Runtime, n: int) -> None:
    """N ready requests of psa-coc and their "to send" rows, as the handlers leave them."""
    now = datetime.now(UTC)
    requests, dispatches, ids = [], [], []
    for i in range(n):
        order_id = str(uuid.uuid4())
        request_id = str(uuid.uuid4())
        documents = [
            {"id": str(uuid.uuid4()), "kind": k, "content_type": "application/pdf"}
            for k in ("id_card", "registration_certificate")
        ]
        requests.append(
            {
                "order_id": order_id,
                "brand": "Peugeot",
                "order_placed": True,
                "paid": True,
                "documents_completed": True,
                "document_ids": [d["id"] for d in documents],
                "documents": documents,
                "status": "ready",
                "order_number": f"COC-2026-{i:06d}",
                "vin": "VF3ABCDEF12345678",
                "maker": "Peugeot",
                "first_registration_date": "2019-05-14",
                "vehicle_extra": {},
                "supplier": "psa-coc",
                "request_id": request_id,
                "round": 1,
                "original_posted": False,
                "created_at": now,
                "updated_at": now,
            }
        )
        dispatches.append(
            {
                "order_id": order_id,
                "request_id": request_id,
                "supplier": "psa-coc",
                "channel": "amqp",
                "kind": "request",
                "created_at": now,
                "next_attempt_at": now,
                "attempts": 0,
            }
        )
        ids.append(request_id)
    with rt.engine.begin() as conn:
        conn.execute(insert(tables.supplier_requests), requests)
        conn.execute(insert(tables.supplier_dispatches), dispatches)


def run_gateway(rt: Runtime, n: int) -> tuple[float, int]:
    channel = AmqpChannel(rt.broker, rt.settings.outbox_confirm_timeout)
    sender = Sender(rt, "amqp", channel)
    sender.send_batch()  # connection and statements warmed up on a first (empty or real) batch
    started = time.perf_counter()
    claimed = 0
    while True:
        got = sender.send_batch()
        if got == 0:
            break
        claimed += got
    elapsed = time.perf_counter() - started
    channel.close()
    return elapsed, claimed


def pika_params(url: str) -> pika.ConnectionParameters:
    parts = urlparse(url)
    return pika.ConnectionParameters(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5672,
        virtual_host=unquote(parts.path[1:]) if len(parts.path) > 1 else "/",
        credentials=pika.PlainCredentials(
            unquote(parts.username or "guest"), unquote(parts.password or "guest")
        ),
    )


def run_bare(args, prefix: str, bodies: list[bytes]) -> float:
    connection = pika.BlockingConnection(pika_params(args.rabbitmq_url))
    channel = connection.channel()
    channel.confirm_delivery()
    started = time.perf_counter()
    for i, body in enumerate(bodies):
        channel.basic_publish(
            exchange=f"{prefix}coc.suppliers",
            routing_key="psa-coc",
            body=body,
            properties=pika.BasicProperties(
                content_type="application/json",
                delivery_mode=2,
                message_id=str(i),
                type="supplier.request",
            ),
            mandatory=True,
        )
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed


def sample_bodies(rt: Runtime, n: int) -> list[bytes]:
    """The gateway's own messages for N requests (built before the bare run's clock starts)."""
    from coc_supplier_gateway.domain.model import SupplierRequest
    from coc_supplier_gateway.service_layer.dispatch import request_message

    supplier = rt.config.directory.get("psa-coc")
    now = datetime.now(UTC)
    bodies = []
    for i in range(n):
        request = SupplierRequest(
            order_id=str(uuid.uuid4()),
            brand="Peugeot",
            vin="VF3ABCDEF12345678",
            first_registration_date="2019-05-14",
            order_number=f"COC-2026-{i:06d}",
            request_id=str(uuid.uuid4()),
            documents=tuple(
                {"id": str(uuid.uuid4()), "kind": k, "content_type": "application/pdf"}
                for k in ("id_card", "registration_certificate")
            ),
        )
        message = request_message(request, supplier, rt.config, now)
        bodies.append(json.dumps(message, separators=(",", ":")).encode())
    return bodies


def purge(args, prefix: str) -> int:
    connection = pika.BlockingConnection(pika_params(args.rabbitmq_url))
    channel = connection.channel()
    depth = channel.queue_declare(
        f"{prefix}coc.supplier.psa-coc", passive=True
    ).method.message_count
    channel.queue_purge(f"{prefix}coc.supplier.psa-coc")
    connection.close()
    return depth


def delete_names(args, prefix: str) -> None:
    connection = pika.BlockingConnection(pika_params(args.rabbitmq_url))
    channel = connection.channel()
    for queue in (
        "coc.supplier.psa-coc",
        "coc.supplier.vag-coc",
        "coc.supplier.mercedes-coc",
        "coc.supplier-gateway.replies",
        "coc.supplier-gateway.replies.dead",
    ):
        try:
            channel.queue_delete(prefix + queue)
        except Exception:
            channel = connection.channel()
    for exchange in ("coc.suppliers", "coc.supplier-replies", "coc.events"):
        try:
            channel.exchange_delete(prefix + exchange)
        except Exception:
            channel = connection.channel()
    connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=5000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=200, help="SUPPLIER_GATEWAY_SENDER_BATCH")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or "postgresql://root@127.0.0.1:5432/coc",
    )
    parser.add_argument(
        "--rabbitmq-url",
        default=os.environ.get("RABBITMQ_URL") or "amqp://guest:guest@127.0.0.1:5672//",
    )
    args = parser.parse_args(argv)
    prefix = f"bench{RUN}."
    database_url, name = environment(args)
    rt = make_runtime(database_url, args, prefix)
    try:
        rt.migrate()
        rt.declare_topology()
        print(
            f"supplier dispatch benchmark: {args.n} requests x {args.rounds} rounds, batch "
            f"{args.batch}; {platform.python_version()}, {os.cpu_count()} cores, load "
            f"{os.getloadavg()[0]:.2f}"
        )
        bodies = sample_bodies(rt, args.n)
        results = []
        for round_ in range(1, args.rounds + 1):
            load_ready(rt, args.n)
            elapsed, claimed = run_gateway(rt, args.n)
            delivered = purge(args, prefix)
            bare = run_bare(args, prefix, bodies)
            purge(args, prefix)
            gateway_rate, bare_rate = claimed / elapsed, len(bodies) / bare
            ratio = gateway_rate / bare_rate
            results.append((gateway_rate, bare_rate, ratio))
            verdict = "PASS" if gateway_rate >= 500 and ratio >= 1 / 3 else "MISS"
            print(
                f"round {round_}: gateway {gateway_rate:,.0f} requests/s ({claimed} sent, "
                f"{delivered} on the queue), bare pika {bare_rate:,.0f}/s, ratio {ratio:.2f} "
                f"[{verdict}] load {os.getloadavg()[0]:.2f}"
            )
        best = max(results)
        print(
            f"best: gateway {best[0]:,.0f}/s, bare {best[1]:,.0f}/s, ratio {best[2]:.2f} "
            f"(target >= 500/s and >= 0.33)"
        )
    finally:
        rt.dispose()
        delete_names(args, prefix)
        drop(args, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
