"""`make run` (coc-run) in both modes, as a user runs it: every service starts, answers its
probes, and an event written to one service's outbox reaches another service through the bus."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from coc_orders.service import definition as orders_definition
from coc_payments.adapters.tables import payments_due
from coc_shared import broker_users
from coc_shared.catalogue import ERASING_SERVICES, lookup
from coc_shared.config import APPLICATIONS, SERVICE_NAMES, Settings, port_variable
from coc_shared.db import normalise_url
from coc_shared.service import Runtime
from coc_shared.testing import delete_bus_names, service_env, staff_headers, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trust_kit import order_body

BIN = Path(sys.executable).parent


def minimal_pdf() -> bytes:
    """A real one-page PDF (the upload is read by a PDF parser)."""
    import io

    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start(env: dict, args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "coc-run"), *args],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def all_ready(ports: dict[str, int]) -> bool:
    for port in ports.values():
        try:
            if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code != 200:
                return False
        except requests.RequestException:
            return False
    return True


def order_placed_payload() -> tuple[str, dict]:
    order_id = str(uuid.uuid4())
    spec = lookup("order.placed", 1)
    return order_id, {**spec.example_data, "order_id": order_id}


def payment_due_recorded(engine, order_id: str) -> bool:
    with engine.connect() as conn:
        return (
            conn.execute(
                select(payments_due.c.order_id).where(payments_due.c.order_id == order_id)
            ).first()
            is not None
        )


@pytest.fixture
def first_run_database(postgres_server_url):
    """A database of this test's own: a first run is one where the console has no staff yet,
    which the run's shared database (other tests' staff accounts) is not."""
    server = make_url(normalise_url(postgres_server_url))
    name = f"coc_mr_{uuid.uuid4().hex[:12]}"
    admin = create_engine(
        server.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield server.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
            {"n": name},
        )
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture
def ports() -> dict[str, int]:
    """A free port for each service and for the support console."""
    names = (*SERVICE_NAMES, *APPLICATIONS)
    return dict(zip(names, free_ports(len(names))))


def assert_first_admin_made(output: str, data_dir: Path, console_port: int) -> None:
    """The first run made the console's first admin and printed how to log in (the password and
    the TOTP secret, kept in RUN_DATA_DIR/console-admin.txt, mode 600), and the console serves
    its login page."""
    kept = data_dir / "console-admin.txt"
    assert kept.stat().st_mode & 0o777 == 0o600
    fields = dict(line.split(": ", 1) for line in kept.read_text().splitlines())
    assert fields["name"] == "admin"
    login = f"http://127.0.0.1:{console_port}/login"
    assert "support console: first run" in output
    assert f"log in at    {login}" in output
    assert fields["password"] in output and fields["totp_secret"] in output
    page = requests.get(login, timeout=10)
    assert page.status_code == 200 and "password" in page.text.lower()


def _env(base: dict, ports: dict[str, int]) -> dict:
    env = dict(base)
    for service, port in ports.items():
        env[port_variable(service)] = str(port)
    return env


def guest_erasure_across_processes(ports: dict[str, int], mail_folder: Path) -> dict:
    """GDPR's saga through the processes coc-run started: a guest places an order on the orders
    API and asks for its erasure with the order's token; gdpr asks the four other services'
    workers, each reports, and the summary is mailed through the SMTP sandbox. Returns gdpr's
    view of the request."""
    email = f"guest.{uuid.uuid4().hex[:10]}@example.org"
    body = order_body()
    body["customer"] = {**body["customer"], "email": email}
    orders = f"http://127.0.0.1:{ports['orders']}"
    placed = requests.post(f"{orders}/v1/orders", json=body, timeout=10)
    assert placed.status_code == 201, placed.text
    order_id, token = placed.json()["id"], placed.json()["access_token"]
    asked = requests.post(
        f"{orders}/v1/orders/{order_id}/deactivation", headers={"X-Order-Token": token}, timeout=10
    )
    assert asked.status_code == 202, asked.text
    gdpr = f"http://127.0.0.1:{ports['gdpr']}/v1/staff/deactivation-requests/{order_id}"

    def done() -> dict | None:
        answer = requests.get(gdpr, headers=staff_headers("sam", "support"), timeout=10)
        items = answer.json().get("items", []) if answer.status_code == 200 else []
        return items[0] if items and items[0]["status"] == "done" else None

    request = wait_until(done, timeout=90, message="every worker reported, the request is done")
    wait_until(
        lambda: any(email in f.read_text(errors="replace") for f in mail_folder.glob("*.eml")),
        timeout=60,
        message="the summary mailed through the SMTP sandbox",
    )
    summary = [f for f in mail_folder.glob("*.eml") if email in f.read_text(errors="replace")]
    assert len(summary) == 1 and "supprim" in summary[0].read_text(errors="replace")
    # the order's personal data is gone: its token opens nothing to erase again
    again = requests.post(
        f"{orders}/v1/orders/{order_id}/deactivation", headers={"X-Order-Token": token}, timeout=10
    )
    assert again.status_code in (202, 404)
    return request


def test_distributed_mode_starts_every_service_and_carries_events(
    settings_factory, ports, tmp_path, rabbitmq_url, bus_prefix, first_run_database
):
    # make run creates the services' broker users itself, with passwords of its own: a prefix of
    # its own keeps them apart from this test run's users
    prefix = f"{bus_prefix}mr."
    settings = settings_factory(
        "orders",
        bus_prefix=prefix,
        rabbitmq_url=rabbitmq_url,
        database_url=first_run_database,
        parking_database_url=first_run_database,
    )
    env = _env(service_env(settings), ports)
    env["RUN_DATA_DIR"] = str(tmp_path)
    log = tmp_path / "coc-run.log"
    process = start(env, [], log)
    try:
        wait_until(
            lambda: all_ready(ports) or process.poll() is not None,
            timeout=90,
            message="five services ready",
        )
        assert process.poll() is None, log.read_text()[-3000:]
        output = log.read_text()
        assert "distributed mode" in output and "DATABASE_URL" in output
        for service, port in ports.items():
            assert f"http://127.0.0.1:{port}" in output, f"{service}'s address is not printed"
        assert_first_admin_made(output, tmp_path, ports["console"])
        # An event committed in the orders schema's outbox is relayed by the orders worker and
        # handled by the payments worker, each a process started by coc-run.
        runtime = Runtime(orders_definition, settings)
        order_id, data = order_placed_payload()
        with runtime.unit_of_work(correlation_id=order_id) as uow:
            uow.emit(
                "order.placed",
                data,
                subject=order_id,
                personal=lookup("order.placed", 1).example_personal,
            )
            uow.commit()
        wait_until(
            lambda: payment_due_recorded(runtime.engine, order_id),
            timeout=30,
            message="payment due recorded",
        )
        # kill -9 the payments worker: coc-run starts it again, the APIs keep answering, and an
        # order placed while it was down is handled by the new one.
        worker_pid = int(re.search(r"payments .*worker pid (\d+)", output).group(1))
        os.kill(worker_pid, signal.SIGKILL)
        order_id, data = order_placed_payload()
        with runtime.unit_of_work(correlation_id=order_id) as uow:
            uow.emit(
                "order.placed",
                data,
                subject=order_id,
                personal=lookup("order.placed", 1).example_personal,
            )
            uow.commit()
        wait_until(
            lambda: payment_due_recorded(runtime.engine, order_id),
            timeout=60,
            message="payment due recorded by the restarted worker",
        )
        assert all_ready(ports) and process.poll() is None
        request = guest_erasure_across_processes(ports, tmp_path / "mail")
        assert {r["service"] for r in request["reports"]} == set(ERASING_SERVICES)
        restarted = [
            json.loads(line)
            for line in log.read_text().splitlines()
            if '"process.restarted"' in line
        ]
        assert [entry["process"] for entry in restarted] == ["payments worker"]
        # whole lines, each naming its service, in the output and in per-service files
        for line in log.read_text().splitlines():
            if line.startswith("{"):
                assert "service" in json.loads(line), line
        payments_log = (tmp_path / "logs" / "payments.log").read_text().splitlines()
        assert payments_log and all(
            json.loads(line)["service"] == "payments"
            if line.startswith("{")
            else line.startswith("[payments] ")
            for line in payments_log
        )
    finally:
        stop(process)
        broker_users.delete_users(
            [broker_users.broker_user(prefix, s) for s in broker_users.all_services()]
        )
        delete_bus_names(rabbitmq_url, prefix)
    assert process.returncode == 0, log.read_text()[-3000:]
    assert "support tools" in output  # the support user's URL is printed for coc-support


def test_embedded_mode_needs_no_server(ports, tmp_path, storefront_order):
    env = _env(dict(os.environ), ports)
    env.update(
        {
            "RABBITMQ_URL": "memory://",
            "DATABASE_URL": f"sqlite:///{tmp_path}/main.db",
            "RUN_DATA_DIR": str(tmp_path),
            "BUS_PREFIX": "",
            "RETRY_DELAYS": "1",
        }
    )
    for name in (
        "PARKING_DATABASE_URL",
        "STAFF_TOKEN_PUBLIC_KEY",
        "CUSTOMER_TOKEN_SECRET",
        "ORDERS_DOCUMENT_KEY",
        "ORDERS_DOCUMENT_STORE",
        "ORDERS_DOCUMENTS_DIR",
    ):
        env.pop(name, None)  # as on a developer's machine: make run supplies development defaults
    log = tmp_path / "coc-run.log"
    process = start(env, [], log)
    try:
        wait_until(
            lambda: all_ready(ports) or process.poll() is not None,
            timeout=60,
            message="five services ready",
        )
        assert process.poll() is None, log.read_text()[-3000:]
        output = log.read_text()
        assert "embedded mode" in output
        for port in ports.values():
            assert f"http://127.0.0.1:{port}" in output
        assert_first_admin_made(output, tmp_path, ports["console"])
        # The same flow through the in-memory transport: write to orders' SQLite outbox; the
        # embedded relay picks it up and the payments consumer in the same process records it.
        settings = Settings.from_env(
            "orders",
            rabbitmq_url="memory://",
            database_url=f"sqlite:///{tmp_path}/main.db",
            parking_database_url=f"sqlite:///{tmp_path}/main.db",
        )
        runtime = Runtime(orders_definition, settings)
        order_id, data = order_placed_payload()
        with runtime.unit_of_work(correlation_id=order_id) as uow:
            uow.emit(
                "order.placed",
                data,
                subject=order_id,
                personal=lookup("order.placed", 1).example_personal,
            )
            uow.commit()
        from coc_payments.service import definition as payments_definition

        payments = Runtime(
            payments_definition,
            Settings.from_env(
                "payments",
                rabbitmq_url="memory://",
                database_url=f"sqlite:///{tmp_path}/main.db",
                parking_database_url=f"sqlite:///{tmp_path}/main.db",
            ),
        )
        wait_until(
            lambda: payment_due_recorded(payments.engine, order_id),
            timeout=30,
            message="payment due recorded",
        )
        # As a user of `make run` would: place an order on the storefront API and upload a document
        # (the development defaults give the embedded run a document key and a local store).
        orders_url = f"http://127.0.0.1:{ports['orders']}"
        placed = requests.post(f"{orders_url}/v1/orders", json=storefront_order, timeout=10)
        assert placed.status_code == 201, placed.text
        order = placed.json()
        upload = requests.post(
            f"{orders_url}/v1/orders/{order['id']}/documents",
            headers={"X-Order-Token": order["access_token"]},
            data={"kind": "id_card"},
            files={"file": ("id.pdf", minimal_pdf(), "application/pdf")},
            timeout=10,
        )
        assert upload.status_code == 201, upload.text
        wait_until(
            lambda: payment_due_recorded(payments.engine, order["id"]),
            timeout=30,
            message="the storefront order's payment due recorded",
        )
    finally:
        stop(process)
    assert process.returncode == 0, log.read_text()[-3000:]
