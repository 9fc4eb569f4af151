"""HTTP API of the supplier gateway besides the common routes (health, readiness, parked
messages): flask-smorest, documented in the OpenAPI document served at ``/openapi.json`` and kept
in the repository (``services/supplier-gateway/openapi.json``).

* Suppliers: ``POST /v1/suppliers/{code}/replies``, a reply signed with the supplier's key
  (HMAC-SHA256 over ``X-COC-Timestamp + "." + body``, in ``X-COC-Signature: sha256=<hex>``; the
  timestamp within 5 minutes), deduplicated on its ``reply_id`` (docs/supplier-integration.md).
  A supplier on the http channel receives requests as the same kind of signed POST.
* Customers: ``GET /v1/orders/{order_id}/certificate``, the certificate PDF the supplier sent, with
  the order's access token (``X-Order-Token``) or the owner's bearer token.
* Support staff: supplier requests by status, supplier or lateness, one with its history, sending
  one again, recording a reply received by other means, the shipments this company posts.
"""

from __future__ import annotations

import hmac
import time

from flask import Flask, Response, g, jsonify, request
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from coc_shared.documents import StoredObjectMissing
from coc_shared.guards import body_limit, loads
from coc_shared.http import error_response, order_caller, staff_required
from coc_shared.openapi import STAFF_SECURITY, errors, install_api, security_scheme_customer
from coc_shared.tokens import access_token_matches

from ..adapters.channels import signature
from ..adapters.repository import SupplierRequestRepository
from ..contract import (
    REPLY_WINDOW_SECONDS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    ReplyAnswer,
    ReplyMessage,
)
from ..domain.model import DELIVERED, ISSUED, SHIPPED, STATUSES
from ..service_layer import staff
from ..service_layer.replies import (
    InvalidReply,
    NotConfigured,
    UnknownRequest,
    receive_reply,
    store_of,
)

REPLY_BODY_LIMIT = 16 * 1024 * 1024  # a 10 MB PDF in base64 and the reply around it


class HistorySchema(Schema):
    at = fields.String()
    what = fields.String()
    request_id = fields.String(allow_none=True)
    detail = fields.Dict(allow_none=True)
    actor = fields.String()


class SupplierRequestSchema(Schema):
    order_id = fields.String(required=True)
    order_number = fields.String(allow_none=True)
    brand = fields.String(required=True, allow_none=True)
    status = fields.String(required=True, metadata={"enum": list(STATUSES)})
    missing = fields.List(fields.String(), required=True)
    document_ids = fields.List(fields.String(), required=True)
    supplier = fields.String(allow_none=True)
    request_id = fields.String(allow_none=True)
    round = fields.Integer()
    review_reason = fields.String(allow_none=True)
    sent_at = fields.String(allow_none=True)
    due_at = fields.String(allow_none=True)
    overdue = fields.Boolean()
    accepted_at = fields.String(allow_none=True)
    rejected_at = fields.String(allow_none=True)
    issued_at = fields.String(allow_none=True)
    certificate = fields.Dict(allow_none=True)
    shipment = fields.Dict(allow_none=True)
    delivered_at = fields.String(allow_none=True)
    personal_data_erased = fields.Boolean()
    history = fields.List(fields.Nested(HistorySchema))
    pending_sends = fields.List(fields.Dict())


class SupplierRequestListSchema(Schema):
    items = fields.List(fields.Nested(SupplierRequestSchema), required=True)


class ReasonSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=3, max=500))


class StaffReplySchema(Schema):
    reason = fields.String(
        required=True,
        validate=validate.Length(min=3, max=500),
        metadata={"description": "how the reply came (mail, phone) and why it is recorded here"},
    )
    reply = fields.Dict(
        required=True,
        metadata={
            "description": "the reply as the contract says (kind and its fields); reply_id, "
            "request_id and supplier are filled in"
        },
    )


class ShipmentSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=3, max=500))
    carrier = fields.String(
        required=True, validate=validate.OneOf(("colissimo", "lettre_suivie", "chronopost"))
    )
    tracking_number = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9]{8,20}$"))


class ToShipSchema(Schema):
    items = fields.List(fields.Dict(), required=True)


def _iso(value):
    return value.isoformat() if value else None


