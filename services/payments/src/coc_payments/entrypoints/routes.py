"""HTTP API of the payments service besides the common routes (health, readiness, parked
messages): flask-smorest blueprints, documented in the OpenAPI document served at
``/openapi.json`` and kept in the repository (``services/payments/openapi.json``).

* ``POST /v1/payments/<order_id>/checkout`` — what the storefront needs to pay (customer or order
  token; 409 once the order is paid or cancelled);
* ``POST /v1/callbacks/systempay|paypal|bank-transfer`` — providers' signed notifications;
* ``GET /v1/payments/review`` and ``POST /v1/payments/statements`` (camt.053) — support staff;
* ``GET /v1/staff/payments-due/<order_id>`` — support staff;
* invoices, credit notes, refunds, the FEC export and the VAT checks: ``billing_routes``.

Providers' notifications are taken up to 64 KiB (``guards.CALLBACK_BODY_LIMIT``: 413 beyond,
before reading), a statement up to 20 MiB, anything else up to the shared 1 MiB.

The views only translate: HTTP in, a use case of ``service_layer``, its result or exception out as
HTTP. What one running API needs (configuration, provider adapters, the use cases' ``Payments``)
is built once in ``register_api`` and fetched with ``parts()``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import parse_qsl

from flask import Flask, current_app, g, jsonify, request
from flask_smorest import Blueprint

from coc_shared.guards import CALLBACK_BODY_LIMIT, body_limit
from coc_shared.http import error_response, order_caller, staff_required
from coc_shared.logging import get_logger
from coc_shared.openapi import (
    CUSTOMER_SECURITY,
    STAFF_SECURITY,
    errors,
    install_api,
    security_scheme_customer,
)

from ..adapters.bank import StatementError, parse_camt053, verify_qonto, webhook_credit
from ..adapters.paypal import ProviderError
from ..adapters.providers import Providers
from ..config import NotConfigured, PaymentsConfig
from ..domain.masking import mask_card_numbers, mask_card_numbers_in_body, mask_form
from ..domain.model import AlreadyPaid, OrderCancelled
from ..service_layer import callbacks, queries, statements
from ..service_layer import checkout as checkout_uc
from ..service_layer.callbacks import CallbackResult
from ..service_layer.context import Payments
from . import billing_routes, order_states_routes
from . import schemas as s
from .limits import install_rate_limits

log = get_logger(__name__)
MAX_STATEMENT_BYTES = 20 * 1024 * 1024
_HIDDEN_HEADERS = {"authorization", "cookie", "x-order-token"}
_DUE_FIELDS = ("order_id", "order_number", "method", "amount_cents", "currency", "status")
EXTENSION = "coc_payments"

api = Blueprint("payments", __name__, description="Checkout, providers' notifications, review")
staff = Blueprint("payments_staff", __name__, url_prefix="/v1/staff", description="Support staff")


@dataclass(frozen=True)
class Parts:
    config: PaymentsConfig
    providers: Providers
    payments: Payments


def parts() -> Parts:
    return current_app.extensions[EXTENSION]


def register_api(app: Flask, runtime) -> None:
    app.extensions[EXTENSION] = Parts(
        runtime.config, Providers(runtime.config), Payments.of(runtime)
    )
    app.register_error_handler(
        checkout_uc.NoSuchOrder, lambda exc: error_response(404, "no such order")
    )
    app.register_error_handler(
        OrderCancelled,
        lambda exc: error_response(409, "this order was cancelled: nothing is to be paid"),
    )
    app.register_error_handler(
        AlreadyPaid, lambda exc: error_response(409, "this order is already paid")
    )
    app.register_error_handler(NotConfigured, _not_configured)
    app.register_error_handler(ProviderError, _provider_error)
    docs = install_api(app, "COC payments API", __doc__)
    security_scheme_customer(docs)
    docs.register_blueprint(staff)
    docs.register_blueprint(api)
    docs.register_blueprint(billing_routes.billing)
    docs.register_blueprint(billing_routes.billing_staff)
    docs.register_blueprint(order_states_routes.blp)
    install_rate_limits(app, runtime, runtime.config)


def _not_configured(exc: NotConfigured):
    log.error("checkout.not_configured", method=exc.method, error=str(exc))
    return error_response(503, f"{exc.method} payments are not available now")


def _provider_error(exc: ProviderError):
    log.error("checkout.provider_error", error=str(exc))
    return error_response(502, "the payment provider did not answer; try again")


# --------------------------------------------------------------------------- helpers
def _audit_headers() -> dict:
    return {
        k: mask_card_numbers(v)
        for k, v in request.headers.items()
        if k.lower() not in _HIDDEN_HEADERS
    }


def _answer(result: CallbackResult):
    if result.status == "rejected":
        return error_response(401, "the notification's proof is wrong or missing")
    if result.status == "unreadable":
        return error_response(
            422, "the notification cannot be read", {"body": ["not a transaction webhook"]}
        )
    if result.status == "try_again" and result.outcome == "capture_failed":
        return error_response(503, "capture could not be requested; deliver again")
    if result.status == "try_again":
        return error_response(503, "the notification could not be verified now; deliver again")
    return jsonify(
        {"status": result.status, **({"outcome": result.outcome} if result.outcome else {})}
    )


# --------------------------------------------------------------------------- customers
@api.route("/v1/payments/<order_id>/checkout", methods=["POST"])
@api.doc(
    security=CUSTOMER_SECURITY,
    parameters=[s.ORDER_TOKEN_PARAM],
    summary="What the storefront needs to pay the order (form, PayPal link or transfer details)",
)
@api.response(200, s.CheckoutSchema)
@errors(api, 401, 404, 409, 429, 502, 503)
def checkout(order_id: str):
    account_id, order_token = order_caller()
    p = parts()
    return jsonify(checkout_uc.checkout(p.payments, p.providers, order_id, account_id, order_token))


# --------------------------------------------------------------------------- providers
@api.route("/v1/callbacks/systempay", methods=["POST"])
@api.doc(
    security=[{}],
    summary="The card page's notification (IPN), signed with the shop's key",
    requestBody=s.SYSTEMPAY_BODY,
)
@api.response(200, s.CallbackAnswerSchema)
@errors(api, 400, 401, 413)
@body_limit(CALLBACK_BODY_LIMIT)
def systempay_notification():
    raw = request.get_data(cache=False)
    try:
        body = raw.decode("utf-8")
        pairs = parse_qsl(body, keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        body, pairs = raw.decode("utf-8", "surrogateescape"), []
    try:
        page = parts().providers.card_page()
    except NotConfigured:
        return error_response(401, "card notifications are not configured")
    audit_body = mask_form(body, pairs if pairs or not body else None).encode(
        "utf-8", "surrogateescape"
    )
    return _answer(
        callbacks.receive_card_notification(
            parts().payments, page, pairs, _audit_headers(), audit_body
        )
    )


@api.route("/v1/callbacks/paypal", methods=["POST"])
@api.doc(
    security=[{}],
    summary="PayPal's webhook, signed with PayPal's certificate (PAYPAL-TRANSMISSION-* headers)",
    requestBody=s.JSON_NOTIFICATION_BODY,
)
@api.response(200, s.CallbackAnswerSchema)
@errors(api, 400, 401, 413, 503)
@body_limit(CALLBACK_BODY_LIMIT)
def paypal_webhook():
    raw = request.get_data(cache=False)
    p = parts()
    result = callbacks.receive_paypal_webhook(
        p.payments,
        p.providers.paypal_webhooks,
        p.providers.paypal,
        request.headers,
        raw,
        mask_card_numbers_in_body(raw),
        _audit_headers(),
    )
    return _answer(result)


@api.route("/v1/callbacks/bank-transfer", methods=["POST"])
@api.doc(
    security=[{}],
    summary="The business bank's transaction webhook, signed (X-Qonto-Signature)",
    requestBody=s.JSON_NOTIFICATION_BODY,
)
@api.response(200, s.CallbackAnswerSchema)
@errors(api, 400, 401, 413, 422)
@body_limit(CALLBACK_BODY_LIMIT)
def bank_transfer_webhook():
    raw = request.get_data(cache=False)
    config = parts().config
    signature = request.headers.get("X-Qonto-Signature")

    def verify() -> None:
        verify_qonto(
            signature,
            raw,
            config.qonto_webhook_secret,
            time.time(),
            config.qonto_webhook_tolerance_seconds,
        )

    result = callbacks.receive_bank_webhook(
        parts().payments,
        verify,
        webhook_credit,
        _audit_headers(),
        raw,
        mask_card_numbers_in_body(raw),
    )
    return _answer(result)


# --------------------------------------------------------------------------- support staff
@api.route("/v1/payments/review", methods=["GET"])
@api.doc(
    security=STAFF_SECURITY,
    parameters=s.REVIEW_QUERY,
    summary="Payments to review (unmatched, late, duplicate...), newest first",
)
@api.response(200, s.ReviewListSchema)
@errors(api, 400, 401, 403, 422, 503)
@staff_required()
def review_list():
    try:
        limit = min(max(int(request.args.get("limit", 100)), 1), 1000)
    except ValueError:
        return error_response(422, "bad query", {"limit": ["Not a valid integer."]})
    items = queries.review_items(
        parts().payments,
        status=request.args.get("status", "open") or None,
        reason=request.args.get("reason"),
        order_id=request.args.get("order_id"),
        limit=limit,
    )
    for item in items:
        item["created_at"] = item["created_at"].isoformat()
    return jsonify({"items": items})


@api.route("/v1/payments/statements", methods=["POST"])
@api.doc(
    security=STAFF_SECURITY,
    parameters=[s.FILENAME_PARAM],
    summary="Import a camt.053 statement: its booked credits confirm the transfers they pay",
    requestBody=s.STATEMENT_BODY,
)
@api.response(200, s.ImportSummarySchema)
@errors(api, 400, 401, 403, 413, 422, 503)
@body_limit(MAX_STATEMENT_BYTES)
@staff_required()
def import_statement():
    if (request.content_length or 0) > MAX_STATEMENT_BYTES:
        return error_response(413, "statement too large")
    raw = request.get_data(cache=False)
    try:
        credits = parse_camt053(raw)
    except StatementError as exc:
        return error_response(422, "not a camt.053 statement", {"body": [str(exc)]})
    summary = statements.import_statement(
        parts().payments,
        credits,
        mask_card_numbers_in_body(raw),
        staff=g.staff.name,
        filename=request.args.get("filename"),
    )
    return jsonify(summary.as_dict())


@staff.route("/payments-due/<order_id>", methods=["GET"])
@staff.doc(security=STAFF_SECURITY, summary="The payment due for an order")
@staff.response(200, s.PaymentDueSchema)
@errors(staff, 401, 403, 404, 503)
@staff_required()
def payment_due(order_id: str):
    due = queries.payment_due(parts().payments, order_id)
    if due is None:
        return error_response(404, "no payment is due for this order")
    return jsonify({k: getattr(due, k) for k in _DUE_FIELDS})
