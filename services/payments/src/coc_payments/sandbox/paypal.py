"""PayPal as far as payments uses it: the REST API (OAuth2 client credentials, Orders v2 create and
capture, capture refunds), the buyer's approval page, and webhooks signed as PayPal signs them.

- ``POST /v1/oauth2/token`` (Basic auth: client id and secret, ``grant_type=client_credentials``);
- ``POST /v2/checkout/orders``, ``POST /v2/checkout/orders/{id}/capture`` and
  ``POST /v2/payments/captures/{id}/refund`` with the bearer token, idempotent per
  ``PayPal-Request-Id``; a capture before the buyer's approval is ``422 ORDER_NOT_APPROVED`` (as
  PayPal answers) unless ``require_approval`` is off (tests that send the approval webhook
  themselves);
- ``GET /checkoutnow?token={id}`` (the order's ``payer-action`` link): the buyer's page; approving
  it (``POST /checkoutnow/approve``) sends ``CHECKOUT.ORDER.APPROVED`` and redirects to the order's
  ``return_url``, cancelling redirects to its ``cancel_url``;
- webhooks (``CHECKOUT.ORDER.APPROVED``, then ``PAYMENT.CAPTURE.COMPLETED`` after a capture) are
  POSTed to ``webhook_url`` by a thread of their own, retried like PayPal retries, and signed as
  PayPal signs: ``transmission_id|transmission_time|webhook_id|crc32(body)``, SHA256withRSA, with a
  key made once and kept in a file, whose self-signed certificate is served at
  ``/v1/notifications/certs/CERT-sandbox``. Only a development configuration allows that URL
  (``PAYPAL_CERT_URL_PREFIXES``).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import queue
import secrets
import sys
import threading
import uuid
import zlib
from datetime import UTC, datetime, timedelta

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from werkzeug.wrappers import Request, Response

from .serving import Server, read_secret, serve_until_stopped

CERT_PATH = "/v1/notifications/certs/CERT-sandbox"
# PayPal retries a webhook that is not answered 2xx; the sandbox a few times, quickly.
WEBHOOK_RETRY_SECONDS = (0.5, 1, 2, 5, 10)


def signing_key(path: str | None) -> rsa.RSAPrivateKey:
    """The webhooks' RSA key: read from ``path``, made there (mode 600) when it does not exist yet;
    a fresh one without a path."""
    if path and os.path.exists(path):
        with open(path, "rb") as f:
            return serialization.load_pem_private_key(f.read(), password=None)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
    return key


def self_signed_certificate(key: rsa.RSAPrivateKey) -> bytes:
    """A certificate (PEM) of ``key`` valid from yesterday for 30 days, named as PayPal's is."""
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "messageverificationcerts.paypal.com")]
    )
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    ).public_bytes(serialization.Encoding.PEM)


