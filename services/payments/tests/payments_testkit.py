"""Fixtures of the payments tests: the service on this run's PostgreSQL and RabbitMQ (or on SQLite
files, for the tests that run a use case on both dialects), a fake orders service (the producer of
the events payments consumes), the providers' sandboxes (``coc_payments.sandbox``: PayPal's REST
API signing webhooks with a certificate made here, the card bank's REST refunds, the business
bank's signed webhooks), and signed notifications as Systempay sends them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import threading
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import urlencode

import kombu
import pytest
from sqlalchemy import MetaData, func, select

from coc_payments.adapters import tables
from coc_payments.sandbox.bank import SystempayBank
from coc_payments.sandbox.business_bank import signed_headers, transfer_webhook_body
from coc_payments.sandbox.paypal import PayPalSandbox
from coc_payments.service import definition
from coc_shared.catalogue import example_event, lookup
from coc_shared.config import Settings
from coc_shared.db import ensure_schema
from coc_shared.service import Runtime, ServiceDefinition
from coc_shared.tables import create_outbox_notify_trigger
from coc_shared.testing import (
    STAFF_KEYS,
    admin_broker_url,
    handle,
    opened,
    staff_headers,
    wait_until,
)
from coc_shared.tokens import new_order_access_token

SYSTEMPAY_TEST_KEY = "test-key-" + "k" * 16
SYSTEMPAY_PRODUCTION_KEY = "prod-key-" + "p" * 16
SITE_ID = "12345678"
QONTO_SECRET = "qonto-secret-" + "q" * 20
CUSTOMER_SECRET = "customer-secret-" + "c" * 32
WEBHOOK_ID = "WH-TEST-0001"
IBAN = "FR7630006000011234567890189"
BIC = "AGRIFRPP"
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


# --------------------------------------------------------------------------- the providers
@pytest.fixture(scope="session")
def fake_systempay_api():
    """The card bank's sandbox, for its REST refunds API (shop SITE_ID, SYSTEMPAY_REST_KEY)."""
    server = SystempayBank(
        site_id=SITE_ID,
        keys={"TEST": SYSTEMPAY_TEST_KEY, "PRODUCTION": SYSTEMPAY_PRODUCTION_KEY},
        rest_key=SYSTEMPAY_REST_KEY,
    ).serve()
    yield server
    server.close()


@pytest.fixture(scope="session")
def fake_paypal():
    """PayPal's sandbox; it sends no webhook of its own (the tests send them, signed by it) and
    captures an order the tests approved by webhook only."""
    server = PayPalSandbox(
        client_id="client-id",
        client_secret="client-secret",
        webhook_id=WEBHOOK_ID,
        require_approval=False,
    ).serve()
    yield server
    server.close()


INVOICE_KEY = base64.b64encode(b"k" * 32).decode()
SYSTEMPAY_REST_KEY = "testpassword_" + "r" * 20
BILLING = {
    "SELLER_NAME": "COC Services SAS",
    "SELLER_STREET": "10 rue de la Paix",
    "SELLER_POSTAL_CODE": "75002",
    "SELLER_CITY": "Paris",
    "SELLER_SIREN": "732829320",
    "SELLER_VAT_NUMBER": "FR44732829320",
    "SELLER_LEGAL_MENTIONS": "SAS au capital de 10 000 € - RCS Paris 732 829 320",
    "INVOICE_KEY": INVOICE_KEY,
    "SYSTEMPAY_REST_KEY": SYSTEMPAY_REST_KEY,
}


def payments_extra(paypal_url: str, systempay_api_url: str | None = None) -> dict:
    return {
        **BILLING,
        **({"SYSTEMPAY_API_URL": systempay_api_url} if systempay_api_url else {}),
        "SYSTEMPAY_SITE_ID": SITE_ID,
        "SYSTEMPAY_MODE": "TEST",
        "SYSTEMPAY_TEST_KEY": SYSTEMPAY_TEST_KEY,
        "SYSTEMPAY_PRODUCTION_KEY": SYSTEMPAY_PRODUCTION_KEY,
        "SYSTEMPAY_FORM_URL": "https://bank.test/vads-payment/",
        "PAYMENTS_PUBLIC_URL": "https://payments.test",
        "PAYPAL_API_URL": paypal_url,
        "PAYPAL_CLIENT_ID": "client-id",
        "PAYPAL_CLIENT_SECRET": "client-secret",
        "PAYPAL_WEBHOOK_ID": WEBHOOK_ID,
        "PAYPAL_CERT_URL_PREFIXES": f"{paypal_url}/v1/notifications/certs/",
        "TRANSFER_IBAN": IBAN,
        "TRANSFER_BIC": BIC,
        "TRANSFER_BENEFICIARY": "COC SAS",
        "QONTO_WEBHOOK_SECRET": QONTO_SECRET,
        # the providers are local sandboxes (production refuses their 127.0.0.1 addresses)
        "COC_ENVIRONMENT": "development",
        # test_payments_rate_limits sets its own; the other tests check out as often as they like
        "PAYMENTS_RATE_LIMIT_CHECKOUT": "100000/minute",
    }


