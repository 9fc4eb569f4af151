"""What the support console's tests share (no test here): the five services of tests/trust_kit
served over HTTP on 127.0.0.1 ports (threads of this process), parked messages in two of them,
and the console on this run's database, calling them only through their staff APIs with tokens
it signs with this run's private key."""

from __future__ import annotations

import json
import re
import sys
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
from werkzeug.serving import make_server

sys.path.insert(0, str(Path(__file__).resolve().parent))

from trust_kit import make_stack

from coc_console.config import url_variable
from coc_console.service import definition as console_definition
from coc_console.service_layer import auth
from coc_shared.service import Runtime
from coc_shared.testing import STAFF_KEYS, fresh_example, purge_queue, wait_until

PASSWORD = "correct horse battery staple"
AUDIT_KEY = "console-audit-key-of-the-tests-0123456789"  # CONSOLE_AUDIT_KEY
CUSTOMER_EMAIL = "emilie.parked@example.org"


@dataclass
class ConsoleStack:
    stack: object  # trust_kit.Stack
    console: Runtime
    app: object
    servers: list = field(default_factory=list)
    urls: dict = field(default_factory=dict)
    parked: dict = field(default_factory=dict)  # name -> (service, parked id)
    order_number: str = ""
    error_type: str = ""  # the error class of the three parked in payments

    def dispose(self) -> None:
        for server in self.servers:
            server.shutdown()
        self.console.dispose()
        self.stack.dispose()


def serve(app, servers: list) -> str:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    servers.append(server)
    return f"http://127.0.0.1:{server.server_port}"


def park(runtime, service: str, event_type: str, error_type: str, order_id: str) -> int:
    now = datetime.now(UTC)
    event_id = str(uuid.uuid4())
    body = {
        "id": event_id,
        "type": event_type,
        "version": 1,
        "occurred_at": now.isoformat(),
        "producer": "orders",
        "correlation_id": order_id,
        "subject": order_id,
        "data": {"order_id": order_id},
        "personal": {"email": CUSTOMER_EMAIL, "first_name": "Émilie"},
    }
    return runtime.parking.park(
        service=service,
        queue=f"coc.{service}",
        routing_key=event_type,
        body=json.dumps(body).encode(),
        headers={},
        properties={"message_id": event_id, "type": event_type},
        error_type=error_type,
        error_message=f"{error_type}: the handler failed",
        stack_trace=None,
        attempts=5,
        first_failed_at=now - timedelta(hours=2),
        last_failed_at=now,
        event_id=event_id,
        event_type=event_type,
        order_id=order_id,
        correlation_id=order_id,
    )


def make_console_stack(settings_factory, tmp_path, **console_extra) -> ConsoleStack:
    stack = make_stack(settings_factory, tmp_path)
    servers: list = []
    urls = {service: serve(app, servers) for service, app in stack.apps.items()}
    extra = {url_variable(s): u for s, u in urls.items()}
    extra.update(
        {"STAFF_TOKEN_PRIVATE_KEY": STAFF_KEYS[0], "CONSOLE_AUDIT_KEY": AUDIT_KEY, **console_extra}
    )
    console = Runtime(console_definition, settings_factory("console", extra=extra))
    console.migrate()
    result = ConsoleStack(stack, console, console.create_app(), servers, urls)
    payments = stack.runtimes["payments"]
    # a unique error class per stack: other tests of the run park messages in the same store
    error = f"KeyError{uuid.uuid4().hex[:6]}"
    for n in range(3):
        result.parked[f"payments-{n}"] = (
            "payments",
            park(payments, "payments", "order.placed", error, stack.order_id),
        )
    result.parked["notifications"] = (
        "notifications",
        park(
            stack.runtimes["notifications"],
            "notifications",
            "payment.confirmed",
            f"SMTPError{uuid.uuid4().hex[:6]}",
            stack.order_id,
        ),
    )
    result.error_type = error
    orders = stack.client("orders").get(f"/v1/staff/orders/{stack.order_id}", headers=stack.staff)
    assert orders.status_code == 200, orders.get_json()
    result.order_number = orders.get_json()["number"]
    return result


def new_staff(console: Runtime, role: str = "admin") -> tuple[str, str]:
    """A new staff member: (name, TOTP secret)."""
    name = f"{role}-{uuid.uuid4().hex[:8]}"
    created = auth.create_staff(console, name, role, PASSWORD)
    return name, created.totp_secret


def form_csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]*)"', html).group(1)


def log_in(client, name: str, secret: str, code: str | None = None):
    page = client.get("/login")
    return client.post(
        "/login",
        data={
            "csrf": form_csrf(page.get_data(as_text=True)),
            "name": name,
            "password": PASSWORD,
            "code": code or pyotp.TOTP(secret).now(),
        },
    )


def signed_in_client(cs: ConsoleStack, role: str = "admin"):
    """A test client of the console with a session of a new staff member; (client, name, csrf)."""
    client = cs.app.test_client()
    name, secret = new_staff(cs.console, role)
    answer = log_in(client, name, secret)
    assert answer.status_code == 302, answer.get_data(as_text=True)
    csrf = form_csrf(client.get("/failures").get_data(as_text=True))
    return client, name, csrf


# ------------------------------------------------------------------------------- safe replay
# Orders' certificate.received handler is the one replayed: it refuses an unknown order (a
# PermanentError, parked again) and applies or ignores the event for a known one (handled).
REPLAYED_TYPE = "certificate.received"


@contextmanager
def consuming(runtime):
    """``runtime``'s consumer running on the real broker (its queue emptied first)."""
    runtime.declare_topology()
    purge_queue(runtime)
    stop = threading.Event()
    threads = runtime.start_worker_threads(stop, relay=False, loops=False)
    wait_until(lambda: runtime.consumer.ready.is_set(), message="the consumer")
    try:
        yield runtime
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=15)


def park_event(runtime, event, error_type: str) -> int:
    """A valid ``event`` parked in ``runtime``'s service as its consumer parks (after an earlier
    failure ``error_type``); its parked id."""
    now = datetime.now(UTC)
    service = runtime.definition.name
    return runtime.parking.park(
        service=service,
        queue=runtime.broker.queue_name(service),
        routing_key=event.type,
        body=event.to_json(),
        headers={"x-coc-attempts": 5},
        properties={"message_id": event.id, "type": event.type},
        error_type=error_type,
        error_message=f"{error_type}: the handler of the day failed",
        stack_trace=None,
        attempts=5,
        first_failed_at=now - timedelta(hours=1),
        last_failed_at=now,
        event_id=event.id,
        event_type=event.type,
        order_id=(event.data or {}).get("order_id") or event.subject,
        correlation_id=event.correlation_id,
    )


def park_certificate(runtime, order_id: str, error_type: str) -> tuple[int, str]:
    """A ``certificate.received`` for ``order_id`` parked in orders; (parked id, event id)."""
    event = fresh_example(REPLAYED_TYPE, order_id=lambda: order_id)
    event.correlation_id = order_id
    return park_event(runtime, event, error_type), event.id


def park_replay_group(cs: ConsoleStack, count: int, known_order: bool):
    """``count`` parked messages of a new error class, for the stack's order (they will succeed)
    or for unknown orders (they fail again); (error class, [(parked id, event id)])."""
    error_type = f"KeyError{uuid.uuid4().hex[:6]}"
    orders = cs.stack.runtimes["orders"]
    parked = [
        park_certificate(
            orders, cs.stack.order_id if known_order else str(uuid.uuid4()), error_type
        )
        for _ in range(count)
    ]
    return error_type, parked