class PayPalSandbox:
    def __init__(
        self,
        client_id: str = "client-id",
        client_secret: str = "client-secret",
        webhook_id: str = "WH-SANDBOX",
        webhook_url: str | None = None,
        key: rsa.RSAPrivateKey | None = None,
        require_approval: bool = True,
    ):
        self.key = key or signing_key(None)
        self.cert_pem = self_signed_certificate(self.key)
        self.client_id, self.secret = client_id, client_secret
        self.webhook_id = webhook_id
        self.webhook_url = webhook_url
        self.require_approval = require_approval
        self.tokens: set[str] = set()
        self.orders: dict[str, dict] = {}
        self.by_request_id: dict[str, dict] = {}
        self.calls: list[tuple[str, str]] = []
        self.cert_downloads = 0
        self.fail_capture = False  # tests: captures answer 500
        self.fail_certificates = False  # tests: the certificate download answers 503
        self.refunds_by_request_id: dict[str, dict] = {}
        self.refunded: dict[str, int] = {}
        self.extra_captures: dict[str, dict] = {}  # captures made without a checkout (tests)
        self.deliveries: list[tuple[str, int | None]] = []  # (event type, our answer's status)
        self.lock = threading.Lock()
        self.url = ""
        self._server: Server | None = None
        self._outgoing: queue.Queue = queue.Queue()
        self._closed = threading.Event()

    @property
    def cert_url(self) -> str:
        return f"{self.url}{CERT_PATH}"

    # ------------------------------------------------------------------ serving
    def serve(self, port: int = 0) -> PayPalSandbox:
        self._server = Server(self.app, port)
        self.url = self._server.url
        if self.webhook_url:
            threading.Thread(target=self._deliver_webhooks, daemon=True).start()
        return self

    def close(self) -> None:
        self._closed.set()
        self._outgoing.put(None)
        if self._server is not None:
            self._server.close()

    @Request.application
    def app(self, request: Request) -> Response:
        self.calls.append((request.method, request.path))
        if request.path == "/v1/oauth2/token":
            return self._token(request)
        if request.path.startswith("/v1/notifications/certs/"):
            if self.fail_certificates:
                return self._json({"name": "SERVICE_UNAVAILABLE"}, 503)
            self.cert_downloads += 1
            return Response(self.cert_pem, 200, content_type="application/x-pem-file")
        if request.path == "/checkoutnow" and request.method == "GET":
            return self._approval_page(request.args.get("token", ""))
        if request.path in ("/checkoutnow/approve", "/checkoutnow/cancel"):
            return self._buyer_decision(request)
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[len("Bearer ") :] not in self.tokens:
            return self._json({"name": "AUTHENTICATION_FAILURE"}, 401)
        request_id = request.headers.get("PayPal-Request-Id")
        if request.path == "/v2/checkout/orders" and request.method == "POST":
            return self._create_order(request, request_id)
        if request.path.endswith("/capture") and request.method == "POST":
            return self._capture(request, request_id)
        if request.path.startswith("/v2/payments/captures/") and request.path.endswith("/refund"):
            return self._refund(request, request_id)
        return self._json({"name": "RESOURCE_NOT_FOUND"}, 404)

    @staticmethod
    def _json(doc, status=200) -> Response:
        return Response(json.dumps(doc), status, content_type="application/json")

    # ------------------------------------------------------------------ the REST API
    def _token(self, request: Request) -> Response:
        auth = request.authorization
        if (
            not auth
            or (auth.username, auth.password) != (self.client_id, self.secret)
            or request.form.get("grant_type") != "client_credentials"
        ):
            return self._json({"error": "invalid_client"}, 401)
        token = "A21AA" + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens.add(token)
        return self._json(
            {
                "scope": "https://uri.paypal.com/services/payments/payment",
                "access_token": token,
                "token_type": "Bearer",
                "app_id": "APP-SANDBOX",
                "expires_in": 32400,
                "nonce": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") + secrets.token_hex(8),
            }
        )

    def _create_order(self, request: Request, request_id: str | None) -> Response:
        body = request.get_json(silent=True) or {}
        if body.get("intent") != "CAPTURE" or not body.get("purchase_units"):
            return self._json({"name": "INVALID_REQUEST"}, 400)
        with self.lock:
            if request_id in self.by_request_id:
                return self._json(self.by_request_id[request_id], 200)
            oid = uuid.uuid4().hex[:17].upper()
            context = (body.get("payment_source") or {}).get("paypal", {}).get(
                "experience_context"
            ) or {}
            order = {
                "id": oid,
                "intent": "CAPTURE",
                "status": "PAYER_ACTION_REQUIRED",
                "purchase_units": body["purchase_units"],
                "create_time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "links": [
                    {"rel": "self", "href": f"{self.url}/v2/checkout/orders/{oid}"},
                    {"rel": "payer-action", "href": f"{self.url}/checkoutnow?token={oid}"},
                ],
            }
            self.orders[oid] = {**order, "_context": context}
            if request_id:
                self.by_request_id[request_id] = order
        return self._json(order, 201)

    def _capture(self, request: Request, request_id: str | None) -> Response:
        if self.fail_capture:
            return self._json({"name": "INTERNAL_SERVICE_ERROR"}, 500)
        oid = request.path.split("/")[-2]
        with self.lock:
            order = self.orders.get(oid)
            if order is None:
                return self._json({"name": "RESOURCE_NOT_FOUND"}, 404)
            if request_id in self.by_request_id:
                return self._json(self.public(order), 200)
            if order["status"] == "COMPLETED":
                return self._unprocessable("ORDER_ALREADY_CAPTURED")
            if self.require_approval and order["status"] != "APPROVED":
                return self._unprocessable("ORDER_NOT_APPROVED")
            unit = order["purchase_units"][0]
            order["status"] = "COMPLETED"
            capture = {
                "id": "CAP" + uuid.uuid4().hex[:14].upper(),
                "status": "COMPLETED",
                "amount": unit["amount"],
                "custom_id": unit.get("custom_id"),
                "invoice_id": unit.get("invoice_id"),
                "final_capture": True,
                "create_time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "links": [
                    {"rel": "up", "href": f"{self.url}/v2/checkout/orders/{oid}"},
                ],
            }
            unit["payments"] = {"captures": [capture]}
            if request_id:
                self.by_request_id[request_id] = order
        if self.webhook_url:
            self._outgoing.put(self.capture_completed(oid))
        return self._json(self.public(order), 201)

    def _unprocessable(self, issue: str) -> Response:
        return self._json({"name": "UNPROCESSABLE_ENTITY", "details": [{"issue": issue}]}, 422)

    @staticmethod
    def public(order: dict) -> dict:
        return {k: v for k, v in order.items() if not k.startswith("_")}

    def _refund(self, request: Request, request_id: str | None) -> Response:
        """At most the captured amount, once per PayPal-Request-Id."""
        capture_id = request.path.split("/")[-2]
        with self.lock:
            if request_id in self.refunds_by_request_id:
                return self._json(self.refunds_by_request_id[request_id], 200)
            capture = next(
                (
                    c
                    for o in self.orders.values()
                    for pu in o["purchase_units"]
                    for c in pu.get("payments", {}).get("captures", [])
                    if c["id"] == capture_id
                ),
                None,
            ) or self.extra_captures.get(capture_id)
            if capture is None:
                return self._json({"name": "RESOURCE_NOT_FOUND"}, 404)
            amount = (request.get_json(silent=True) or {}).get("amount") or capture["amount"]
            refunded = self.refunded.get(capture_id, 0) + round(float(amount["value"]) * 100)
            if refunded > round(float(capture["amount"]["value"]) * 100):
                return self._unprocessable("REFUND_AMOUNT_EXCEEDED")
            self.refunded[capture_id] = refunded
            refund = {
                "id": "RF" + uuid.uuid4().hex[:15].upper(),
                "status": "COMPLETED",
                "amount": amount,
                "links": [{"rel": "up", "href": f"{self.url}/v2/payments/captures/{capture_id}"}],
            }
            self.refunds_by_request_id[request_id] = refund
        return self._json(refund, 201)

    # ------------------------------------------------------------------ the buyer's pages
    def _approval_page(self, oid: str) -> Response:
        order = self.orders.get(oid)
        if order is None:
            return Response("unknown order", 404)
        amount = order["purchase_units"][0]["amount"]
        forms = "".join(
            f"<form method='post' action='/checkoutnow/{action}'>"
            f"<input type='hidden' name='token' value='{oid}'>"
            f"<button type='submit'>{label}</button></form>"
            for action, label in (("approve", "Payer maintenant"), ("cancel", "Annuler"))
        )
        body = (
            "<!doctype html><html lang='fr'><head><meta charset='utf-8'>"
            "<title>PayPal (bac à sable)</title></head><body>"
            "<h1>PayPal — compte acheteur de développement</h1>"
            f"<p>{amount['value']} {amount['currency_code']}</p>{forms}</body></html>"
        )
        return Response(body, 200, mimetype="text/html")

    def _buyer_decision(self, request: Request) -> Response:
        oid = request.form.get("token", "")
        approve = request.path.endswith("/approve")
        with self.lock:
            order = self.orders.get(oid)
            if order is None or order["status"] not in ("PAYER_ACTION_REQUIRED", "APPROVED"):
                return Response("unknown or finished order", 404)
            context = order["_context"]
            if approve:
                order["status"] = "APPROVED"
                order["payer"] = {
                    "payer_id": "SANDBOXPAYER1",
                    "email_address": "acheteur@paypal.test",
                }
        if not approve:
            return Response("", 302, headers={"Location": context.get("cancel_url") or "/"})
        if self.webhook_url:
            self._outgoing.put(
                self.webhook(
                    "CHECKOUT.ORDER.APPROVED", self.public(order), resource_type="checkout-order"
                )
            )
        target = context.get("return_url")
        if not target:
            return Response("<p>Paiement approuvé</p>", 200, mimetype="text/html")
        separator = "&" if "?" in target else "?"
        return Response(
            "", 302, headers={"Location": f"{target}{separator}token={oid}&PayerID=SANDBOXPAYER1"}
        )

    # ------------------------------------------------------------------ webhooks
    def capture_of(self, paypal_order_id: str) -> dict:
        return self.orders[paypal_order_id]["purchase_units"][0]["payments"]["captures"][0]

    def webhook(
        self,
        event_type: str,
        resource: dict,
        event_id: str | None = None,
        cert_url: str | None = None,
        webhook_id: str | None = None,
        key=None,
        resource_type: str = "capture",
    ) -> tuple[bytes, dict]:
        """A webhook body and the headers PayPal sends with it, signed as PayPal signs."""
        body = json.dumps(
            {
                "id": event_id or f"WH-{uuid.uuid4().hex[:20].upper()}",
                "event_version": "1.0",
                "create_time": datetime.now(UTC).isoformat(),
                "resource_type": resource_type,
                "resource_version": "2.0",
                "event_type": event_type,
                "summary": event_type.replace(".", " ").lower(),
                "resource": resource,
            }
        ).encode()
        tid, ttime = str(uuid.uuid4()), datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        webhook_id = webhook_id or self.webhook_id
        message = f"{tid}|{ttime}|{webhook_id}|{zlib.crc32(body) & 0xFFFFFFFF}".encode()
        signature = (key or self.key).sign(message, padding.PKCS1v15(), hashes.SHA256())
        return body, {
            "PAYPAL-TRANSMISSION-ID": tid,
            "PAYPAL-TRANSMISSION-TIME": ttime,
            "PAYPAL-TRANSMISSION-SIG": base64.b64encode(signature).decode(),
            "PAYPAL-CERT-URL": cert_url or self.cert_url,
            "PAYPAL-AUTH-ALGO": "SHA256withRSA",
            "Content-Type": "application/json",
        }

    def capture_completed(self, paypal_order_id: str, **kw) -> tuple[bytes, dict]:
        capture = dict(self.capture_of(paypal_order_id))
        capture["supplementary_data"] = {"related_ids": {"order_id": paypal_order_id}}
        return self.webhook("PAYMENT.CAPTURE.COMPLETED", capture, **kw)

    def _deliver_webhooks(self) -> None:
        """POSTs each queued webhook to ``webhook_url`` until answered 2xx or the retries run out
        (then it is dropped, as PayPal does after its retries)."""
        while True:
            item = self._outgoing.get()
            if item is None:
                return
            body, headers = item
            event_type = json.loads(body)["event_type"]
            status = None
            for delay in (0, *WEBHOOK_RETRY_SECONDS):
                if delay and self._closed.wait(delay):
                    return
                try:
                    status = requests.post(
                        self.webhook_url, data=body, headers=headers, timeout=10
                    ).status_code
                except requests.RequestException:
                    status = None
                if status is not None and 200 <= status < 300:
                    break
            self.deliveries.append((event_type, status))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m coc_payments.sandbox.paypal", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret-file", required=True)
    parser.add_argument("--webhook-id", required=True, help="the id PAYPAL_WEBHOOK_ID names")
    parser.add_argument("--webhook-url", required=True, help="where webhooks are POSTed")
    parser.add_argument(
        "--signing-key-file", required=True, help="the webhooks' RSA key (made there once)"
    )
    args = parser.parse_args(argv)
    sandbox = PayPalSandbox(
        client_id=args.client_id,
        client_secret=read_secret(args.client_secret_file),
        webhook_id=args.webhook_id,
        webhook_url=args.webhook_url,
        key=signing_key(args.signing_key_file),
    )
    return serve_until_stopped("paypal", sandbox, args.port)


if __name__ == "__main__":
    sys.exit(main())
