"""The whole story through real processes, on the real RabbitMQ and PostgreSQL: orders (API and
worker), the supplier gateway (API and worker), the payments relay, the reference supplier
integration (``coc-supplier-sandbox``, amqp, as the supplier's own broker user) and La Poste's
tracking emulator. A customer places an order and uploads its documents, the payment is confirmed,
and the order moves by itself: sent to the supplier, accepted, certificate issued (the supplier
downloaded the documents through their signed links), shipped by the supplier, delivered; the
order's timeline (``GET /v1/orders/{id}``) shows it, and the customer downloads the certificate."""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests
from pypdf import PdfReader, PdfWriter
from sqlalchemy import select

from coc_orders.adapters import tables as orders_tables
from coc_orders.service import definition as orders_definition
from coc_payments.service import definition as payments_definition
from coc_shared.broker_users import supplier_account
from coc_shared.testing import service_env, wait_until
from coc_supplier_gateway.config import supplier_key
from coc_supplier_gateway.domain.directory import DEFAULT_PATH
from coc_supplier_gateway.service import definition as gateway_definition

BIN = Path(sys.executable).parent
LINK_SECRET = "story-document-link-secret-" + "s" * 32
MASTER = "story-supplier-master-secret-" + "m" * 32
VW_VIN = "WVWZZZ1JZXW000001"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pdf(text: str) -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.add_metadata({"/Title": text})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


