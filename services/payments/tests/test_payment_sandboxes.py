"""The payment providers' sandboxes (``coc_payments.sandbox``) against payments' own adapters: the
card page refuses a tampered form and its IPNs pass the production verifier, PayPal's webhooks
pass the production verification with the development certificate prefix only, the business
bank's webhooks pass the production verifier and its camt.053 file reads; and a service in
production mode refuses every sandbox setting."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import requests
from payments_testkit import systempay_signature
from werkzeug.datastructures import Headers
from werkzeug.wrappers import Request, Response

from coc_payments.adapters.bank import parse_camt053, verify_qonto, webhook_credit
from coc_payments.adapters.hosted_page import PaymentRequest, SystempayPage
from coc_payments.adapters.paypal import (
    CertificateStore,
    PayPalClient,
    PayPalWebhooks,
    ProviderError,
    capture_notification,
)
from coc_payments.config import PaymentsConfig
from coc_payments.domain.references import creditor_reference
from coc_payments.sandbox.bank import SystempayBank
from coc_payments.sandbox.business_bank import BusinessBank
from coc_payments.sandbox.paypal import PayPalSandbox
from coc_payments.sandbox.serving import Server
from coc_payments.service import definition, development_defaults
from coc_shared.config import ConfigError, Settings
from coc_shared.service import Runtime
from coc_shared.testing import wait_until

KEY = "sandbox-test-key-" + "k" * 16
SITE = "10000001"


class Recorder:
    """A shop's callback endpoint: records what it receives, answers 200."""

    def __init__(self):
        self.received: list[tuple[Headers, bytes]] = []
        self.lock = threading.Lock()
        self.server = Server(self.app)
        self.url = self.server.url

    @Request.application
    def app(self, request: Request) -> Response:
        with self.lock:
            self.received.append((Headers(request.headers), request.get_data()))
        return Response("{}", 200, content_type="application/json")


@pytest.fixture
def recorder():
    r = Recorder()
    yield r
    r.server.close()


@pytest.fixture
def bank():
    b = SystempayBank(site_id=SITE, keys={"TEST": KEY}).serve()
    yield b
    b.close()


def card_form(bank: SystempayBank, recorder: Recorder, amount: int = 24900) -> dict:
    page = SystempayPage(f"{bank.url}/vads-payment/", SITE, "TEST", {"TEST": KEY})
    return page.payment_form(
        PaymentRequest(
            order_id="o-1",
            order_number="COC-2026-000000042",
            amount_cents=amount,
            currency="EUR",
            transaction_id="000007",
            at=datetime.now(UTC),
            return_url="http://127.0.0.1:8001/orders/o-1/payment",
            notification_url=f"{recorder.url}/v1/callbacks/systempay",
        )
    ).fields


def test_the_card_page_refuses_a_tampered_or_foreign_form(bank, recorder):
    fields = card_form(bank, recorder)
    for tampered in (
        {**fields, "vads_amount": "100"},  # the amount changed after signing
        {**fields, "vads_url_check": "http://127.0.0.1:9/steal"},
        {k: v for k, v in fields.items() if k != "signature"},
        {**fields, "signature": systempay_signature(fields, "another-key")},
        {**fields, "vads_site_id": "99999999"},
    ):
        answer = requests.post(f"{bank.url}/vads-payment/", data=tampered, timeout=5)
        assert answer.status_code == 400 and "Code erreur" in answer.text
    assert bank.payments == {} and recorder.received == []
    page = requests.post(f"{bank.url}/vads-payment/", data=fields, timeout=5)
    assert page.status_code == 200
    assert page.text.count("name='card'") == 3  # accepted, refused, abandoned


@pytest.mark.parametrize(
    "card,kind,status",
    [
        ("accepted", "succeeded", "AUTHORISED"),
        ("refused", "failed", "REFUSED"),
        ("abandoned", "failed", "ABANDONED"),
    ],
)
def test_its_ipn_passes_the_production_verifier(bank, recorder, card, kind, status):
    fields = card_form(bank, recorder)
    page = requests.post(f"{bank.url}/vads-payment/", data=fields, timeout=5)
    (payment_id,) = bank.payments
    paid = requests.post(
        f"{bank.url}/vads-payment/{payment_id}/pay",
        data={"card": card},
        allow_redirects=False,
        timeout=10,
    )
    assert page.status_code == 200
    assert paid.status_code == 302
    assert paid.headers["Location"] == fields["vads_url_return"]
    ((headers, body),) = recorder.received
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    pairs = parse_qsl(body.decode(), keep_blank_values=True)
    ipn = dict(pairs)
    # signed as the platform documents it (computed independently of payments' code) ...
    assert ipn["signature"] == systempay_signature(ipn, KEY)
    # ... and accepted by the production verifier
    notification = SystempayPage("", SITE, "TEST", {"TEST": KEY}).verify_notification(pairs)
    assert notification.report.kind == kind and notification.report.reason == status
    assert notification.order_number == "COC-2026-000000042"
    assert notification.report.amount_cents == 24900 and notification.report.currency == "EUR"
    assert ipn["vads_trans_id"] == "000007" and len(ipn["vads_trans_uuid"]) == 32
    assert {"vads_auth_result", "vads_result", "vads_hash", "vads_url_check_src"} <= set(ipn)
    # a payment is paid once
    again = requests.post(f"{bank.url}/vads-payment/{payment_id}/pay", data={"card": card})
    assert again.status_code == 404 and len(recorder.received) == 1