@pytest.fixture
def runtime(runtime_factory, fake_paypal, fake_systempay_api):
    return runtime_factory(
        definition,
        customer_token_secret=CUSTOMER_SECRET,
        extra=payments_extra(fake_paypal.url, fake_systempay_api.url),
    )


def sqlite_runtime(tmp_path, paypal_url: str) -> Runtime:
    """The payments service on SQLite files (the embedded mode's database), migrated."""
    url = f"sqlite:///{tmp_path}/main.db"
    rt = Runtime(
        definition,
        Settings.from_env(
            "payments",
            database_url=url,
            parking_database_url=url,
            rabbitmq_url="memory://",
            staff_token_public_key=STAFF_KEYS[1],
            customer_token_secret=CUSTOMER_SECRET,
            extra=payments_extra(paypal_url),
        ),
    )
    rt.migrate()
    return rt


@pytest.fixture(params=["postgresql", "sqlite"])
def any_runtime(request, tmp_path, fake_paypal):
    """The service on each dialect: this run's PostgreSQL, then SQLite files."""
    if request.param == "postgresql":
        yield request.getfixturevalue("runtime")
        return
    rt = sqlite_runtime(tmp_path, fake_paypal.url)
    yield rt
    rt.dispose()


@pytest.fixture
def client(runtime):
    return runtime.create_app().test_client()


@pytest.fixture
def staff_auth(runtime):
    return staff_headers("alice", "support")


# --------------------------------------------------------------------------- signed notifications
def systempay_signature(fields: dict, key: str) -> str:
    """Computed here from the platform's documentation, independently of the service's code."""
    data = "+".join(str(v) for k, v in sorted(fields.items()) if k.startswith("vads_")) + "+" + key
    return base64.b64encode(hmac.new(key.encode(), data.encode(), hashlib.sha256).digest()).decode()


def systempay_ipn(
    order_number: str,
    amount_cents: int,
    status: str = "AUTHORISED",
    trans_uuid: str | None = None,
    mode: str = "TEST",
    key: str | None = None,
    **extra,
) -> dict:
    fields = {
        "vads_amount": str(amount_cents),
        "vads_auth_result": "00" if status == "AUTHORISED" else "05",
        "vads_card_brand": "CB",
        "vads_card_number": "497010XXXXXX0055",
        "vads_ctx_mode": mode,
        "vads_currency": "978",
        "vads_effective_amount": str(amount_cents),
        "vads_order_id": order_number,
        "vads_page_action": "PAYMENT",
        "vads_payment_config": "SINGLE",
        "vads_site_id": SITE_ID,
        "vads_trans_date": datetime.now(UTC).strftime("%Y%m%d%H%M%S"),
        "vads_trans_id": "000042",
        "vads_trans_status": status,
        "vads_trans_uuid": trans_uuid or uuid.uuid4().hex,
        "vads_url_check_src": "PAY",
        "vads_version": "V2",
        "vads_cust_email": "",
        "vads_extra_result": "",
        "vads_hash": hashlib.sha256(b"x").hexdigest(),
    }
    fields.update(extra)
    fields["signature"] = systempay_signature(
        fields, key or (SYSTEMPAY_TEST_KEY if mode == "TEST" else SYSTEMPAY_PRODUCTION_KEY)
    )
    return fields


def form_body(fields: dict) -> bytes:
    return urlencode(fields).encode()


def qonto_body(reference_text: str, amount_cents: int, **kw) -> bytes:
    return transfer_webhook_body(reference_text, amount_cents, **kw)


