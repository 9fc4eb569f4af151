"""Issue 13's test of the deactivation, across the five services' workers (threads) on the real
RabbitMQ and a fresh PostgreSQL database of this run: a customer with an account, two orders (one
paid, one shipped), their documents, the mails they were sent (through the local SMTP sandbox), a
parked message and a failed bank notification deactivates. Afterwards:

- log-in answers 401;
- a ``pg_dump`` of the whole database holds the customer's e-mail and phone nowhere (as text, nor
  as the bytes of a bytea column), and their last name and street only inside the COPY blocks of
  ``archive.*`` (the invoice archive, which the archive role alone reads);
- the parked message is shown with its personal part marked erased, and replayed;
- a message sealed before the erasure and still waiting in a queue is handled without it;
- the customer got the summary mail, saying what is kept, why and until when.

With ``COC_EVIDENCE_FILE`` set, the commands and what they printed (the ``pg_dump | grep`` lines,
the archive reader's listing, the summary mail) are written there for the closing note.
"""

from __future__ import annotations

import email
import io
import json
import os
import random
import re
import shutil
import socket
import string
import subprocess
import sys
import threading
from contextlib import contextmanager
from email import policy
from pathlib import Path

import phonenumbers
import pytest
from pypdf import PdfWriter
from sqlalchemy import select
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trust_kit import QONTO_SECRET, definition_of, email_change, order_body, service_extra

from coc_gdpr.adapters import tables as gdpr_tables
from coc_notifications import sandbox
from coc_notifications.adapters import tables as notifications_tables
from coc_payments.adapters import tables as payments_tables
from coc_payments.domain.references import creditor_reference
from coc_payments.sandbox.business_bank import signed_headers, transfer_webhook_body
from coc_shared.bus import Broker, OutgoingMessage, Publisher
from coc_shared.config import SERVICE_NAMES
from coc_shared.db import normalise_url
from coc_shared.envelope import Event
from coc_shared.parking import parked_to_json
from coc_shared.service import Runtime
from coc_shared.testing import forget_unsent, purge_queue, wait_until
from coc_shared.tokens import Actor

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "a long enough pass phrase"
# services whose own loops run: payments issues the invoices, notifications sends the mails
LOOPS = ("payments", "notifications")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_dump_binary() -> str:
    """The PostgreSQL client of the local server's version."""
    found = []
    try:
        bindir = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=True
        ).stdout.strip()
        found.append(os.path.join(bindir, "pg_dump"))
    except (OSError, subprocess.CalledProcessError):
        pass
    found += sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"), reverse=True)
    found.append(shutil.which("pg_dump") or "")
    return next(str(p) for p in found if p and os.path.exists(p))


def pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@contextmanager
def five_services(settings_factory, tmp_path, smtp_port: int):
    """The five services migrated, their queues and outboxes emptied of what earlier tests left;
    relays (and payments' and notifications' loops) on one stop, each consumer on a stop of its
    own so that one can be paused (``consumers.pause(name)`` / ``resume(name)``)."""
    extra = {
        "notifications": {
            "NOTIFICATIONS_SMTP_SERVER": f"127.0.0.1:{smtp_port}",
            "NOTIFICATIONS_SMTP_SECURITY": "none",
            "NOTIFICATIONS_SMTP_TIMEOUT": "5",
            "NOTIFICATIONS_SEND_POLL_SECONDS": "0.1",
        },
        "payments": {"INVOICE_POLL_SECONDS": "0.1"},
    }
    runtimes = {
        name: Runtime(
            definition_of(name),
            settings_factory(name, extra={**service_extra(name, tmp_path), **extra.get(name, {})}),
        )
        for name in SERVICE_NAMES
    }
    for runtime in runtimes.values():
        runtime.migrate()
        runtime.declare_topology()
        purge_queue(runtime)
        forget_unsent(runtime)
    stop = threading.Event()
    threads = [
        thread
        for name, runtime in runtimes.items()
        for thread in runtime.start_worker_threads(stop, consume=False, loops=name in LOOPS)
    ]
    consumers: dict[str, tuple[threading.Event, list]] = {}

    def resume(name: str) -> None:
        own = threading.Event()
        consumers[name] = (own, runtimes[name].start_worker_threads(own, relay=False, loops=False))

    def pause(name: str) -> None:
        own, started = consumers.pop(name)
        own.set()
        for thread in started:
            thread.join(timeout=15)

    for name in runtimes:
        resume(name)
    try:
        yield runtimes, type("Consumers", (), {"pause": pause, "resume": resume})
    finally:
        stop.set()
        for name in list(consumers):
            pause(name)
        for thread in threads:
            thread.join(timeout=15)
        for runtime in runtimes.values():
            runtime.dispose()