def render(request, history=None, pending=None) -> dict:
    body = {
        "order_id": request.order_id,
        "order_number": request.order_number,
        "brand": request.brand,
        "status": request.status,
        "missing": request.missing,
        "document_ids": list(request.document_ids),
        "supplier": request.supplier,
        "request_id": request.request_id,
        "round": request.round,
        "review_reason": request.review_reason,
        "sent_at": _iso(request.sent_at),
        "due_at": _iso(request.due_at),
        "overdue": request.overdue,
        "accepted_at": _iso(request.accepted_at),
        "rejected_at": _iso(request.rejected_at),
        "issued_at": _iso(request.issued_at),
        "certificate": (
            {
                "id": request.certificate_id,
                "original_posted": request.original_posted,
                "size": request.certificate_size,
                "sha256": request.certificate_sha256,
            }
            if request.certificate_id
            else None
        ),
        "shipment": (
            {
                "shipped_at": _iso(request.shipped_at),
                "shipped_by": request.shipped_by,
                "carrier": request.carrier,
                "tracking_number": request.tracking_number,
                "tracking_url": request.tracking_url,
                "tracking_status": request.tracking_status,
            }
            if request.shipped_at
            else None
        ),
        "delivered_at": _iso(request.delivered_at),
        "personal_data_erased": request.personal_erased_at is not None,
    }
    if history is not None:
        body["history"] = [{**h, "at": _iso(h["at"])} for h in history]
    if pending is not None:
        body["pending_sends"] = [
            {**p, "next_attempt_at": _iso(p["next_attempt_at"])} for p in pending
        ]
    return body


def _verify_signature(runtime, code: str, raw: bytes):
    """None when the call is signed by supplier ``code`` within the window, else the answer."""
    key = runtime.config.key_of(code)
    if runtime.config.directory.get(code) is None:
        return error_response(404, "no such supplier")
    if key is None:
        return error_response(503, "supplier signatures are not configured")
    timestamp = request.headers.get(TIMESTAMP_HEADER, "")
    given = request.headers.get(SIGNATURE_HEADER, "")
    headers = {"WWW-Authenticate": 'HMAC realm="coc-suppliers"'}
    if not timestamp.isdigit() or not given:
        return error_response(
            401, f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are required", headers=headers
        )
    if abs(time.time() - int(timestamp)) > REPLY_WINDOW_SECONDS:
        return error_response(
            401, f"{TIMESTAMP_HEADER} is more than 5 minutes away from now", headers=headers
        )
    if not hmac.compare_digest(signature(key, timestamp, raw), given):
        return error_response(401, "the signature does not match", headers=headers)
    return None


def register_api(app: Flask, runtime) -> None:
    api = install_api(app, "COC supplier-gateway API", __doc__)
    security_scheme_customer(api)
    api.register_blueprint(supplier_routes(runtime))
    api.register_blueprint(customer_routes(runtime))
    api.register_blueprint(staff_routes(runtime))


def supplier_routes(runtime) -> Blueprint:
    suppliers = Blueprint(
        "suppliers", __name__, url_prefix="/v1/suppliers", description="Suppliers' replies"
    )

    @suppliers.route("/<code>/replies", methods=["POST"])
    @suppliers.doc(
        security=[{}],
        summary="A supplier's reply about one request, signed with its key",
        parameters=[
            {
                "in": "header",
                "name": TIMESTAMP_HEADER,
                "required": True,
                "schema": {"type": "string"},
                "description": "Unix time of the call (seconds)",
            },
            {
                "in": "header",
                "name": SIGNATURE_HEADER,
                "required": True,
                "schema": {"type": "string"},
                "description": "sha256=<hex HMAC-SHA256(key, timestamp + '.' + body)>",
            },
        ],
        requestBody={
            "required": True,
            "content": {"application/json": {"schema": ReplyMessage}},
        },
    )
    @suppliers.response(200, ReplyAnswer)
    @errors(suppliers, 400, 401, 404, 413, 422, 503)
    @body_limit(REPLY_BODY_LIMIT)
    def supplier_reply(code: str):
        raw = request.get_data(cache=True)
        refused = _verify_signature(runtime, code, raw)
        if refused is not None:
            return refused
        try:
            body = loads(raw)
        except ValueError:
            return error_response(400, "the body is not JSON", {"body": ["Not valid JSON."]})
        if not isinstance(body, dict):
            return error_response(422, "the reply is not valid", {"body": ["Expected an object."]})
        if body.get("supplier") != code:
            return error_response(
                422, "the reply is not valid", {"supplier": [f"Must be {code}, as in the path."]}
            )
        try:
            result = receive_reply(runtime, body, "http")
        except InvalidReply as exc:
            return error_response(422, str(exc), exc.fields)
        except UnknownRequest as exc:
            return error_response(422, "unknown request", {"request_id": [str(exc)]})
        except NotConfigured as exc:
            return error_response(503, str(exc))
        return jsonify({"status": result.status})

    return suppliers