def qonto_headers(body: bytes, t: int | None = None, secret: str = QONTO_SECRET) -> dict:
    return signed_headers(body, secret, t)


# --------------------------------------------------------------------------- orders, events
BUYERS = {
    "private": {
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
    },
    "business_fr": {
        "first_name": "Paul",
        "last_name": "Martin",
        "email": "paul@garage-martin.example",
        "phone": "+33612345679",
        "shipping_address": {
            "line1": "3 avenue Foch",
            "postal_code": "69006",
            "city": "Lyon",
            "country": "FR",
        },
        "billing_address": {
            "line1": "12 rue de la République",
            "postal_code": "69002",
            "city": "Lyon",
            "country": "FR",
        },
        "company": {
            "name": "Garage Martin SARL",
            "siren": "542065479",
            "vat_number": "FR82542065479",
        },
    },
    "business_de": {
        "first_name": "Jürgen",
        "last_name": "Weiß",
        "email": "juergen@autohaus.example",
        "phone": "+4930123456",
        "shipping_address": {
            "line1": "Hauptstraße 5",
            "postal_code": "10115",
            "city": "Berlin",
            "country": "DE",
        },
        "company": {"name": "Autohaus Weiß GmbH", "vat_number": "DE136695976"},
    },
}


def order_placed(
    method: str = "card",
    amount_cents: int = 24900,
    account_id: str | None = None,
    buyer: str = "private",
    vat_regime: str | None = None,
):
    """A fresh order.placed event (new ids and number) and the guest order's access token;
    ``buyer`` names one of ``BUYERS``, ``vat_regime`` the regime orders decided (if any)."""
    event = example_event(lookup("order.placed", 1))
    event.personal = dict(BUYERS[buyer])
    token, token_hash = new_order_access_token()
    order_id = str(uuid.uuid4())
    event.data = {
        **event.data,
        "order_id": order_id,
        "order_number": f"COC-2026-{uuid.uuid4().int % 10**9:09d}",
        "payment_method": method,
        "total": {"amount_cents": amount_cents, "currency": "EUR"},
        "account_id": account_id,
        "access_token_sha256": None if account_id else token_hash,
    }
    # the example's VAT is that of its own total: let payments work it out from this one's
    event.data.pop("vat", None)
    if vat_regime:
        event.data["vat_regime"] = vat_regime
        if vat_regime == "reverse_charge":
            event.data["vat_rate"] = "0"
    event.subject = order_id
    event.correlation_id = order_id
    return event, token


def record_order(runtime: Runtime, event) -> None:
    """Handle order.placed as the consumer would (no broker)."""
    handle(runtime, event)


def count(runtime: Runtime, table, **where) -> int:
    with runtime.engine.connect() as conn:
        q = select(func.count()).select_from(table)
        for k, v in where.items():
            q = q.where(table.c[k] == v)
        return conn.execute(q).scalar_one()


def outbox_events(runtime: Runtime, event_type: str, order_id: str) -> list[dict]:
    with runtime.engine.connect() as conn:
        rows = (
            conn.execute(
                select(runtime.outbox.c.body)
                .where(
                    runtime.outbox.c.event_type == event_type, runtime.outbox.c.subject == order_id
                )
                .order_by(runtime.outbox.c.seq)  # in the order they were written
            )
            .scalars()
            .all()
        )
    return [opened(runtime, b) for b in rows]  # the personal part opened, as a consumer sees it


def review_reasons(runtime: Runtime, order_id: str | None = None) -> list[str]:
    with runtime.engine.connect() as conn:
        q = select(tables.review_items.c.reason).order_by(tables.review_items.c.id)
        if order_id:
            q = q.where(tables.review_items.c.order_id == order_id)
        return list(conn.execute(q).scalars())