@pytest.fixture
def smtp(tmp_path):
    port = free_port()
    folder = tmp_path / "mail"
    controller = sandbox.serve("127.0.0.1", port, str(folder))
    yield port, folder
    controller.stop()


@pytest.fixture
def services(settings_factory, tmp_path, smtp):
    with five_services(settings_factory, tmp_path, smtp[0]) as running:
        yield running


def valid_mobile_number() -> str:
    """A French mobile number of its own that the storefront accepts (phonenumbers refuses some
    random +336 numbers: unallocated ranges)."""
    while True:
        candidate = "+336" + "".join(random.choices(string.digits, k=8))
        if phonenumbers.is_valid_number(phonenumbers.parse(candidate)):
            return candidate


def unique_word(prefix: str) -> str:
    return prefix + "".join(random.choices(string.ascii_lowercase, k=8))


def scalar(runtime, query):
    with runtime.engine.connect() as conn:
        return conn.execute(query).scalar()


def place_order(orders, bearer: dict, customer: dict, address: dict) -> dict:
    body = order_body()
    body["customer"] = customer
    body["shipping_address"] = address
    placed = orders.post("/v1/orders", json=body, headers=bearer)
    assert placed.status_code == 201, placed.get_json()
    order = placed.get_json()
    for kind in order["documents_required"]:
        uploaded = orders.post(
            f"/v1/orders/{order['id']}/documents",
            headers=bearer,
            data={"kind": kind, "file": (io.BytesIO(pdf()), f"{kind}.pdf", "application/pdf")},
            content_type="multipart/form-data",
        )
        assert uploaded.status_code == 201, uploaded.get_json()
    return order


def bank_transfer(payments, order: dict, amount_cents: int, debtor: str):
    """The business bank's notification of a transfer for the order (its RF reference)."""
    body = transfer_webhook_body(
        creditor_reference(order["number"]), amount_cents, debtor_name=debtor
    )
    return payments.post(
        "/v1/callbacks/bank-transfer", data=body, headers=signed_headers(body, QONTO_SECRET)
    )


def order_status(orders, bearer: dict, order_id: str) -> str | None:
    answer = orders.get(f"/v1/orders/{order_id}", headers=bearer)
    return answer.get_json()["status"] if answer.status_code == 200 else None


def supplier_steps(gateway: Runtime, order_id: str, tracking: str) -> None:
    """What the supplier gateway announces as the supplier handles the order (the catalogue's
    example of each step, for this order): sent, accepted, certificate received, shipped."""
    from coc_shared.catalogue import example_event, lookup

    for event_type in (
        "documents.sent_to_supplier",
        "supplier.request_accepted",
        "certificate.received",
        "certificate.shipped",
    ):
        example = example_event(lookup(event_type, 1))
        data = {**example.data, "order_id": order_id}
        if event_type == "certificate.shipped":
            data["tracking_number"] = tracking
            data["tracking_url"] = f"https://suivi.example/{tracking}"
        with gateway.unit_of_work(correlation_id=order_id) as uow:
            uow.emit(event_type, data, subject=order_id, personal=example.personal)
            uow.commit()




def publish_raw(producer: Runtime, event: Event) -> None:
    publisher = Publisher(producer.broker)
    try:
        publisher.publish_one(
            OutgoingMessage(
                message_id=event.id,
                body=event.to_json(),
                routing_key=event.type,
                event_type=event.type,
                correlation_id=event.correlation_id,
            )
        )
    finally:
        publisher.close()