class Processes:
    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.started: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, args: list[str], env: dict) -> subprocess.Popen:
        log = (self.log_dir / f"{name}.log").open("w")
        process = subprocess.Popen(
            args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.started.append((name, process))
        return process

    def stop(self) -> None:
        for _, process in reversed(self.started):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for _, process in self.started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    def logs(self) -> str:
        return "\n".join(
            f"--- {name}\n" + (self.log_dir / f"{name}.log").read_text()[-2500:]
            for name, _ in self.started
        )


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture
def story(runtime_factory, broker_accounts, bus_prefix, tmp_path):
    ports = {name: free_port() for name in ("orders", "gateway", "laposte")}
    document_key = base64.b64encode(os.urandom(32)).decode()
    laposte_key = "story-laposte-key"
    directory = json.loads(Path(DEFAULT_PATH).read_text(encoding="utf-8"))
    for supplier in directory["suppliers"]:
        if supplier["channel"] == "http":
            supplier["endpoint"] = "http://127.0.0.1:9/unused"
    (tmp_path / "directory.json").write_text(json.dumps(directory), encoding="utf-8")
    orders_extra = {
        "ORDERS_PORT": str(ports["orders"]),
        "ORDERS_DOCUMENT_KEY": document_key,
        "ORDERS_DOCUMENT_STORE": "local",
        "ORDERS_DOCUMENTS_DIR": str(tmp_path / "documents"),
        "ORDERS_DOCUMENT_LINK_SECRET": LINK_SECRET,
        "ORDERS_CERTIFICATE_URL": f"http://127.0.0.1:{ports['gateway']}"
        "/v1/orders/{order_id}/certificate",
    }
    gateway_extra = {
        "SUPPLIER_GATEWAY_PORT": str(ports["gateway"]),
        "SUPPLIER_GATEWAY_DIRECTORY_PATH": str(tmp_path / "directory.json"),
        "SUPPLIER_GATEWAY_SUPPLIER_SECRET": MASTER,
        "SUPPLIER_GATEWAY_DOCUMENT_LINK_SECRET": LINK_SECRET,
        "SUPPLIER_GATEWAY_DOCUMENT_URL": f"http://127.0.0.1:{ports['orders']}"
        "/v1/supplier-documents/{document_id}",
        "SUPPLIER_GATEWAY_CERTIFICATE_KEY": base64.b64encode(os.urandom(32)).decode(),
        "SUPPLIER_GATEWAY_CERTIFICATE_STORE": "local",
        "SUPPLIER_GATEWAY_CERTIFICATES_DIR": str(tmp_path / "certificates"),
        "SUPPLIER_GATEWAY_SENDER_POLL_SECONDS": "0.2",
        "SUPPLIER_GATEWAY_LAPOSTE_URL": f"http://127.0.0.1:{ports['laposte']}",
        "SUPPLIER_GATEWAY_LAPOSTE_KEY": laposte_key,
        "SUPPLIER_GATEWAY_TRACKING_POLL_SECONDS": "0.5",
    }
    orders = runtime_factory(orders_definition, extra=orders_extra)
    gateway = runtime_factory(gateway_definition, extra=gateway_extra)
    payments = runtime_factory(payments_definition)
    for runtime in (orders, gateway, payments):
        runtime.declare_topology()
    processes = Processes(tmp_path)
    orders_env = {**service_env(orders.settings), **orders_extra}
    gateway_env = {**service_env(gateway.settings), **gateway_extra}
    processes.start("orders-api", [str(BIN / "coc-orders"), "api"], orders_env)
    processes.start("orders-worker", [str(BIN / "coc-orders"), "worker"], orders_env)
    processes.start("gateway-api", [str(BIN / "coc-supplier-gateway"), "api"], gateway_env)
    processes.start("gateway-worker", [str(BIN / "coc-supplier-gateway"), "worker"], gateway_env)
    processes.start(
        "payments-relay", [str(BIN / "coc-payments"), "relay"], service_env(payments.settings)
    )
    (tmp_path / "laposte.key").write_text(laposte_key)
    processes.start(
        "laposte",
        [
            str(BIN / "coc-laposte-sandbox"),
            "--port",
            str(ports["laposte"]),
            "--deliver-after",
            "2",
            "--key-file",
            str(tmp_path / "laposte.key"),
        ],
        dict(os.environ),
    )
    (tmp_path / "supplier.key").write_text(supplier_key(MASTER, "vag-coc"))
    (tmp_path / "supplier.amqp").write_text(broker_accounts[supplier_account("vag-coc")])
    processes.start(
        "supplier-vag-coc",
        [
            str(BIN / "coc-supplier-sandbox"),
            "--supplier",
            "vag-coc",
            "--prefix",
            bus_prefix,
            "--amqp-url-file",
            str(tmp_path / "supplier.amqp"),
            "--key-file",
            str(tmp_path / "supplier.key"),
            "--accept-after",
            "0.5",
            "--issue-after",
            "1",
            "--ships",
            "--ship-after",
            "0.5",
        ],
        dict(os.environ),
    )
    orders_url = f"http://127.0.0.1:{ports['orders']}"
    gateway_url = f"http://127.0.0.1:{ports['gateway']}"
    try:
        wait_until(
            lambda: answers(f"{orders_url}/healthz") and answers(f"{gateway_url}/healthz"),
            timeout=60,
            message="the APIs",
        )
        yield {
            "orders": orders,
            "payments": payments,
            "gateway": gateway,
            "orders_url": orders_url,
            "processes": processes,
        }
    finally:
        processes.stop()


def test_placed_paid_documents_sent_accepted_issued_shipped_delivered(story, storefront_order):
    orders_url = story["orders_url"]
    body = {**storefront_order, "vehicle": {"vin": VW_VIN, "first_registration_date": "2019-05-14"}}
    placed = requests.post(f"{orders_url}/v1/orders", json=body, timeout=10)
    assert placed.status_code == 201, placed.text
    order = placed.json()
    token = {"X-Order-Token": order["access_token"]}
    for kind in order["documents_required"]:
        uploaded = requests.post(
            f"{orders_url}/v1/orders/{order['id']}/documents",
            headers=token,
            data={"kind": kind},
            files={"file": (f"{kind}.pdf", pdf(kind), "application/pdf")},
            timeout=10,
        )
        assert uploaded.status_code == 201, uploaded.text
    with story["payments"].unit_of_work(correlation_id=order["id"]) as uow:
        uow.emit(
            "payment.confirmed",
            {
                "order_id": order["id"],
                "order_number": order["number"],
                "method": "transfer",
                "provider": "bank-transfer",
                "provider_transaction_id": uuid.uuid4().hex,
                "amount": order["total"],
            },
            subject=order["id"],
        )
        uow.commit()

    def current():
        return requests.get(
            f"{orders_url}/v1/orders/{order['id']}", headers=token, timeout=5
        ).json()

    try:
        wait_until(lambda: current()["status"] == "delivered", timeout=120, message="delivered")
    except AssertionError:
        print(story["processes"].logs())
        raise
    view = current()
    timeline = [(e["event"], e["status"]) for e in view["timeline"]]
    assert timeline == [
        ("order.placed", "placed"),
        ("order.documents_completed", "placed"),
        ("payment.confirmed", "paid"),
        ("documents.sent_to_supplier", "sent_to_supplier"),
        ("supplier.request_accepted", None),  # the supplier's step, recorded (moves nothing)
        ("certificate.received", "certificate_received"),
        ("certificate.shipped", "shipped"),
        ("certificate.delivered", "delivered"),
    ], timeline
    assert all(
        e["outcome"] == ("recorded" if e["event"] == "supplier.request_accepted" else "applied")
        for e in view["timeline"]
    )
    print(
        "ORDER TIMELINE "
        + json.dumps({"status": view["status"], "timeline": view["timeline"]}, indent=2)
    )
    # the supplier fetched the documents it needs through their links, each download recorded
    d = orders_tables.document_downloads
    with story["orders"].engine.connect() as conn:
        downloads = conn.execute(
            select(d.c.supplier, d.c.document_id).where(d.c.order_id == order["id"])
        ).all()
    kinds = {doc["id"]: doc["kind"] for doc in view["documents"]}
    assert {(s, kinds[i]) for s, i in downloads} == {("vag-coc", "registration_certificate")}
    # the gateway's history shows the supplier's accepted and issued replies
    staff = story["gateway"].create_app().test_client()
    from coc_shared.testing import staff_headers

    shown = staff.get(
        f"/v1/staff/supplier-requests/{order['id']}", headers=staff_headers()
    ).get_json()
    steps = [h["what"] for h in shown["history"]]
    assert steps[:2] == ["ready", "sent"] and {
        "reply_accepted",
        "reply_issued",
        "reply_shipped",
        "delivered",
    } <= set(steps)
    print(
        "GATEWAY HISTORY "
        + json.dumps(
            [{"at": h["at"], "what": h["what"], "actor": h["actor"]} for h in shown["history"]],
            indent=2,
        )
    )
    # the customer downloads the certificate the supplier issued, from the order's link
    certificate = requests.get(view["links"]["certificate"], headers=token, timeout=10)
    assert certificate.status_code == 200, certificate.text
    assert certificate.headers["Content-Type"] == "application/pdf"
    text = PdfReader(io.BytesIO(certificate.content)).pages[0].extract_text()
    assert "CERTIFICATE OF CONFORMITY" in text and VW_VIN in text
