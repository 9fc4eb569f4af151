#!/usr/bin/env python
"""Benchmark of the notifications sender against bare smtplib, on a local SMTP server (aiosmtpd).

Run by hand: ``.venv/bin/python bench/bench_notifications.py [--mails N] [--runs R]``. It is not a
test: it prints figures beside their targets (>= 100 mails/s, and >= half the bare rate).

* the server: ``coc_notifications.sandbox`` (aiosmtpd writing each message as an .eml file to a
  temporary folder), in a process of its own, the same for both sides;
* sender: one notifications worker's sender (``Sender.send_due`` in a loop: claim a batch FOR
  UPDATE SKIP LOCKED, find the recipient, render the Jinja2 templates, inline the CSS, build the
  multipart/alternative message, send it on the one reused SMTP connection, mark it sent; one
  commit per batch) over N ``order.placed`` mails recorded beforehand by the handler;
* bare: smtplib on one connection sending the same messages, rendered beforehand (MAIL, RCPT,
  DATA per message: what the sender does on the wire, without rendering or the database).

The two sides take turns within a run (``--slices``, 4 by default: the sender sends a quarter of
the mails, then bare smtplib the same quarter, and so on), so that a machine whose load changes
during the run weighs on both alike; each side's rate is its mails over its summed time.

It creates its own PostgreSQL database (``coc_bench_mail_<run>``) and drops it at the end.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import uuid

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from coc_notifications.service import definition
from coc_notifications.service_layer.sender import Sender
from coc_shared.catalogue import lookup
from coc_shared.config import Settings, env
from coc_shared.consumer import HandlerContext
from coc_shared.db import normalise_url
from coc_shared.envelope import Event
from coc_shared.logging import configure_logging
from coc_shared.service import Runtime

TARGET_RATE, TARGET_RATIO = 100.0, 0.5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, folder: str) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "coc_notifications.sandbox",
            "--port",
            str(port),
            "--folder",
            folder,
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the SMTP server did not start")


def order_placed(i: int) -> Event:
    spec = lookup("order.placed", 1)
    order_id = str(uuid.uuid4())
    return Event(
        type="order.placed",
        version=1,
        producer="orders",
        correlation_id=order_id,
        subject=order_id,
        data={
            **spec.example_data,
            "order_id": order_id,
            "order_number": f"COC-2026-{i:06d}",
            "payment_method": "transfer" if i % 3 == 0 else "card",
        },
        personal={**spec.example_personal, "email": f"client{i}@example.org"},
    )


def record(rt: Runtime, count: int) -> None:
    handler = rt.handlers["order.placed"]
    with rt.engine.begin() as conn:
        for i in range(count):
            event = order_placed(i)
            ctx = HandlerContext(conn, event, "notifications", rt.outbox, rt.statements)
            handler(event, ctx)
            ctx.flush()


def run_sender(sender: Sender, count: int) -> float:
    """Seconds the sender takes to send ``count`` mails (whole batches)."""
    sent = 0
    started = time.perf_counter()
    while sent < count:
        result = sender.send_due()
        if result.claimed == 0:
            break
        sent += result.sent
    elapsed = time.perf_counter() - started
    if sent != count:
        raise SystemExit(f"the sender sent {sent} of {count}")
    return elapsed


def prerendered(rt: Runtime, count: int) -> list[tuple[str, str, bytes]]:
    """The same kind of messages as the sender's, rendered and flattened beforehand."""
    from coc_notifications.adapters.rendering import Renderer, build_message
    from coc_notifications.domain.model import OrderRecipient

    renderer, config = Renderer(), rt.config
    messages = []
    for i in range(count):
        event = order_placed(i)
        order = OrderRecipient.from_placed(event.data, event.personal)
        rendered = renderer.render(
            "order_confirmation",
            "fr",
            {
                "data": event.data,
                "order": order,
                "first_name": order.first_name,
                "transfer": None,
                "links": {
                    "storefront": config.storefront_url,
                    "order": f"{config.storefront_url}/orders/{order.order_id}",
                    "documents": f"{config.storefront_url}/orders/{order.order_id}/documents",
                    "payment": f"{config.storefront_url}/orders/{order.order_id}/payment",
                    "login": f"{config.storefront_url}/login",
                },
            },
        )
        message = build_message(
            rendered,
            sender=config.sender,
            to_address=order.email,
            to_name=order.first_name,
            message_id=f"<bench.{i}@coc.example>",
        )
        messages.append((config.sender.addr_spec, order.email, message))
    return messages