def test_paypal_sandbox_approval_capture_and_webhooks_pass_the_production_verification(recorder):
    sandbox = PayPalSandbox(
        client_id="sandbox-paypal-client",
        client_secret="sandbox-secret",
        webhook_id="sandbox-WH-1",
        webhook_url=f"{recorder.url}/v1/callbacks/paypal",
    ).serve()
    try:
        with pytest.raises(ProviderError):  # a wrong secret gets no token
            PayPalClient(sandbox.url, "sandbox-paypal-client", "wrong").create_order(
                order_id="o-1",
                order_number="COC-1",
                amount_cents=100,
                currency="EUR",
                return_url="http://127.0.0.1:8001/r",
                cancel_url="http://127.0.0.1:8001/c",
            )
        client = PayPalClient(sandbox.url, "sandbox-paypal-client", "sandbox-secret")
        created = client.create_order(
            order_id="o-2",
            order_number="COC-2026-000000043",
            amount_cents=24900,
            currency="EUR",
            return_url="http://127.0.0.1:8001/orders/o-2/payment",
            cancel_url="http://127.0.0.1:8001/orders/o-2/payment",
        )
        assert created.approval_url == f"{sandbox.url}/checkoutnow?token={created.paypal_order_id}"
        with pytest.raises(ProviderError):  # 422 ORDER_NOT_APPROVED before the buyer approves
            client.capture(created.paypal_order_id)
        assert "Payer maintenant" in requests.get(created.approval_url, timeout=5).text
        approved = requests.post(
            f"{sandbox.url}/checkoutnow/approve",
            data={"token": created.paypal_order_id},
            allow_redirects=False,
            timeout=5,
        )
        assert approved.status_code == 302
        assert approved.headers["Location"].startswith("http://127.0.0.1:8001/orders/o-2/payment?")
        config = PaymentsConfig.from_env(
            {
                "COC_ENVIRONMENT": "development",
                "PAYPAL_CERT_URL_PREFIXES": f"{sandbox.url}/v1/notifications/certs/",
            }
        )
        webhooks = PayPalWebhooks("sandbox-WH-1", CertificateStore(config.cert_url_allowed))
        wait_until(lambda: len(recorder.received) == 1, message="CHECKOUT.ORDER.APPROVED sent")
        doc = webhooks.verify(*recorder.received[0])
        assert doc["event_type"] == "CHECKOUT.ORDER.APPROVED"
        assert doc["resource"]["id"] == created.paypal_order_id
        capture = client.capture(created.paypal_order_id)
        assert capture.status == "COMPLETED"
        wait_until(lambda: len(recorder.received) == 2, message="PAYMENT.CAPTURE.COMPLETED sent")
        notification, paypal_order_id = capture_notification(webhooks.verify(*recorder.received[1]))
        assert paypal_order_id == created.paypal_order_id
        assert notification.order_number == "COC-2026-000000043"
        assert notification.report.kind == "succeeded"
        assert notification.report.provider_transaction_id == capture.capture_id
        assert notification.report.amount_cents == 24900
        # the production configuration takes no certificate from the sandbox
        production = PaymentsConfig.from_env({})
        with pytest.raises(Exception, match="outside PayPal's hosts"):
            PayPalWebhooks("sandbox-WH-1", CertificateStore(production.cert_url_allowed)).verify(
                *recorder.received[1]
            )
    finally:
        sandbox.close()


