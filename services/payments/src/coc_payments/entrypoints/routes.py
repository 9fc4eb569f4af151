"""HTTP routes of the payments service besides the common ones (health, readiness, parked messages).

* ``POST /v1/payments/<order_id>/checkout`` — what the storefront needs to pay (customer or order token;
  409 once the order is paid or cancelled);
* ``POST /v1/callbacks/systempay|paypal|bank-transfer`` — providers' signed notifications;
* ``GET /v1/payments/review`` and ``POST /v1/payments/statements`` (camt.053) — support staff;
* ``GET /v1/staff/payments-due/<order_id>`` — support staff.
"""
from __future__ import annotations

import threading
import time
from dataclasses import asdict
from urllib.parse import parse_qsl

from flask import Blueprint, Flask, g, jsonify, request

from coc_shared.auth import StaffAuthError, access_token_matches, bearer_token, staff_required, verify_customer_token
from coc_shared.http import error_response
from coc_shared.logging import get_logger

from ..adapters.bank import StatementError, parse_camt053, verify_qonto, webhook_credit
from ..adapters.hosted_page import SystempayPage
from ..adapters.paypal import CertificateStore, PayPalClient, PayPalWebhooks, ProviderError
from ..adapters.repository import PaymentDueRepository, ReviewRepository
from ..config import NotConfigured, PaymentsConfig
from ..domain.masking import mask_card_numbers, mask_form
from ..service_layer import payments as uc

log = get_logger(__name__)
MAX_STATEMENT_BYTES = 20 * 1024 * 1024
_HIDDEN_HEADERS = {"authorization", "cookie", "x-order-token"}


class Providers:
    """The provider adapters, built from configuration when first needed (and then kept: the
    PayPal token and certificates are cached)."""

    def __init__(self, config: PaymentsConfig):
        self.config = config
        self._lock = threading.Lock()
        self._paypal: PayPalClient | None = None
        self._card_page: SystempayPage | None = None
        self.certificates = CertificateStore(config.cert_url_allowed, timeout=config.timeout)

    def card_page(self) -> SystempayPage:
        # The configuration is immutable: built once (it is needed by every card notification).
        page = self._card_page
        if page is None:
            page = self._card_page = self._new_card_page()
        return page

    def _new_card_page(self) -> SystempayPage:
        site_id, = self.config.require("SYSTEMPAY_SITE_ID")
        mode = self.config.get("SYSTEMPAY_MODE") or "TEST"
        if not self.config.systempay_key(mode):
            raise NotConfigured(f"not configured: SYSTEMPAY_{mode}_KEY")
        return SystempayPage(self.config.get("SYSTEMPAY_FORM_URL"), site_id, mode,
                             {"TEST": self.config.get("SYSTEMPAY_TEST_KEY"),
                              "PRODUCTION": self.config.get("SYSTEMPAY_PRODUCTION_KEY")})

    def paypal(self) -> PayPalClient:
        with self._lock:
            if self._paypal is None:
                client_id, secret = self.config.require("PAYPAL_CLIENT_ID", "PAYPAL_CLIENT_SECRET")
                self._paypal = PayPalClient(self.config.get("PAYPAL_API_URL"), client_id, secret,
                                            timeout=self.config.timeout)
            return self._paypal

    def paypal_webhooks(self) -> PayPalWebhooks:
        return PayPalWebhooks(self.config.get("PAYPAL_WEBHOOK_ID"), self.certificates)


def _audit_headers() -> dict:
    return {k: mask_card_numbers(v) for k, v in request.headers.items() if k.lower() not in _HIDDEN_HEADERS}


def _json_result(outcome: uc.Outcome):
    if outcome.status == 401:
        return error_response(401, "the notification's proof is wrong or missing")
    if outcome.status == 503:
        return error_response(503, "the notification could not be verified now; deliver again")
    response = jsonify(outcome.body)
    response.status_code = outcome.status
    return response


def _visible_due(runtime, config: PaymentsConfig, order_id: str):
    """The order's payment if the caller may see it; else an error response."""
    bearer = bearer_token(request.headers.get("Authorization"))
    order_token = request.headers.get("X-Order-Token")
    if not bearer and not order_token:
        return None, error_response(401, "a customer bearer token or the order's access token is required",
                                    headers={"WWW-Authenticate": 'Bearer realm="coc"'})
    account_id = None
    if bearer:
        try:
            account_id = verify_customer_token(runtime.settings.customer_token_secret, bearer)
        except StaffAuthError as exc:
            if exc.status == 503:
                return None, error_response(503, "customer authentication is not configured")
            if not order_token:
                return None, error_response(401, str(exc), headers={"WWW-Authenticate": 'Bearer realm="coc"'})
    with runtime.engine.connect() as conn:
        due = PaymentDueRepository(conn).get(order_id)
    if due is not None and ((account_id is not None and due.account_id == account_id)
                            or access_token_matches(order_token, due.access_token_sha256)):
        return due, None
    return None, error_response(404, "no such order")


