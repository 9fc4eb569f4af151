"""What the routes of the supplier gateway share: the HTTP answer of each refusal of the use cases
(the only place where they meet status codes) and the JSON rendering of supplier requests."""

from __future__ import annotations

from flask import Flask

from coc_shared.http import error_response

from ..domain.model import SupplierRequest
from ..service_layer import staff
from ..service_layer.authentication import BadSignature, UnknownSupplier
from ..service_layer.certificates import NoCertificate
from ..service_layer.replies import InvalidReply, NotConfigured, UnknownRequest

REPLY_BODY_LIMIT = 16 * 1024 * 1024  # a 10 MB PDF in base64 and the reply around it
HMAC_CHALLENGE = {"WWW-Authenticate": 'HMAC realm="coc-suppliers"'}

ANSWERS = {
    UnknownSupplier: lambda exc: error_response(404, "no such supplier"),
    BadSignature: lambda exc: error_response(401, str(exc), headers=HMAC_CHALLENGE),
    InvalidReply: lambda exc: error_response(422, str(exc), exc.fields),
    UnknownRequest: lambda exc: error_response(422, "unknown request", {"request_id": [str(exc)]}),
    NotConfigured: lambda exc: error_response(503, str(exc)),
    NoCertificate: lambda exc: error_response(404, str(exc)),
    staff.NotFound: lambda exc: error_response(404, "no supplier request for this order"),
    staff.NotNow: lambda exc: error_response(409, str(exc)),
}


def install_error_handlers(app: Flask) -> None:
    for refusal, answer in ANSWERS.items():
        app.register_error_handler(refusal, answer)


# answers ------------------------------------------------------------------------------------


def iso(value):
    return value.isoformat() if value else None


def render(found: SupplierRequest, history=None, pending=None) -> dict:
    body = {
        "order_id": found.order_id,
        "order_number": found.order_number,
        "brand": found.brand,
        "status": found.status,
        "missing": found.missing,
        "document_ids": list(found.document_ids),
        "supplier": found.supplier,
        "request_id": found.request_id,
        "round": found.round,
        "review_reason": found.review_reason,
        "sent_at": iso(found.sent_at),
        "due_at": iso(found.due_at),
        "overdue": found.overdue,
        "accepted_at": iso(found.accepted_at),
        "rejected_at": iso(found.rejected_at),
        "issued_at": iso(found.issued_at),
        "certificate": render_certificate(found),
        "shipment": render_shipment(found),
        "delivered_at": iso(found.delivered_at),
        "personal_data_erased": found.personal_erased_at is not None,
    }
    if history is not None:
        body["history"] = [{**h, "at": iso(h["at"])} for h in history]
    if pending is not None:
        body["pending_sends"] = [
            {**p, "next_attempt_at": iso(p["next_attempt_at"])} for p in pending
        ]
    return body


def render_certificate(found: SupplierRequest) -> dict | None:
    if not found.certificate_id:
        return None
    return {
        "id": found.certificate_id,
        "original_posted": found.original_posted,
        "size": found.certificate_size,
        "sha256": found.certificate_sha256,
    }


def render_shipment(found: SupplierRequest) -> dict | None:
    if not found.shipped_at:
        return None
    return {
        "shipped_at": iso(found.shipped_at),
        "shipped_by": found.shipped_by,
        "carrier": found.carrier,
        "tracking_number": found.tracking_number,
        "tracking_url": found.tracking_url,
        "tracking_status": found.tracking_status,
    }


def render_to_ship(found: SupplierRequest) -> dict:
    """A certificate this company is to post, with its recipient (what the carrier gets)."""
    name = found.customer_name or {}
    full_name = " ".join(filter(None, [name.get("first_name"), name.get("last_name")]))
    return {
        "order_id": found.order_id,
        "order_number": found.order_number,
        "recipient": {"name": full_name or None, "address": found.shipping_address},
        "certificate_received_at": iso(found.issued_at),
    }