class Observer:
    """A queue of the test's own bound to payment.*, invoice.issued and refund.* on the run's
    exchange; collects what arrives."""

    def __init__(self, runtime: Runtime):
        self.broker = runtime.broker
        self.events: list[dict] = []
        self._stop = threading.Event()
        self._ready = threading.Event()
        self.name = f"{runtime.settings.bus_prefix}test.payments.observer.{uuid.uuid4().hex[:8]}"
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self._ready.wait(10), "observer queue not declared"

    def _run(self):
        exchange = self.broker.exchange()
        bindings = [
            kombu.binding(exchange, routing_key=k)
            for k in (
                "payment.confirmed",
                "payment.failed",
                "payment.duplicate_detected",
                "payment.refunded",
                "invoice.issued",
                "refund.requested",
                "refund.completed",
                "refund.failed",
            )
        ]
        q = kombu.Queue(self.name, bindings=bindings, auto_delete=True, exclusive=True)
        with kombu.Connection(admin_broker_url()) as conn:  # the test's own queue
            with conn.Consumer(
                [q], callbacks=[self._on_message], accept=["json", "application/json"]
            ) as _:
                self._ready.set()
                while not self._stop.is_set():
                    try:
                        conn.drain_events(timeout=0.2)
                    except TimeoutError:
                        pass
                    except Exception:
                        pass

    def _on_message(self, body, message):
        raw = message.body if isinstance(message.body, (bytes, str)) else json.dumps(body)
        doc = json.loads(raw)
        doc["_received"] = time.monotonic()
        self.events.append(doc)
        message.ack()

    def of(self, event_type: str, order_id: str | None = None) -> list[dict]:
        return [
            e
            for e in self.events
            if e["type"] == event_type
            and (order_id is None or e["data"].get("order_id") == order_id)
        ]

    def wait(self, event_type: str, order_id: str, n: int = 1, timeout: float = 20) -> list[dict]:
        return wait_until(
            lambda: (lambda found: found if len(found) >= n else None)(
                self.of(event_type, order_id)
            ),
            timeout=timeout,
            message=f"{n} x {event_type} for {order_id}",
        )

    def close(self):
        self._stop.set()
        self.thread.join(timeout=5)


class _FakeOrdersDefinition(ServiceDefinition):
    """The orders service as payments sees it: a producer named "orders" with an outbox and a
    relay, in a schema of its own (so that it never meets the real orders service's migrations
    in a run's database) and without any of its code."""

    @property
    def schema(self) -> str:
        return "payments_test_orders"


FAKE_ORDERS = _FakeOrdersDefinition(name="orders", metadata=MetaData(), migrations="")


@pytest.fixture
def fake_orders(settings_factory):
    """``fake_orders(payments_runtime)``: the consumer and relay of ``payments_runtime`` and the
    relay of a fake orders service, as threads on the real broker (payments' queue is bound before
    anything is published); returns the fake orders runtime. The threads stop at the end."""
    stop = threading.Event()
    threads: list[threading.Thread] = []
    made: list[Runtime] = []

    def start(payments: Runtime) -> Runtime:
        orders = Runtime(FAKE_ORDERS, settings_factory("orders", outbox_poll_seconds=0.2))
        made.append(orders)
        ensure_schema(orders.engine, FAKE_ORDERS.schema)
        FAKE_ORDERS.metadata.create_all(orders.engine)
        with orders.engine.begin() as conn:
            create_outbox_notify_trigger(conn, FAKE_ORDERS.schema)
        payments.declare_topology()
        threads.extend(
            payments.start_worker_threads(stop) + orders.start_worker_threads(stop, consume=False)
        )
        return orders

    yield start
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    for rt in made:
        rt.dispose()


@pytest.fixture
def pipeline(runtime, fake_orders):
    """The payments consumer and relay as threads on the real broker, the fake orders' relay (the
    producer of order.placed), and an observer of payment.* events."""
    orders = fake_orders(runtime)
    observer = Observer(runtime)
    yield Pipeline(runtime, orders, observer)
    observer.close()


class Pipeline:
    def __init__(self, payments: Runtime, orders: Runtime, observer: Observer):
        self.payments = payments
        self.orders = orders
        self.observer = observer

    def place(self, method: str = "card", amount_cents: int = 24900, account_id: str | None = None):
        """Publish order.placed through the orders runtime's outbox; wait until payments recorded
        it."""
        event, token = order_placed(method, amount_cents, account_id)
        with self.orders.unit_of_work(correlation_id=event.correlation_id) as uow:
            uow.emit(event.type, event.data, subject=event.subject, personal=event.personal)
            uow.commit()
        wait_until(
            lambda: count(self.payments, tables.payments_due, order_id=event.data["order_id"]) == 1,
            message="payment due recorded from order.placed",
        )
        return event.data, token

    def cancel(self, order_id: str, cancelled_by: str = "customer"):
        """Publish order.cancelled through the orders runtime's outbox; wait until payments handled
        it."""
        with self.orders.unit_of_work(correlation_id=order_id) as uow:
            event = uow.emit(
                "order.cancelled",
                {"order_id": order_id, "reason": "changed my mind", "cancelled_by": cancelled_by},
                subject=order_id,
            )
            uow.commit()
        wait_until(
            lambda: count(self.payments, self.payments.inbox, event_id=event.id) == 1,
            message="order.cancelled handled",
        )
        return event


