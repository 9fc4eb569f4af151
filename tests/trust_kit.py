"""What the cross-service trust-boundary tests share (test_hostile_inputs, test_fuzz_all_services):
the five services on this run's database (orders with a local document store and per-process rate
limits, payments with its card and transfer providers), a customer with an account, an order and a
payment due, staff tokens, and the checks every answer to a hostile request passes."""

from __future__ import annotations

import base64
import copy
import importlib
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from coc_shared.catalogue import example_event, lookup
from coc_shared.config import SERVICE_NAMES
from coc_shared.envelope import Event
from coc_shared.service import Runtime
from coc_shared.testing import forget_unsent, handle, purge_queue, staff_headers
from coc_shared.tokens import issue_customer_token

QONTO_SECRET = "qonto-secret-" + "q" * 20
ORDER = {
    "customer": {
        "first_name": "Émilie",
        "last_name": "Dupont-Lefèvre",
        "email": "emilie@example.org",
        "phone": "06 12 34 56 78",
    },
    "shipping_address": {
        "line1": "1 rue de la Paix",
        "postal_code": "75002",
        "city": "Paris",
        "country": "FR",
    },
    "vehicle": {"vin": "VF3ABCDEF12345678", "first_registration_date": "2019-05-14"},
    "payment_method": "transfer",
}
# Each service's staff route with a path parameter (the parked-message routes are everyone's).
STAFF_ROUTES = {
    "orders": "/v1/staff/orders/{id}/events",
    "payments": "/v1/staff/payments-due/{id}",
    "supplier-gateway": "/v1/staff/supplier-requests/{id}",
    "notifications": "/v1/staff/orders/{id}/notifications",
    "gdpr": "/v1/staff/deactivation-requests/{id}",
}


def definition_of(service: str):
    return importlib.import_module(f"coc_{service.replace('-', '_')}.service").definition


def order_body() -> dict:
    return copy.deepcopy(ORDER)


def service_extra(service: str, tmp_path) -> dict:
    if service == "orders":
        return {
            "ORDERS_DOCUMENT_KEY": base64.b64encode(b"k" * 32).decode(),
            "ORDERS_DOCUMENT_STORE": "local",
            "ORDERS_DOCUMENTS_DIR": str(tmp_path / "documents"),
            "ORDERS_RATE_LIMIT_STORAGE": "memory://",
            "ORDERS_DOCUMENT_LINK_SECRET": "fuzz-document-link-secret-" + "l" * 32,
            **{
                f"ORDERS_RATE_LIMIT_{name}": "100000/minute"
                for name in ("LOGIN", "ORDERS", "UPLOADS", "CHANGES", "MAIL")
            },
        }
    if service == "payments":
        return {
            "SYSTEMPAY_SITE_ID": "12345678",
            "SYSTEMPAY_MODE": "TEST",
            "SYSTEMPAY_TEST_KEY": "test-key-" + "k" * 16,
            "SYSTEMPAY_FORM_URL": "https://bank.test/vads-payment/",
            "PAYMENTS_PUBLIC_URL": "https://payments.test",
            "TRANSFER_IBAN": "FR7630006000011234567890189",
            "TRANSFER_BIC": "AGRIFRPP",
            "TRANSFER_BENEFICIARY": "COC SAS",
            "QONTO_WEBHOOK_SECRET": QONTO_SECRET,
            "SELLER_NAME": "COC Services SAS",
            "SELLER_STREET": "10 rue de la Paix",
            "SELLER_POSTAL_CODE": "75002",
            "SELLER_CITY": "Paris",
            "SELLER_SIREN": "732829320",
            "SELLER_VAT_NUMBER": "FR44732829320",
            "INVOICE_KEY": base64.b64encode(b"i" * 32).decode(),
            # the fuzz checks out far more often than a customer may
            "PAYMENTS_RATE_LIMIT_STORAGE": "memory://",
            "PAYMENTS_RATE_LIMIT_CHECKOUT": "100000/minute",
        }
    if service == "notifications":
        return {
            "NOTIFICATIONS_UNSUBSCRIBE_SECRET": "fuzz-unsubscribe-secret-" + "u" * 32,
            "NOTIFICATIONS_MAIL_FROM": "COC <commandes@coc.example>",
        }
    if service == "supplier-gateway":
        return {
            "SUPPLIER_GATEWAY_SUPPLIER_SECRET": "fuzz-supplier-secret-" + "s" * 32,
            "SUPPLIER_GATEWAY_DOCUMENT_LINK_SECRET": "fuzz-document-link-secret-" + "l" * 32,
            "SUPPLIER_GATEWAY_CERTIFICATE_KEY": base64.b64encode(b"c" * 32).decode(),
            "SUPPLIER_GATEWAY_CERTIFICATE_STORE": "local",
            "SUPPLIER_GATEWAY_CERTIFICATES_DIR": str(tmp_path / "certificates"),
        }
    return {}