def customer_routes(runtime) -> Blueprint:
    customers = Blueprint(
        "certificates", __name__, url_prefix="/v1/orders", description="Customers' certificates"
    )

    @customers.route("/<order_id>/certificate", methods=["GET"])
    @customers.doc(
        security=[{"bearerAuth": []}, {"orderToken": []}],
        parameters=[
            {
                "in": "header",
                "name": "X-Order-Token",
                "required": False,
                "schema": {"type": "string"},
            }
        ],
        summary="The order's certificate of conformity (PDF), once the supplier delivered it",
        responses={
            "200": {
                "description": "The certificate",
                "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
            }
        },
    )
    @errors(customers, 401, 404, 503)
    def certificate(order_id: str):
        account_id, order_token = order_caller()
        with runtime.unit_of_work() as uow:
            found = SupplierRequestRepository(uow).get(order_id) if len(order_id) <= 200 else None
        if found is None or not (
            (account_id is not None and found.account_id == account_id)
            or access_token_matches(order_token, found.access_token_sha256)
        ):
            return error_response(404, "no such order")
        if found.status not in (ISSUED, SHIPPED, DELIVERED) or not found.certificate_id:
            return error_response(404, "the certificate has not been received yet")
        if not found.certificate_storage_key:
            return error_response(404, "the certificate was issued on paper only: it is posted")
        try:
            data = store_of(runtime).get(found.certificate_id, found.certificate_storage_key)
        except NotConfigured as exc:
            return error_response(503, str(exc))
        except StoredObjectMissing:
            return error_response(404, "the certificate is no longer available")
        return Response(
            data,
            mimetype="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="COC-{found.order_number}.pdf"'},
        )

    return customers


