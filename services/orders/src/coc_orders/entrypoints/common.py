"""What every route of the orders API shares: the HTTP answer of each refusal of the domain (the
only place where they meet status codes), the request's credentials, rate limits, and the JSON
rendering of orders and accounts."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from flask import Flask, jsonify, request
from flask_smorest import Blueprint

from coc_shared.http import error_response, request_account, token_error_response
from coc_shared.openapi import ErrorSchema
from coc_shared.tokens import TokenError, bearer_token

from ..domain.errors import (
    AccountGone,
    Conflict,
    InvalidCredentials,
    LinkNotValid,
    NotConfigured,
    NotFound,
    OrdersError,
    TooLarge,
    UnsupportedMedia,
    ValidationFailed,
)
from ..domain.model import Order, OrderDocument, missing_documents
from ..domain.vat import REVERSE_CHARGE, REVERSE_CHARGE_MENTION
from ..service_layer.orders import Credentials
from .context import orders_app

# an order whose supplier delivered the certificate (the supplier gateway serves it)
CERTIFICATE_STATUSES = ("certificate_received", "shipped", "delivered")

# the answer to each refusal (a subclass takes its nearest ancestor's)
STATUS_OF: dict[type[OrdersError], int] = {
    ValidationFailed: 422,
    NotFound: 404,
    AccountGone: 401,
    InvalidCredentials: 401,
    LinkNotValid: 403,
    Conflict: 409,
    TooLarge: 413,
    UnsupportedMedia: 415,
    NotConfigured: 503,
}
ERRORS = {
    400: "Bad request",
    401: "No or bad credentials",
    403: "A link not signed for this supplier and document, or expired",
    404: "No such resource (or not yours)",
    409: "Conflict",
    413: "File larger than 10 MB",
    415: "Not a PDF, JPEG or PNG file, or one that cannot be read or is beyond the limits (PDF: "
    "20 pages, 50 MB inflated, no active content; image: 40 megapixels)",
    422: "Invalid input: messages per field",
    429: "Too many requests from this client",
    503: "Not configured or a dependency is down",
}


def refusal_response(exc: OrdersError):
    status = next(STATUS_OF[cls] for cls in type(exc).__mro__ if cls in STATUS_OF)
    return error_response(
        status, str(exc), exc.fields if isinstance(exc, ValidationFailed) else None
    )


def install_error_handlers(app: Flask) -> None:
    app.register_error_handler(OrdersError, refusal_response)
    # customers' tokens: the challenge names their realm (staff routes answer for themselves)
    app.register_error_handler(TokenError, lambda exc: token_error_response(exc, "coc-customer"))


def errors(blp: Blueprint, *codes: int):
    """Documents the error answers ``codes`` of a view."""

    def decorator(view):
        for code in reversed(codes):
            view = blp.alt_response(code, schema=ErrorSchema, description=ERRORS[code])(view)
        return view

    return decorator


# the request --------------------------------------------------------------------------------


def customer_account(required: bool) -> str | None:
    """The account of the request's customer bearer token (None without one, unless ``required``);
    TokenError otherwise."""
    return request_account(required)


def order_credentials() -> Credentials:
    """The bearer token's account and/or the order's access token (header X-Order-Token only: a
    URL ends up in access logs and browser histories); TokenError (401) when the request has
    neither, or puts a token in the query string."""
    if "token" in request.args:
        raise TokenError(
            "an order's access token is taken in the X-Order-Token header only, never in the URL"
        )
    order_token = request.headers.get("X-Order-Token")
    has_bearer = bearer_token(request.headers.get("Authorization")) is not None
    if not order_token and not has_bearer:
        raise TokenError("a bearer token or the order's access token (X-Order-Token) is required")
    return Credentials(
        account_id=customer_account(required=False) if has_bearer else None,
        access_token=order_token,
    )


def client_ip() -> str:
    return request.remote_addr or "unknown"


def refuse_nul_characters():
    """Text with NUL characters cannot be stored (PostgreSQL) and is never legitimate: 422 at
    once."""
    if request.mimetype == "application/json" and b"\\u0000" in request.get_data(cache=True):
        return error_response(
            422, "text must not contain NUL characters", {"_schema": ["NUL character in the body."]}
        )
    return None


# answers ------------------------------------------------------------------------------------


def json_response(body: dict, status: int = 200, headers: dict | None = None):
    response = jsonify(body)
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def render_order(
    order: Order,
    documents: list[OrderDocument] | None = None,
    timeline: list[dict] | None = None,
    access_token: str | None = None,
) -> dict:
    documents = documents or []
    body = {
        "id": order.id,
        "number": order.number,
        "status": order.status,
        "placed_at": order.placed_at.isoformat(),
        "payment_method": order.payment_method,
        "total": {"amount_cents": order.total_cents, "currency": order.currency},
        "vat": render_vat(order),
        "vehicle": {
            "brand": order.brand,
            "vin": order.vin,
            "first_registration_date": order.first_registration_date.isoformat(),
            "extra": order.vehicle_extra or {},
        },
        "documents_required": missing_documents(order.documents_required, documents),
        "documents": [render_document(d) for d in documents],
        "links": render_links(order),
    }
    if access_token:
        body["access_token"] = access_token
    if timeline is not None:
        body["timeline"] = [
            {
                "event": e["event_type"],
                "at": e["occurred_at"].isoformat(),
                "outcome": e["outcome"],
                "status": e["status_after"],
            }
            for e in timeline
        ]
    return body


def render_links(order: Order) -> dict:
    """The order's own routes, and the other services' ones (payment, invoices, certificate)."""
    config = orders_app().config
    links = {
        "self": f"/v1/orders/{order.id}",
        "documents": f"/v1/orders/{order.id}/documents",
        "payment": config.payment_url.format(order_id=order.id),
        "invoices": config.invoices_url.format(order_id=order.id),
    }
    if order.status in CERTIFICATE_STATUSES:
        links["certificate"] = config.certificate_url.format(order_id=order.id)
    return links


def render_vat(order: Order) -> dict:
    vat = {
        "rate": order.vat_rate,
        "amount_cents": order.vat_cents,
        "regime": order.vat_regime,
        "vat_number_check": order.vat_check,
    }
    if order.vat_regime == REVERSE_CHARGE:
        vat["mention"] = REVERSE_CHARGE_MENTION
    return vat


def render_document(d: OrderDocument) -> dict:
    return {
        "id": d.id,
        "kind": d.kind,
        "content_type": d.content_type,
        "size": d.size,
        "sha256": d.sha256,
        "uploaded_at": d.uploaded_at.isoformat(),
        "rejected_at": d.rejected_at.isoformat() if d.rejected_at else None,
    }


def plain_json(value) -> dict:
    """A dataclass of the service layer as JSON-ready values (date-times in ISO 8601)."""
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(value).items()}
