"""Helpers of the supplier gateway's integration tests: a gateway runtime configured for this run
(a test directory whose http suppliers point at local servers), ready orders, a supplier's side on
the real broker (its own user), signed calls."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import amqp
import kombu

from coc_shared.broker_users import broker_user, supplier_account
from coc_shared.catalogue import lookup
from coc_shared.testing import fresh_example, handle
from coc_supplier_gateway.config import supplier_key
from coc_supplier_gateway.domain.directory import DEFAULT_PATH

MASTER = "supplier-master-secret-" + "m" * 32
LINK_SECRET = "document-link-secret-" + "z" * 32
CERT_KEY = base64.b64encode(b"c" * 32).decode()
LAPOSTE_KEY = "laposte-test-key"
ORDER_TOKEN = "the-order-s-access-token"  # of every order ready_order makes
VINS = {"psa-coc": "VF3ABCDEF12345678", "renault-coc": "VF1AB000123456789", "bmw-coc": None}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_directory(tmp_path, http_ports: dict[str, int], turnaround: dict | None = None) -> str:
    with open(DEFAULT_PATH, encoding="utf-8") as f:
        directory = json.load(f)
    for supplier in directory["suppliers"]:
        if supplier["code"] in http_ports:
            supplier["endpoint"] = f"http://127.0.0.1:{http_ports[supplier['code']]}/coc/requests"
        if turnaround and supplier["code"] in turnaround:
            supplier["turnaround_hours"] = turnaround[supplier["code"]]
    path = tmp_path / f"directory-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(directory), encoding="utf-8")
    return str(path)


def gateway_extra(tmp_path, directory: str, laposte_url: str = "http://127.0.0.1:9", **more):
    extra = {
        "SUPPLIER_GATEWAY_DIRECTORY_PATH": directory,
        "SUPPLIER_GATEWAY_SUPPLIER_SECRET": MASTER,
        "SUPPLIER_GATEWAY_DOCUMENT_LINK_SECRET": LINK_SECRET,
        "SUPPLIER_GATEWAY_CERTIFICATE_KEY": CERT_KEY,
        "SUPPLIER_GATEWAY_CERTIFICATE_STORE": "local",
        "SUPPLIER_GATEWAY_CERTIFICATES_DIR": str(tmp_path / "certificates"),
        "SUPPLIER_GATEWAY_SENDER_POLL_SECONDS": "0.1",
        "SUPPLIER_GATEWAY_SEND_RETRY_SECONDS": "0.2",
        "SUPPLIER_GATEWAY_HTTP_TIMEOUT": "2",
        "SUPPLIER_GATEWAY_DEADLINE_CHECK_SECONDS": "0.2",
        "SUPPLIER_GATEWAY_LAPOSTE_URL": laposte_url,
        "SUPPLIER_GATEWAY_LAPOSTE_KEY": LAPOSTE_KEY,
        "SUPPLIER_GATEWAY_TRACKING_POLL_SECONDS": "0.3",
    }
    extra.update(more)
    return extra


def key_of(code: str) -> str:
    return supplier_key(MASTER, code)


def ready_order(rt, vin: str = "VF3ABCDEF12345678", brand: str = "Peugeot", kinds=None, extra=None):
    """order.placed, payment.confirmed and order.documents_completed handled: the order's id."""
    placed = fresh_example("order.placed")
    order_id = placed.data["order_id"]
    placed.data = {
        **placed.data,
        "vin": vin,
        "brand": brand,
        "vehicle_extra": extra or {},
        "access_token_sha256": hashlib.sha256(ORDER_TOKEN.encode()).hexdigest(),
    }
    kinds = kinds or ["id_card", "registration_certificate"]
    documents = [
        {"id": str(uuid.uuid4()), "kind": k, "content_type": "application/pdf"} for k in kinds
    ]
    completed = fresh_example("order.documents_completed")
    completed.data = {
        "order_id": order_id,
        "document_ids": [d["id"] for d in documents],
        "documents": documents,
    }
    paid = fresh_example("payment.confirmed")
    paid.data = {**paid.data, "order_id": order_id}
    for event in (placed, paid, completed):
        event.subject = order_id
        handle(rt, event)
    return order_id, documents


def supplier_url(broker_accounts: dict, code: str) -> str:
    return broker_accounts[supplier_account(code)]


def take_requests(url: str, queue: str, count: int = 1, timeout: float = 20.0, match=None) -> list:
    """``count`` messages taken from a supplier's queue as the supplier (its own user); with
    ``match(body)``, only those it accepts count (others, of earlier tests, are dropped)."""
    got = []
    deadline = time.monotonic() + timeout
    with kombu.Connection(url) as conn:
        channel = conn.channel()
        while len(got) < count and time.monotonic() < deadline:
            message = channel.basic_get(queue, no_ack=True)
            if message is None:
                time.sleep(0.05)
                continue
            if match is None or match(json.loads(message.body)):
                got.append(message)
    return got


def publish_reply(
    url: str,
    prefix: str,
    code: str,
    reply: dict,
    user_id: str | None = "own",
    routing_key: str | None = None,
) -> None:
    """A reply published to coc.supplier-replies as ``url``'s user, with confirms."""
    account = kombu.Connection(url)
    conn = amqp.Connection(
        f"{account.hostname}:{account.port or 5672}",
        userid=account.userid,
        password=account.password,
        virtual_host=account.virtual_host or "/",
    )
    conn.connect()
    try:
        channel = conn.channel()
        channel.confirm_select()
        props = {
            "content_type": "application/json",
            "delivery_mode": 2,
            "message_id": reply.get("reply_id", str(uuid.uuid4())),
        }
        if user_id == "own":
            props["user_id"] = account.userid
        elif user_id is not None:
            props["user_id"] = user_id
        channel.basic_publish(
            amqp.Message(json.dumps(reply).encode(), **props),
            exchange=f"{prefix}coc.supplier-replies",
            routing_key=routing_key or code,
        )
        channel.basic_qos(0, 1, False)  # a round trip: a refusal of the publish arrives before it
    finally:
        conn.collect()


def reply(request_id: str, code: str, kind: str, **fields) -> dict:
    return {
        "reply_id": str(uuid.uuid4()),
        "request_id": request_id,
        "supplier": code,
        "kind": kind,
        "occurred_at": datetime.now(UTC).isoformat(),
        **fields,
    }


def signed_headers(code: str, body: bytes, timestamp: int | None = None, key: str | None = None):
    ts = str(int(time.time()) if timestamp is None else timestamp)
    mac = hmac.new((key or key_of(code)).encode(), ts.encode() + b"." + body, hashlib.sha256)
    return {
        "Content-Type": "application/json",
        "X-COC-Timestamp": ts,
        "X-COC-Signature": "sha256=" + mac.hexdigest(),
    }


def user_of(prefix: str, code: str) -> str:
    return broker_user(prefix, supplier_account(code))


class FakeSupplier:
    """A supplier's HTTP endpoint on this machine: records what it receives; ``down`` answers 503
    (or, with ``refuse_connections``, closes the listening socket)."""

    def __init__(self):
        self.port = free_port()
        self.received: list[tuple[dict, dict]] = []
        self.status = 202
        self.server = None
        self.lock = threading.Lock()

    def start(self):
        supplier = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with supplier.lock:
                    status = supplier.status
                    if status < 300:
                        supplier.received.append((dict(self.headers), json.loads(body)))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def example_personal():
    return lookup("order.placed", 1).example_personal