def run_bare(port: int, messages) -> float:
    """Seconds bare smtplib takes to send ``messages`` on one connection."""
    started = time.perf_counter()
    smtp = smtplib.SMTP("127.0.0.1", port, timeout=10)
    smtp.ehlo()
    for sender, recipient, raw in messages:
        code, _ = smtp.mail(sender)
        assert code == 250
        code, _ = smtp.rcpt(recipient)
        assert code == 250
        code, _ = smtp.data(raw)
        assert code == 250
    smtp.quit()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=50, help="NOTIFICATIONS_SEND_BATCH_SIZE")
    parser.add_argument(
        "--slices",
        type=int,
        default=4,
        help="turns per run: the sender sends a slice, then bare smtplib the same slice, ...",
    )
    args = parser.parse_args()

    # the service's logs as in production (JSON lines at INFO), to a file of their own
    log_file = tempfile.NamedTemporaryFile(
        "w", prefix="coc-bench-mail-", suffix=".log", delete=False
    )
    configure_logging("notifications", "INFO", stream=log_file)
    server_url = make_url(normalise_url(env("DATABASE_URL")))
    name = f"coc_bench_mail_{uuid.uuid4().hex[:8]}"
    admin = create_engine(
        server_url.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    folder = tempfile.mkdtemp(prefix="coc-bench-mail-")
    port = free_port()
    server = start_server(port, folder)
    url = server_url.set(database=name).render_as_string(hide_password=False)
    try:
        settings = Settings.from_env(
            "notifications",
            database_url=url,
            parking_database_url=url,
            rabbitmq_url="memory://",
            extra={
                "NOTIFICATIONS_SMTP_SERVER": f"127.0.0.1:{port}",
                "NOTIFICATIONS_SMTP_SECURITY": "none",
                "NOTIFICATIONS_MAIL_FROM": "COC <commandes@coc.example>",
                "NOTIFICATIONS_SEND_BATCH_SIZE": str(args.batch),
                "NOTIFICATIONS_STOREFRONT_URL": "https://shop.coc.example",
                "NOTIFICATIONS_TRANSFER_IBAN": "FR7630006000011234567890189",
                "NOTIFICATIONS_TRANSFER_BIC": "AGRIFRPP",
            },
        )
        rt = Runtime(definition, settings)
        rt.migrate()
        print(
            f"# bench_notifications: {args.mails} mails x {args.runs} runs, batch {args.batch}, "
            f"{args.slices} turns per run; "
            f"{platform.python_implementation()} {platform.python_version()}, "
            f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
        )
        for run in range(1, args.runs + 1):
            record(rt, args.mails)
            messages = prerendered(rt, args.mails)
            sender = Sender(rt)
            # the two sides take turns, a slice each, so that both meet the same load
            chunk = -(-args.mails // args.slices // args.batch) * args.batch  # whole batches
            sender_seconds = bare_seconds = 0.0
            for start in range(0, args.mails, chunk):
                part = messages[start : start + chunk]
                sender_seconds += run_sender(sender, len(part))
                bare_seconds += run_bare(port, part)
            sender.transport.close()
            sender_rate = args.mails / sender_seconds
            bare_rate = args.mails / bare_seconds
            ratio = sender_rate / bare_rate
            ok = sender_rate >= TARGET_RATE and ratio >= TARGET_RATIO
            print(
                f"run {run}: sender {sender_rate:7.1f} mails/s "
                f"({sender.transport.connections} SMTP connection(s)), "
                f"bare smtplib {bare_rate:7.1f} mails/s, ratio {ratio:.2f} "
                f"(targets >= {TARGET_RATE:.0f}/s, >= {TARGET_RATIO}) "
                f"{'PASS' if ok else 'FAIL'}; load {os.getloadavg()[0]:.2f}"
            )
        rt.dispose()
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)
        log_file.close()
        os.unlink(log_file.name)
        with admin.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