def staff_routes(runtime) -> Blueprint:  # noqa: C901 (one view per staff action)
    blp = Blueprint(
        "supplier_gateway_staff",
        __name__,
        url_prefix="/v1/staff",
        description="Supplier requests (support staff)",
    )

    @blp.route("/supplier-requests", methods=["GET"])
    @blp.doc(
        security=STAFF_SECURITY,
        summary="Supplier requests by status, supplier or lateness",
        parameters=[
            {"in": "query", "name": "status", "schema": {"type": "string", "enum": list(STATUSES)}},
            {"in": "query", "name": "supplier", "schema": {"type": "string"}},
            {"in": "query", "name": "overdue", "schema": {"type": "boolean"}},
            {
                "in": "query",
                "name": "limit",
                "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
            },
        ],
    )
    @blp.response(200, SupplierRequestListSchema)
    @errors(blp, 400, 401, 403, 503)
    @staff_required()
    def supplier_requests():
        status = request.args.get("status")
        overdue = request.args.get("overdue")
        limit = request.args.get("limit", "100")
        problems = {}
        if status is not None and status not in STATUSES:
            problems["status"] = [f"Must be one of: {', '.join(STATUSES)}."]
        if overdue is not None and overdue not in ("true", "false"):
            problems["overdue"] = ["Must be true or false."]
        if not limit.isdigit() or not 1 <= int(limit) <= 1000:
            problems["limit"] = ["Must be a whole number from 1 to 1000."]
        if problems:
            return error_response(400, "invalid query", problems)
        found = staff.list_requests(
            runtime,
            status,
            request.args.get("supplier"),
            None if overdue is None else overdue == "true",
            int(limit),
        )
        return jsonify({"items": [render(r) for r in found]})

    @blp.route("/supplier-requests/<order_id>", methods=["GET"])
    @blp.doc(security=STAFF_SECURITY, summary="An order's supplier request with its history")
    @blp.response(200, SupplierRequestSchema)
    @errors(blp, 401, 403, 404, 503)
    @staff_required()
    def supplier_request(order_id: str):
        try:
            view = staff.show_request(runtime, order_id)
        except staff.NotFound:
            return error_response(404, "no supplier request for this order")
        return jsonify(render(view.request, view.history, view.pending))

    @blp.route("/supplier-requests/<order_id>/resend", methods=["POST"])
    @blp.doc(security=STAFF_SECURITY, summary="Send the request again (same request id)")
    @blp.arguments(ReasonSchema)
    @blp.response(202, SupplierRequestSchema)
    @errors(blp, 400, 401, 403, 404, 409, 422, 503)
    @staff_required()
    def resend(body, order_id: str):
        try:
            found = staff.resend(runtime, order_id, g.staff.name, body["reason"])
        except staff.NotFound:
            return error_response(404, "no supplier request for this order")
        except staff.NotNow as exc:
            return error_response(409, str(exc))
        runtime.parking.record_action(
            g.staff,
            "resend_supplier_request",
            order_id,
            body["reason"],
            {"supplier": found.supplier, "request_id": found.request_id},
        )
        response = jsonify(render(found))
        response.status_code = 202
        return response

    @blp.route("/supplier-requests/<order_id>/replies", methods=["POST"])
    @blp.doc(security=STAFF_SECURITY, summary="Record a reply the supplier gave by other means")
    @blp.arguments(StaffReplySchema)
    @blp.response(200, ReplyAnswer)
    @errors(blp, 400, 401, 403, 404, 413, 422, 503)
    @body_limit(REPLY_BODY_LIMIT)
    @staff_required()
    def record_reply(body, order_id: str):
        try:
            result = staff.record_reply(
                runtime, order_id, body["reply"], g.staff.name, body["reason"]
            )
        except (staff.NotFound, UnknownRequest):
            return error_response(404, "no request sent for this order")
        except InvalidReply as exc:
            return error_response(422, str(exc), exc.fields)
        except NotConfigured as exc:
            return error_response(503, str(exc))
        reply = {k: v for k, v in body["reply"].items() if k != "certificate"}
        runtime.parking.record_action(
            g.staff,
            "record_supplier_reply",
            order_id,
            body["reason"],
            {"reply": reply, "outcome": result.status},
        )
        return jsonify({"status": result.status})

    @blp.route("/supplier-requests/<order_id>/shipment", methods=["POST"])
    @blp.doc(security=STAFF_SECURITY, summary="Record that this company posted the certificate")
    @blp.arguments(ShipmentSchema)
    @blp.response(200, SupplierRequestSchema)
    @errors(blp, 400, 401, 403, 404, 409, 422, 503)
    @staff_required()
    def shipment(body, order_id: str):
        try:
            found = staff.record_shipment(
                runtime,
                order_id,
                body["carrier"],
                body["tracking_number"],
                g.staff.name,
                body["reason"],
            )
        except staff.NotFound:
            return error_response(404, "no supplier request for this order")
        except staff.NotNow as exc:
            return error_response(409, str(exc))
        runtime.parking.record_action(
            g.staff,
            "record_shipment",
            order_id,
            body["reason"],
            {"carrier": body["carrier"], "tracking_number": body["tracking_number"]},
        )
        return jsonify(render(found))

    @blp.route("/shipments/to-ship", methods=["GET"])
    @blp.doc(
        security=STAFF_SECURITY,
        summary="Certificates this company is to post, with the recipient (name and address)",
    )
    @blp.response(200, ToShipSchema)
    @errors(blp, 401, 403, 503)
    @staff_required()
    def to_ship():
        found = staff.to_ship(runtime)
        runtime.parking.record_action(
            g.staff, "read_shipping_recipients", None, None, {"orders": [r.order_id for r in found]}
        )
        return jsonify(
            {
                "items": [
                    {
                        "order_id": r.order_id,
                        "order_number": r.order_number,
                        "recipient": {
                            "name": " ".join(
                                filter(
                                    None,
                                    [
                                        (r.customer_name or {}).get("first_name"),
                                        (r.customer_name or {}).get("last_name"),
                                    ],
                                )
                            )
                            or None,
                            "address": r.shipping_address,
                        },
                        "certificate_received_at": _iso(r.issued_at),
                    }
                    for r in found
                ]
            }
        )

    return blp