@dataclass
class Stack:
    """The five services' runtimes and apps, a customer and what belongs to them."""

    runtimes: dict
    apps: dict
    account_id: str = ""
    customer: dict = field(default_factory=dict)  # Authorization header of the customer
    staff: dict = field(default_factory=dict)  # Authorization header of a support member
    order_id: str = ""  # an order of the customer's (orders)
    due_order_id: str = ""  # a payment due for the customer's account (payments)

    def client(self, service: str):
        return self.apps[service].test_client()

    def dispose(self) -> None:
        for runtime in self.runtimes.values():
            runtime.dispose()


def make_stack(settings_factory, tmp_path) -> Stack:
    """The five services, migrated; ``stack.dispose()`` closes their pools."""
    runtimes = {}
    for service in SERVICE_NAMES:
        runtime = Runtime(
            definition_of(service),
            settings_factory(service, extra=service_extra(service, tmp_path)),
        )
        runtime.migrate()
        runtimes[service] = runtime
    stack = Stack(runtimes, {s: rt.create_app() for s, rt in runtimes.items()})
    stack.staff = staff_headers("alice", "admin")
    stack.account_id, stack.customer = customer_account(stack)
    placed = stack.client("orders").post("/v1/orders", json=order_body(), headers=stack.customer)
    assert placed.status_code == 201, placed.get_json()
    stack.order_id = placed.get_json()["id"]
    stack.due_order_id = payment_due(runtimes["payments"], stack.account_id)
    return stack


def customer_account(stack: Stack) -> tuple[str, dict]:
    """A signed-up customer's account id and bearer header (a token for a fresh account id when
    sign-up does not give one at once)."""
    client = stack.client("orders")
    email, password = f"trust.{uuid.uuid4().hex[:10]}@example.org", "a long enough pass phrase"
    client.post("/v1/accounts", json={"email": email, "password": password})
    login = client.post("/v1/auth/token", json={"email": email, "password": password})
    if login.status_code == 200:
        header = {"Authorization": f"Bearer {login.get_json()['access_token']}"}
        me = client.get("/v1/accounts/me", headers=header)
        if me.status_code == 200:
            return me.get_json()["id"], header
    secret = stack.runtimes["orders"].settings.customer_token_secret
    account_id = str(uuid.uuid4())
    token, _ = issue_customer_token(secret, account_id)
    return account_id, {"Authorization": f"Bearer {token}"}


def payment_due(payments, account_id: str) -> str:
    """A transfer payment due for ``account_id`` (order.placed handled as its consumer does)."""
    event = example_event(lookup("order.placed", 1))
    order_id = str(uuid.uuid4())
    event.data = {
        **event.data,
        "order_id": order_id,
        "order_number": f"COC-2026-{uuid.uuid4().int % 10**9:09d}",
        "payment_method": "transfer",
        "total": {"amount_cents": 24900, "currency": "EUR"},
        "account_id": account_id,
        "access_token_sha256": None,
    }
    event.subject = event.correlation_id = order_id
    handle(payments, event)
    return order_id


def assert_answered_safely(response, what: str = "") -> None:
    """A hostile request's answer: no 5xx, no traceback or driver error, the shared JSON error
    shape for a 4xx, never stored by a cache nor sniffed."""
    text = response.get_data(as_text=True)
    assert response.status_code < 500, f"{what}: {response.status_code} {text[:500]}"
    for leak in ("Traceback", "psycopg", "sqlalchemy", 'File "/'):
        assert leak not in text, f"{what}: {leak} in {text[:500]}"
    assert response.headers.get("Cache-Control") == "no-store", what
    assert response.headers.get("X-Content-Type-Options") == "nosniff", what
    if response.status_code >= 400:
        error = (response.get_json(silent=True) or {}).get("error")
        assert error and error["status"] == response.status_code, f"{what}: {text[:300]}"


@contextmanager
def running_services(settings_factory, tmp_path, loops: bool = False):
    """The five services migrated, their queues and outboxes emptied of what earlier tests left,
    and their workers (consumer and relay; their own loops too with ``loops``) running as threads
    on the real broker; yields the runtimes by service name, stops and disposes them after."""
    runtimes = {
        name: Runtime(
            definition_of(name), settings_factory(name, extra=service_extra(name, tmp_path))
        )
        for name in SERVICE_NAMES
    }
    for runtime in runtimes.values():
        runtime.migrate()
        runtime.declare_topology()
        purge_queue(runtime)
        forget_unsent(runtime)  # events earlier tests left in the outboxes are not this test's
    stop = threading.Event()
    threads = [
        thread
        for runtime in runtimes.values()
        for thread in runtime.start_worker_threads(stop, loops=loops)
    ]
    try:
        yield runtimes
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
        for runtime in runtimes.values():
            runtime.dispose()


def email_change(account_id: str, email: str, token: str) -> Event:
    """An account.email_change_requested whose personal part holds the address and the link with
    its token (the sealed part that erasure must make unreadable)."""
    return Event(
        type="account.email_change_requested",
        producer="orders",
        correlation_id=account_id,
        subject=account_id,
        data={
            "account_id": account_id,
            "expires_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        },
        personal={
            "email": email,
            "confirmation_url": f"https://coc.example/v1/accounts/email-confirmation?token={token}",
        },
    )