def mails_of_event(notifications: Runtime, event_id: str) -> list:
    m = notifications_tables.mails
    with notifications.engine.connect() as conn:
        return conn.execute(select(m).where(m.c.source_id == event_id)).all()


def sent_mails(folder: Path) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(path.read_bytes(), policy=policy.default)
        for path in sorted(folder.glob("*.eml"))
    ]


def copy_blocks(dump: str) -> dict[str, str]:
    """Table -> its COPY block's lines, of a plain ``pg_dump``."""
    blocks, table, lines = {}, None, []
    for line in dump.splitlines():
        if table is None:
            found = re.match(r"COPY (\S+) ", line)
            if found:
                table, lines = found.group(1), []
        elif line == "\\.":
            blocks[table] = "\n".join(lines)
            table = None
        else:
            lines.append(line)
    return blocks


def occurrences(dump: str, needle: str) -> list[str]:
    """The dump's lines holding ``needle`` as text (any case) or as the hexadecimal of its UTF-8
    bytes, as written, in capitals or in small letters (a bytea column's value in the dump: a bank
    label is in capitals)."""
    text = needle.lower()
    hexed = {variant.encode().hex() for variant in (needle, needle.upper(), needle.lower())}
    return [
        line
        for line in dump.splitlines()
        if text in line.lower() or any(h in line.lower() for h in hexed)
    ]


