"""PayPal: the Orders v2 REST client (OAuth2 client credentials) and webhook verification.

Webhooks are verified as PayPal specifies, locally: the signed string is
``transmission_id|transmission_time|webhook_id|crc32(raw body)`` (CRC as an unsigned decimal),
the signature (``PAYPAL-TRANSMISSION-SIG``, base64) is RSA PKCS#1 v1.5 / SHA-256 by the key of the
certificate at ``PAYPAL-CERT-URL``, which is fetched only from PayPal's own hosts and cached.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from coc_shared import guards

from ..domain.payments import PaymentReport
from .hosted_page import BadSignature, Notification


class ProviderError(Exception):
    """The provider could not be reached or refused the call (retry later)."""


def to_cents(value: str) -> int | None:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, TypeError):
        return None
    cents = amount * 100
    return int(cents) if cents == cents.to_integral_value() else None


def from_cents(cents: int) -> str:
    return f"{Decimal(cents) / 100:.2f}"


@dataclass(frozen=True)
class CreatedOrder:
    paypal_order_id: str
    status: str
    approval_url: str | None


@dataclass(frozen=True)
class Capture:
    capture_id: str | None
    status: str


class PayPalClient:
    def __init__(
        self,
        base_url: str,
        client_id: str,
        secret: str,
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self.secret = secret
        self.timeout = timeout
        self.session = session or requests.Session()
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    def _access_token(self) -> str:
        with self._lock:
            if self._token and self._token[1] > time.monotonic() + 30:
                return self._token[0]
            try:
                r = self.session.post(
                    f"{self.base_url}/v1/oauth2/token",
                    data={"grant_type": "client_credentials"},
                    auth=(self.client_id, self.secret),
                    headers={"Accept": "application/json"},
                    timeout=self.timeout,
                )
            except requests.RequestException as exc:
                raise ProviderError(f"PayPal token: {type(exc).__name__}") from exc
            if r.status_code != 200:
                raise ProviderError(f"PayPal token: HTTP {r.status_code}")
            doc = r.json()
            self._token = (
                doc["access_token"],
                time.monotonic() + float(doc.get("expires_in", 300)),
            )
            return self._token[0]

    def _post(self, path: str, body: dict | None, request_id: str) -> dict:
        for attempt in (1, 2):
            token = self._access_token()
            try:
                r = self.session.post(
                    f"{self.base_url}{path}",
                    json=body if body is not None else {},
                    headers={
                        "Authorization": f"Bearer {token}",
                        "PayPal-Request-Id": request_id,
                        "Prefer": "return=representation",
                        "Content-Type": "application/json",
                    },
                    timeout=self.timeout,
                )
            except requests.RequestException as exc:
                raise ProviderError(f"PayPal {path}: {type(exc).__name__}") from exc
            if r.status_code == 401 and attempt == 1:
                self._token = None  # expired early: one new token
                continue
            if r.status_code == 422:
                doc = r.json() if r.content else {}
                details = [d.get("issue") for d in doc.get("details", [])]
                if "ORDER_ALREADY_CAPTURED" in details:
                    return {"status": "COMPLETED", "already_captured": True}
            if r.status_code not in (200, 201):
                raise ProviderError(f"PayPal {path}: HTTP {r.status_code}")
            return r.json()
        raise ProviderError(f"PayPal {path}: unauthorised")

    def create_order(
        self,
        *,
        order_id: str,
        order_number: str,
        amount_cents: int,
        currency: str,
        return_url: str,
        cancel_url: str,
    ) -> CreatedOrder:
        body = {
            "intent": "CAPTURE",
            "purchase_units": [
                {
                    "reference_id": order_id,
                    "custom_id": order_number,
                    "invoice_id": order_number,
                    "amount": {"currency_code": currency, "value": from_cents(amount_cents)},
                }
            ],
            "payment_source": {
                "paypal": {
                    "experience_context": {
                        "return_url": return_url,
                        "cancel_url": cancel_url,
                        "shipping_preference": "NO_SHIPPING",
                        "user_action": "PAY_NOW",
                    }
                }
            },
        }
        # One request id per order: a retried call (or a second checkout) cannot create two orders.
        doc = self._post("/v2/checkout/orders", body, request_id=f"coc-order-{order_id}")
        link = next(
            (
                entry["href"]
                for entry in doc.get("links", [])
                if entry.get("rel") in ("payer-action", "approve")
            ),
            None,
        )
        return CreatedOrder(
            paypal_order_id=doc["id"], status=doc.get("status", ""), approval_url=link
        )

    def capture(self, paypal_order_id: str) -> Capture:
        doc = self._post(
            f"/v2/checkout/orders/{paypal_order_id}/capture",
            None,
            request_id=f"coc-capture-{paypal_order_id}",
        )
        captures = [
            c
            for pu in doc.get("purchase_units", [])
            for c in pu.get("payments", {}).get("captures", [])
        ]
        first = captures[0] if captures else {}
        return Capture(
            capture_id=first.get("id"), status=first.get("status") or doc.get("status", "")
        )

    def refund(self, capture_id: str, amount_cents: int, currency: str, refund_id: str) -> dict:
        """Refund (part of) a capture; one PayPal-Request-Id per refund: a retried call refunds
        once."""
        return self._post(
            f"/v2/payments/captures/{capture_id}/refund",
            {"amount": {"value": from_cents(amount_cents), "currency_code": currency}},
            request_id=f"coc-refund-{refund_id}",
        )


class CertificateStore:
    """PayPal's signing certificates, fetched only from allowed URLs, cached by URL."""

    def __init__(self, allowed, timeout: float = 10.0, session: requests.Session | None = None):
        self.allowed = allowed  # callable(url) -> bool
        self.timeout = timeout
        self.session = session or requests.Session()
        self._cache: dict[str, x509.Certificate] = {}
        self._lock = threading.Lock()
        self.fetches = 0

    def get(self, url: str) -> x509.Certificate:
        if not url or not self.allowed(url):
            raise BadSignature("certificate URL outside PayPal's hosts")
        with self._lock:
            cert = self._cache.get(url)
        if cert is None:
            try:
                r = self.session.get(url, timeout=self.timeout, allow_redirects=False)
            except requests.RequestException as exc:
                raise ProviderError(f"certificate download: {type(exc).__name__}") from exc
            if r.status_code != 200:
                raise ProviderError(f"certificate download: HTTP {r.status_code}")
            self.fetches += 1
            try:
                cert = x509.load_pem_x509_certificate(r.content)
            except ValueError as exc:
                raise BadSignature("the certificate cannot be read") from exc
            with self._lock:
                self._cache[url] = cert
        now = datetime.now(UTC)
        if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
            raise BadSignature("the certificate is not valid now")
        return cert