def test_business_bank_webhook_passes_the_production_verifier_and_writes_camt053(
    recorder, tmp_path
):
    secret = "sandbox-bank-secret-" + "b" * 20
    bank = BusinessBank(
        iban="FR7630006000011234567890189",
        secret=secret,
        webhook_url=f"{recorder.url}/v1/callbacks/bank-transfer",
        statements_dir=str(tmp_path),
    ).serve()
    try:
        reference = creditor_reference("COC-2026-000000044")
        answer = requests.post(
            f"{bank.url}/sandbox/transfers",
            json={"reference": reference, "amount_cents": 24900, "debtor_name": "Garage Martin"},
            timeout=10,
        )
        assert answer.status_code == 201 and answer.json()["webhook_status"] == 200
        ((headers, body),) = recorder.received
        verify_qonto(headers["X-Qonto-Signature"], body, secret, time.time(), 300)
        credit, _ = webhook_credit(body)
        assert credit.amount_cents == 24900 and credit.credit and credit.booked
        assert reference in credit.texts
        with open(answer.json()["statement"], "rb") as f:
            (booked,) = parse_camt053(f.read())
        assert booked.transaction_id == answer.json()["transaction_id"]
        assert booked.amount_cents == 24900 and booked.currency == "EUR"
        assert booked.credit and booked.booked and reference in booked.texts
        day = datetime.now(UTC).date().isoformat()
        served = requests.get(f"{bank.url}/sandbox/statements/{day}.xml", timeout=5)
        assert [c.transaction_id for c in parse_camt053(served.content)] == [booked.transaction_id]
        assert requests.post(f"{bank.url}/sandbox/transfers", json={}, timeout=5).status_code == 400
    finally:
        bank.close()


# --------------------------------------------------------------------------- production mode
def test_production_mode_refuses_every_sandbox_setting(tmp_path):
    sandbox = development_defaults(str(tmp_path))
    assert sandbox["COC_ENVIRONMENT"] == "development"
    assert PaymentsConfig.from_env(sandbox).systempay_form_url.startswith("http://127.0.0.1:")
    with pytest.raises(ConfigError) as refused:
        PaymentsConfig.from_env({**sandbox, "COC_ENVIRONMENT": "production"})
    for name in (
        "SYSTEMPAY_FORM_URL",
        "SYSTEMPAY_API_URL",
        "PAYPAL_API_URL",
        "VIES_API_URL",
        "PAYPAL_CERT_URL_PREFIXES",
        "SYSTEMPAY_TEST_KEY",
        "SYSTEMPAY_REST_KEY",
        "PAYPAL_CLIENT_ID",
        "PAYPAL_CLIENT_SECRET",
        "PAYPAL_WEBHOOK_ID",
        "QONTO_WEBHOOK_SECRET",
    ):
        assert name in str(refused.value)
    assert "sandbox-" + sandbox["QONTO_WEBHOOK_SECRET"][8:] not in str(refused.value)  # no value
    # production is the default, and each sandbox setting alone is refused
    for name, value in (
        ("PAYPAL_API_URL", "http://localhost:8099"),
        ("SYSTEMPAY_FORM_URL", "https://[::1]/vads-payment/"),
        ("PAYPAL_CERT_URL_PREFIXES", "https://api.paypal.com/,http://127.0.0.1:8099/certs/"),
        ("QONTO_WEBHOOK_SECRET", "sandbox-abc"),
    ):
        with pytest.raises(ConfigError, match=name):
            PaymentsConfig.from_env({name: value})
    # the service does not start with them
    with pytest.raises(ConfigError, match="COC_ENVIRONMENT=production"):
        Runtime(
            definition,
            Settings.from_env(
                "payments",
                database_url=f"sqlite:///{tmp_path}/main.db",
                rabbitmq_url="memory://",
                extra={k: v for k, v in sandbox.items() if k != "COC_ENVIRONMENT"},
            ),
        )
    # real providers' values start in production
    real = PaymentsConfig.from_env(
        {
            "SYSTEMPAY_SITE_ID": "12345678",
            "SYSTEMPAY_PRODUCTION_KEY": "a-real-key-" + "x" * 10,
            "PAYPAL_CLIENT_ID": "AZ-real",
            "QONTO_WEBHOOK_SECRET": "real-secret",
        }
    )
    assert real.environment == "production"


def test_the_worker_process_does_not_start_in_production_with_sandbox_settings(tmp_path):
    sandbox = development_defaults(str(tmp_path))
    env = {
        **os.environ,
        **{k: v for k, v in sandbox.items() if k != "COC_ENVIRONMENT"},
        "DATABASE_URL": f"sqlite:///{tmp_path}/main.db",
        "RABBITMQ_URL": "memory://",
        "WORKER_PORT": "0",
    }
    env.pop("COC_ENVIRONMENT", None)
    started = subprocess.run(
        [str(Path(sys.executable).parent / "coc-payments"), "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode != 0
    assert "COC_ENVIRONMENT=production refuses the payment sandboxes' settings" in started.stderr
    assert sandbox["PAYPAL_CLIENT_SECRET"] not in started.stderr + started.stdout