def test_a_deactivated_customer_is_left_only_in_the_invoice_archive(
    services, smtp, database_url, broker_accounts, bus_prefix, tmp_path
):
    runtimes, consumers = services
    orders_rt, payments_rt, notifications_rt, gdpr_rt = (
        runtimes[n] for n in ("orders", "payments", "notifications", "gdpr")
    )
    orders, payments = orders_rt.create_app().test_client(), payments_rt.create_app().test_client()
    evidence: list[str] = []

    # ---- the customer: an account, two orders with their documents, mails
    address = f"{unique_word('erase.')}@example.org"
    phone = valid_mobile_number()
    last_name = unique_word("Quillard").capitalize()
    street = f"7 rue {unique_word('Plomvelier').capitalize()}"
    customer = {"first_name": "Emilie", "last_name": last_name, "email": address, "phone": phone}
    postal = {"line1": street, "postal_code": "75011", "city": "Paris", "country": "FR"}
    created = orders.post("/v1/accounts", json={"email": address, "password": PASSWORD})
    assert created.status_code in (201, 202), created.get_json()
    login = orders.post("/v1/auth/token", json={"email": address, "password": PASSWORD})
    assert login.status_code == 200, login.get_json()
    bearer = {"Authorization": f"Bearer {login.get_json()['access_token']}"}
    account_id = orders.get("/v1/accounts/me", headers=bearer).get_json()["id"]
    paid = place_order(orders, bearer, customer, postal)
    shipped = place_order(orders, bearer, customer, postal)
    for order in (paid, shipped):
        wait_until(
            lambda order=order: scalar(
                payments_rt,
                select(payments_tables.payments_due.c.order_id).where(
                    payments_tables.payments_due.c.order_id == order["id"]
                ),
            ),
            timeout=30,
            message="payments knows the order",
        )
    # a failed notification of the bank (not the order's amount: on the review list), then the
    # transfers that pay both orders
    failed = bank_transfer(payments, shipped, shipped["total"]["amount_cents"] - 100, last_name)
    assert failed.status_code == 200, failed.get_data(as_text=True)
    for order in (paid, shipped):
        answer = bank_transfer(payments, order, order["total"]["amount_cents"], last_name)
        assert answer.status_code == 200, answer.get_data(as_text=True)
    d = payments_tables.billing_documents
    for order in (paid, shipped):
        wait_until(
            lambda order=order: scalar(
                payments_rt, select(d.c.number).where(d.c.invoice_of_order == order["id"])
            ),
            timeout=60,
            message="the invoice issued",
        )
        wait_until(
            lambda order=order: order_status(orders, bearer, order["id"]) == "paid",
            timeout=30,
            message="the order paid",
        )
    tracking = f"6A{random.randint(10**10, 10**11)}"
    supplier_steps(runtimes["supplier-gateway"], shipped["id"], tracking)
    wait_until(
        lambda: order_status(orders, bearer, shipped["id"]) == "shipped",
        timeout=30,
        message="the second order shipped",
    )
    mail_folder = smtp[1]
    wait_until(
        lambda: sum(address in str(m["To"]) for m in sent_mails(mail_folder)) >= 4,
        timeout=60,
        message="the customer's mails sent",
    )

    # ---- a parked message about the customer (its personal part fails the schema once opened)
    parked_event = email_change(account_id, address, "parked")
    del parked_event.personal["confirmation_url"]
    orders_rt.keys.seal_events([parked_event])
    publish_raw(orders_rt, parked_event)
    store = notifications_rt.parking
    wait_until(
        lambda: store.list(service="notifications", event_id=parked_event.id),
        timeout=30,
        message="the message parked",
    )
    [parked] = store.list(service="notifications", event_id=parked_event.id)
    shown = parked_to_json(store.get(parked["id"]), include_body=True, keys=store.keys)
    assert shown["body"]["personal"] == {"email": address}

    # ---- a message sealed now and still in notifications' queue when the erasure comes
    consumers.pause("notifications")
    with orders_rt.unit_of_work(correlation_id=account_id) as uow:
        waiting = uow.emit(
            "account.email_change_requested",
            email_change(account_id, address, "waiting").data,
            subject=account_id,
            personal=email_change(account_id, address, "waiting-token").personal,
        )
        uow.commit()
    o = orders_rt.outbox
    wait_until(
        lambda: scalar(orders_rt, select(o.c.sent_at).where(o.c.event_id == waiting.id)),
        timeout=30,
        message="the event is in notifications' queue",
    )

    # ---- the deactivation
    asked = orders.post("/v1/accounts/me/deactivation", headers=bearer)
    assert asked.status_code == 202, asked.get_json()
    again = orders.post("/v1/auth/token", json={"email": address, "password": PASSWORD})
    assert again.status_code == 401
    wait_until(lambda: orders_rt.keys.destroyed(account_id), timeout=60, message="key destroyed")
    consumers.resume("notifications")
    requests_table = gdpr_tables.deactivation_requests
    wait_until(
        lambda: (
            scalar(
                gdpr_rt,
                select(requests_table.c.status).where(requests_table.c.account_id == account_id),
            )
            == "done"
        ),
        timeout=90,
        message="every service reported and the request is done",
    )
    login = orders.post("/v1/auth/token", json={"email": address, "password": PASSWORD})
    assert login.status_code == 401

    # the message sealed before the erasure: handled without its personal part (no mail)
    wait_until(lambda: mails_of_event(notifications_rt, waiting.id), message="handled")
    [mail] = mails_of_event(notifications_rt, waiting.id)
    assert mail.status == "dropped" and mail.to_address is None
    # the parked message: shown with its personal part marked erased, then replayed
    shown = parked_to_json(store.get(parked["id"]), include_body=True, keys=store.keys)
    assert shown["body"]["personal"] is None and shown["body"]["personal_state"] == "erased"
    assert shown["body"]["data"]["account_id"] == account_id
    support = Broker(
        broker_accounts.get("support") or notifications_rt.settings.rabbitmq_url, bus_prefix
    )
    publisher = Publisher(support)
    try:
        store.replay(parked["id"], publisher, Actor("alice", "support"), "after the erasure")
    finally:
        publisher.close()
    wait_until(lambda: mails_of_event(notifications_rt, parked_event.id), message="replayed")
    [mail] = mails_of_event(notifications_rt, parked_event.id)
    assert mail.status == "dropped" and mail.to_address is None

    # the summary mail, through the SMTP sandbox
    m = notifications_tables.mails
    summary_sent = (
        select(m.c.message_id)
        .where(m.c.template == "account_deactivated", m.c.account_id == account_id)
        .where(m.c.status == "sent")
    )
    wait_until(lambda: scalar(notifications_rt, summary_sent), timeout=60, message="summary sent")
    message_id = scalar(notifications_rt, summary_sent)
    [summary] = [mail for mail in sent_mails(mail_folder) if mail["Message-ID"] == message_id]
    assert address in str(summary["To"])
    text = summary.get_body(("plain",)).get_content()
    # what is kept, why and until when: the invoices (their archive) and the orders' evidence
    assert re.search(r"Vos factures : Code de commerce L123-22.*jusqu'au 31\sdécembre 20\d\d", text)
    assert "Le dossier de vos commandes" in text and "L110-4" in text, text
    evidence += [
        "$ ls <SMTP sandbox folder>  # the summary mail the customer received",
        f"To: {summary['To']}",
        f"Subject: {summary['Subject']}",
        "",
        text.strip(),
        "",
    ]

    # ---- pg_dump of the whole database
    url = make_url(normalise_url(database_url))
    dump_command = [
        pg_dump_binary(),
        "--no-owner",
        "--host",
        url.host or "127.0.0.1",
        "--port",
        str(url.port or 5432),
        "--username",
        url.username or "postgres",
        url.database,
    ]
    env = {**os.environ, **({"PGPASSWORD": url.password} if url.password else {})}
    done = subprocess.run(dump_command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    dump = done.stdout
    assert "COPY archive.invoices" in dump and "COPY orders.orders" in dump
    blocks = copy_blocks(dump)
    for needle in (address, phone, phone[-8:]):
        assert occurrences(dump, needle) == [], needle
    for needle in (last_name, street):
        found = occurrences(dump, needle)
        assert found, needle  # the invoices keep them, in the archive
        outside = {
            table
            for table, block in blocks.items()
            if not table.startswith("archive.") and occurrences(block, needle)
        }
        assert outside == set(), (needle, outside)
        assert all(
            any(line in blocks[t].splitlines() for t in blocks if t.startswith("archive."))
            for line in found
        ), needle
    dumped = " ".join(["pg_dump", "--no-owner", url.database])
    evidence.append(f"$ {dumped} > dump.sql; wc -c dump.sql")
    evidence.append(f"{len(dump.encode())} dump.sql")
    for needle in (address, phone, last_name, street):
        evidence.append(f"$ grep -ci '{needle}' dump.sql  # also its bytes in hex (bytea)")
        evidence.append(str(len(occurrences(dump, needle))))
    for needle in (last_name, street):
        evidence.append(f"$ grep -i '{needle}' dump.sql | tables  # which COPY blocks hold it")
        evidence.append(
            ", ".join(sorted(t for t, block in blocks.items() if occurrences(block, needle)))
        )

    # ---- the archive reader, as the archive role would run it
    reader = subprocess.run(
        [sys.executable, "-m", "coc_payments.entrypoints.archive", "list", "--buyer", last_name],
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_URL": database_url},
        timeout=120,
    )
    assert reader.returncode == 0, reader.stderr
    listed = [json.loads(line) for line in reader.stdout.splitlines()]
    assert {row["order_id"] for row in listed} == {paid["id"], shipped["id"]}
    verified = subprocess.run(
        [sys.executable, "-m", "coc_payments.entrypoints.archive", "verify"],
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_URL": database_url},
        timeout=120,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    evidence.append(
        f"$ DATABASE_URL=<archive role> python -m coc_payments.entrypoints.archive list "
        f"--buyer {last_name}"
    )
    evidence += [
        json.dumps(
            {
                k: row[k]
                for k in (
                    "number",
                    "kind",
                    "order_number",
                    "buyer_name",
                    "billing_address",
                    "retained_until",
                    "archived_at",
                )
            },
            ensure_ascii=False,
        )
        for row in listed
    ]
    evidence.append(
        "$ DATABASE_URL=<archive role> python -m coc_payments.entrypoints.archive verify"
    )
    evidence.append(verified.stdout.strip())
    target = os.environ.get("COC_EVIDENCE_FILE")
    if target:  # beside it: the dump and the summary mail as received, for grep and a reader
        Path(target).write_text("\n".join(evidence) + "\n", encoding="utf-8")
        Path(target).with_name("dump.sql").write_text(dump, encoding="utf-8")
        Path(target).with_name("summary-mail.eml").write_bytes(summary.as_bytes())
        Path(target).with_name("customer.json").write_text(
            json.dumps(
                {"email": address, "phone": phone, "last_name": last_name, "street": street}
            ),
            encoding="utf-8",
        )
