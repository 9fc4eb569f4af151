"""Support staff's routes of the supplier gateway: supplier requests by status, supplier or
lateness, one with its history, sending one again, recording a reply received by other means,
recording the shipment of a certificate this company posted, and what is to be posted. Each
action (and each read of recipients' names and addresses) is recorded in the support actions log
with the staff member and the reason."""

from __future__ import annotations

from flask import g, jsonify, request
from flask_smorest import Blueprint

from coc_shared.guards import InputRefused, body_limit
from coc_shared.http import current_runtime, error_response, staff_required
from coc_shared.openapi import STAFF_SECURITY, errors

from ..contract import ReplyAnswer
from ..domain.model import STATUSES
from ..service_layer import staff
from ..service_layer.replies import UnknownRequest
from . import schemas as s
from .common import REPLY_BODY_LIMIT, render, render_to_ship

blp = Blueprint(
    "supplier_gateway_staff",
    __name__,
    url_prefix="/v1/staff",
    description="Supplier requests (support staff)",
)


def list_query() -> tuple[str | None, bool | None, int]:
    """(status, overdue, limit) of the query string; 400 naming each bad parameter."""
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
        raise InputRefused(400, "invalid query", problems)
    return status, None if overdue is None else overdue == "true", int(limit)


@blp.route("/supplier-requests", methods=["GET"])
@blp.doc(
    security=STAFF_SECURITY,
    summary="Supplier requests by status, supplier or lateness",
    parameters=s.LIST_QUERY,
)
@blp.response(200, s.SupplierRequestListSchema)
@errors(blp, 400, 401, 403, 503)
@staff_required()
def supplier_requests():
    status, overdue, limit = list_query()
    supplier = request.args.get("supplier")
    found = staff.list_requests(current_runtime(), status, supplier, overdue, limit)
    return jsonify({"items": [render(r) for r in found]})


@blp.route("/supplier-requests/<order_id>", methods=["GET"])
@blp.doc(security=STAFF_SECURITY, summary="An order's supplier request with its history")
@blp.response(200, s.SupplierRequestSchema)
@errors(blp, 401, 403, 404, 503)
@staff_required()
def supplier_request(order_id: str):
    view = staff.show_request(current_runtime(), order_id)
    return jsonify(render(view.request, view.history, view.pending))


@blp.route("/supplier-requests/<order_id>/resend", methods=["POST"])
@blp.doc(security=STAFF_SECURITY, summary="Send the request again (same request id)")
@blp.arguments(s.ReasonSchema)
@blp.response(202, s.SupplierRequestSchema)
@errors(blp, 400, 401, 403, 404, 409, 422, 503)
@staff_required()
def resend(body, order_id: str):
    runtime = current_runtime()
    found = staff.resend(runtime, order_id, g.staff.name, body["reason"])
    runtime.parking.record_action(
        g.staff,
        "resend_supplier_request",
        order_id,
        body["reason"],
        {"supplier": found.supplier, "request_id": found.request_id},
    )
    return jsonify(render(found)), 202


@blp.route("/supplier-requests/<order_id>/replies", methods=["POST"])
@blp.doc(security=STAFF_SECURITY, summary="Record a reply the supplier gave by other means")
@blp.arguments(s.StaffReplySchema)
@blp.response(200, ReplyAnswer)
@errors(blp, 400, 401, 403, 404, 413, 422, 503)
@body_limit(REPLY_BODY_LIMIT)
@staff_required()
def record_reply(body, order_id: str):
    runtime = current_runtime()
    try:
        result = staff.record_reply(runtime, order_id, body["reply"], g.staff.name, body["reason"])
    except (staff.NotFound, UnknownRequest):
        return error_response(404, "no request sent for this order")
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
@blp.arguments(s.ShipmentSchema)
@blp.response(200, s.SupplierRequestSchema)
@errors(blp, 400, 401, 403, 404, 409, 422, 503)
@staff_required()
def shipment(body, order_id: str):
    runtime = current_runtime()
    carrier, tracking_number = body["carrier"], body["tracking_number"]
    found = staff.record_shipment(
        runtime, order_id, carrier, tracking_number, g.staff.name, body["reason"]
    )
    runtime.parking.record_action(
        g.staff,
        "record_shipment",
        order_id,
        body["reason"],
        {"carrier": carrier, "tracking_number": tracking_number},
    )
    return jsonify(render(found))


@blp.route("/shipments/to-ship", methods=["GET"])
@blp.doc(
    security=STAFF_SECURITY,
    summary="Certificates this company is to post, with the recipient (name and address)",
)
@blp.response(200, s.ToShipSchema)
@errors(blp, 401, 403, 503)
@staff_required()
def to_ship():
    runtime = current_runtime()
    found = staff.to_ship(runtime)
    runtime.parking.record_action(
        g.staff, "read_shipping_recipients", None, None, {"orders": [r.order_id for r in found]}
    )
    return jsonify({"items": [render_to_ship(r) for r in found]})