def register_api(app: Flask, runtime) -> None:
    config = PaymentsConfig.from_settings(runtime.settings)
    providers = Providers(config)
    app.config["COC_PAYMENT_PROVIDERS"] = providers

    staff = Blueprint("payments_staff", __name__, url_prefix="/v1/staff")

    @staff.get("/payments-due/<order_id>")
    @staff_required()
    def payment_due(order_id: str):
        with runtime.engine.connect() as conn:
            due = PaymentDueRepository(conn).get(order_id)
        if due is None:
            return error_response(404, "no payment is due for this order")
        return jsonify({k: getattr(due, k) for k in ("order_id", "order_number", "method", "amount_cents",
                                                     "currency", "status")})

    bp = Blueprint("payments", __name__)

    @bp.post("/v1/payments/<order_id>/checkout")
    def checkout(order_id: str):
        due, error = _visible_due(runtime, config, order_id)
        if error is not None:
            return error
        if due.cancelled:
            return error_response(409, "this order was cancelled: nothing is to be paid")
        if not due.payable:
            return error_response(409, "this order is already paid")
        try:
            if due.method == "card":
                answer = uc.checkout_card(runtime, providers.card_page(), due,
                                          notification_url=f"{config.public_url}/v1/callbacks/systempay",
                                          return_url=config.return_url(due.order_id))
            elif due.method == "paypal":
                answer = uc.checkout_paypal(runtime, providers.paypal, due, return_url=config.return_url(due.order_id))
            else:
                answer = uc.checkout_transfer(due, config.transfer_account())
        except NotConfigured as exc:
            log.error("checkout.not_configured", method=due.method, error=str(exc))
            return error_response(503, f"{due.method} payments are not available now")
        except ProviderError as exc:
            log.error("checkout.provider_error", method=due.method, error=str(exc))
            return error_response(502, "the payment provider did not answer; try again")
        answer["order_id"] = due.order_id
        return jsonify(answer)

    @bp.post("/v1/callbacks/systempay")
    def systempay_notification():
        raw = request.get_data(cache=False)
        try:
            text = raw.decode("utf-8")
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            text, pairs = raw.decode("utf-8", "replace"), []
        try:
            page = providers.card_page()
        except NotConfigured:
            return error_response(401, "card notifications are not configured")
        audit_body = mask_form(text, pairs if pairs or not text else None)
        outcome = uc.receive_card_notification(runtime, page, pairs, _audit_headers(), audit_body)
        return _json_result(outcome)

    @bp.post("/v1/callbacks/paypal")
    def paypal_webhook():
        raw = request.get_data(cache=False)
        outcome = uc.receive_paypal_webhook(runtime, providers.paypal_webhooks(), providers.paypal,
                                            request.headers, raw, mask_card_numbers(raw.decode("utf-8", "replace")),
                                            _audit_headers())
        if outcome.status != 200:
            return _json_result(outcome)
        for action in outcome.after_commit:
            try:
                action()
            except (ProviderError, NotConfigured) as exc:
                # Recorded; PayPal delivers the webhook again and the capture is tried again.
                log.warning("paypal.capture_failed", error=str(exc))
                return error_response(503, "capture could not be requested; deliver again")
        return _json_result(outcome)

    @bp.post("/v1/callbacks/bank-transfer")
    def bank_transfer_webhook():
        raw = request.get_data(cache=False)
        tolerance = float(config.get("QONTO_WEBHOOK_TOLERANCE_SECONDS") or 300)
        outcome = uc.receive_bank_webhook(
            runtime,
            lambda: verify_qonto(request.headers.get("X-Qonto-Signature"), raw, config.get("QONTO_WEBHOOK_SECRET"),
                                 time.time(), tolerance),
            webhook_credit, _audit_headers(), raw, mask_card_numbers(raw.decode("utf-8", "replace")))
        if outcome.status == 422:
            return error_response(422, "the notification cannot be read", {"body": ["not a transaction webhook"]})
        return _json_result(outcome)

    @bp.get("/v1/payments/review")
    @staff_required()
    def review_list():
        try:
            limit = min(max(int(request.args.get("limit", 100)), 1), 1000)
        except ValueError:
            return error_response(422, "bad query", {"limit": ["Not a valid integer."]})
        with runtime.engine.connect() as conn:
            items = ReviewRepository(conn).list(status=request.args.get("status", "open") or None,
                                                reason=request.args.get("reason"),
                                                order_id=request.args.get("order_id"), limit=limit)
        for item in items:
            item["created_at"] = item["created_at"].isoformat()
        return jsonify({"items": items})

    @bp.post("/v1/payments/statements")
    @staff_required()
    def import_statement():
        if (request.content_length or 0) > MAX_STATEMENT_BYTES:
            return error_response(413, "statement too large")
        raw = request.get_data(cache=False)
        try:
            credits = parse_camt053(raw)
        except StatementError as exc:
            return error_response(422, "not a camt.053 statement", {"body": [str(exc)]})
        summary = uc.import_statement(runtime, credits, mask_card_numbers(raw.decode("utf-8", "replace")),
                                      staff=g.staff.name, filename=request.args.get("filename"))
        return jsonify(summary)

    app.register_blueprint(staff)
    app.register_blueprint(bp)