# --------------------------------------------------------------------------- billing helpers
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def issue_from_outbox(runtime: Runtime, order_id: str) -> None:
    """Handle the order's payment.confirmed from payments' outbox, as its consumer does (the
    invoice numbered), then issue what is numbered, as the worker's ``invoices`` loop does (the
    PDFs rendered in this thread)."""
    from coc_payments.service_layer.invoicing import issue_pending
    from coc_shared.envelope import Event

    (confirmed,) = outbox_events(runtime, "payment.confirmed", order_id)
    handle(runtime, Event.from_json(json.dumps(confirmed)))
    while issue_pending(runtime):
        pass


def numbered_rows(runtime: Runtime) -> list:
    """Invoices numbered and not issued yet, in number order."""
    t = tables.invoices_to_issue
    with runtime.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(t).order_by(t.c.seq))]


def paid(
    runtime: Runtime,
    client,
    method: str = "card",
    amount_cents: int = 24900,
    buyer: str = "private",
    vat_regime: str | None = None,
    fake_paypal=None,
    issue: bool = True,
):
    """An order placed, paid through its provider's real notification (card: a Systempay IPN;
    transfer: the bank's webhook; PayPal: a capture completed at the local PayPal), and its invoice
    issued from the payment.confirmed in the outbox. Returns (order.placed data with the guest's
    ``access_token``, the provider's transaction id)."""
    event, token = order_placed(method, amount_cents, buyer=buyer, vat_regime=vat_regime)
    record_order(runtime, event)
    data = dict(event.data, access_token=token)
    if method == "card":
        trans_uuid = uuid.uuid4().hex
        answer = client.post(
            "/v1/callbacks/systempay",
            data=form_body(
                systempay_ipn(data["order_number"], amount_cents, trans_uuid=trans_uuid)
            ),
            headers=FORM,
        )
        transaction = trans_uuid
    elif method == "transfer":
        from coc_payments.domain.references import creditor_reference

        transaction = f"tx-{uuid.uuid4().hex}"
        body = qonto_body(
            creditor_reference(data["order_number"]), amount_cents, transaction_id=transaction
        )
        answer = client.post("/v1/callbacks/bank-transfer", data=body, headers=qonto_headers(body))
    else:
        checkout = client.post(
            f"/v1/payments/{data['order_id']}/checkout", headers={"X-Order-Token": token}
        ).get_json()
        paypal_id = checkout["paypal_order_id"]
        body, headers = fake_paypal.webhook("CHECKOUT.ORDER.APPROVED", {"id": paypal_id})
        assert client.post("/v1/callbacks/paypal", data=body, headers=headers).status_code == 200
        body, headers = fake_paypal.capture_completed(paypal_id)
        answer = client.post("/v1/callbacks/paypal", data=body, headers=headers)
        transaction = fake_paypal.capture_of(paypal_id)["id"]
    assert answer.status_code == 200, answer.get_data(as_text=True)
    if issue:
        issue_from_outbox(runtime, data["order_id"])
    return data, transaction


def billing_rows(runtime: Runtime, kind: str = "invoice", order_id: str | None = None) -> list:
    t = tables.billing_documents
    with runtime.engine.connect() as conn:
        q = select(t).where(t.c.kind == kind).order_by(t.c.seq)
        if order_id:
            q = q.where(t.c.order_id == order_id)
        return [dict(r._mapping) for r in conn.execute(q)]


def document(runtime: Runtime, number: str):
    """(data, PDF) of a stored document, decrypted."""
    from coc_payments.service_layer.invoicing import open_document

    t = tables.billing_documents
    with runtime.engine.connect() as conn:
        row = dict(conn.execute(select(t).where(t.c.number == number)).one()._mapping)
    stored = open_document(row, base64.b64decode(INVOICE_KEY))
    return stored.data, stored.pdf


def pdf_text(pdf: bytes) -> str:
    import io

    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