def signed_string(
    transmission_id: str, transmission_time: str, webhook_id: str, body: bytes
) -> str:
    return f"{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(body) & 0xFFFFFFFF}"


class PayPalWebhooks:
    provider = "paypal"

    def __init__(self, webhook_id: str | None, certificates: CertificateStore):
        self.webhook_id = webhook_id
        self.certificates = certificates

    def verify(self, headers, body: bytes) -> dict:
        """Checks the signature of a webhook; returns its parsed body."""
        if not self.webhook_id:
            raise BadSignature("PAYPAL_WEBHOOK_ID is not configured")
        tid = headers.get("PAYPAL-TRANSMISSION-ID")
        ttime = headers.get("PAYPAL-TRANSMISSION-TIME")
        sig = headers.get("PAYPAL-TRANSMISSION-SIG")
        cert_url = headers.get("PAYPAL-CERT-URL")
        algo = headers.get("PAYPAL-AUTH-ALGO") or "SHA256withRSA"
        if not (tid and ttime and sig and cert_url):
            raise BadSignature("PayPal transmission headers missing")
        if algo != "SHA256withRSA":
            raise BadSignature(f"unsupported algorithm {algo}")
        cert = self.certificates.get(cert_url)
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise BadSignature("not an RSA certificate")
        try:
            signature = base64.b64decode(sig, validate=True)
        except (binascii.Error, ValueError):
            raise BadSignature("signature is not base64") from None
        try:
            key.verify(
                signature,
                signed_string(tid, ttime, self.webhook_id, body).encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            raise BadSignature("signature mismatch") from None
        try:
            doc = guards.loads(body)  # within the JSON limits, no NUL or lone surrogate
        except ValueError:
            raise BadSignature("signed body is not JSON") from None
        if not isinstance(doc, dict) or not doc.get("id") or not doc.get("event_type"):
            raise BadSignature("not a webhook event")
        return doc


CAPTURE_KINDS = {
    "PAYMENT.CAPTURE.COMPLETED": "succeeded",
    "PAYMENT.CAPTURE.DENIED": "failed",
    "PAYMENT.CAPTURE.DECLINED": "failed",
    "PAYMENT.CAPTURE.PENDING": "pending",
    "PAYMENT.CAPTURE.REFUNDED": "refunded",
    "PAYMENT.CAPTURE.REVERSED": "reversed",
}


def capture_notification(doc: dict) -> tuple[Notification, str | None]:
    """A PAYMENT.CAPTURE.* webhook as a report; returns it and PayPal's order id when given."""
    resource = doc.get("resource") or {}
    event_type = doc["event_type"]
    amount = resource.get("amount") or {}
    related = (resource.get("supplementary_data") or {}).get("related_ids") or {}
    capture_id = resource.get("id") or doc["id"]
    if event_type == "PAYMENT.CAPTURE.REFUNDED":
        # The resource is the refund; the capture it refunds is its "up" link.
        up = next(
            (
                entry.get("href", "")
                for entry in resource.get("links", [])
                if entry.get("rel") == "up"
            ),
            "",
        )
        capture_id = up.rstrip("/").rsplit("/", 1)[-1] if up else capture_id
    report = PaymentReport(
        provider="paypal",
        method="paypal",
        kind=CAPTURE_KINDS[event_type],
        provider_transaction_id=capture_id,
        amount_cents=to_cents(amount.get("value")),
        currency=amount.get("currency_code"),
        reason=resource.get("status") or event_type,
    )
    return (
        Notification(
            order_number=resource.get("custom_id") or resource.get("invoice_id"),
            report=report,
            dedupe_key=doc["id"],
            details={"event_type": event_type},
        ),
        related.get("order_id"),
    )
