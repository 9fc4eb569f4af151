"""HTTP API of the supplier gateway besides the common routes (health, readiness, parked
messages): flask-smorest, documented in the OpenAPI document served at ``/openapi.json`` and kept
in the repository (``services/supplier-gateway/openapi.json``).

For now one staff-only read: an order's supplier request and what it still waits for.
"""

from __future__ import annotations

from flask import Flask, jsonify
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from coc_shared.http import error_response, staff_required
from coc_shared.openapi import STAFF_SECURITY, errors, install_api

from ..adapters.repository import SupplierRequestRepository


class SupplierRequestSchema(Schema):
    order_id = fields.String(required=True)
    brand = fields.String(required=True, allow_none=True)
    status = fields.String(required=True, metadata={"enum": ["pending", "ready", "cancelled"]})
    missing = fields.List(fields.String(), required=True)
    document_ids = fields.List(fields.String(), required=True)


def register_api(app: Flask, runtime) -> None:
    blp = Blueprint(
        "supplier_gateway_staff",
        __name__,
        url_prefix="/v1/staff",
        description="Supplier requests (support staff)",
    )

    @blp.route("/supplier-requests/<order_id>", methods=["GET"])
    @blp.doc(security=STAFF_SECURITY, summary="An order's supplier request and what it awaits")
    @blp.response(200, SupplierRequestSchema)
    @errors(blp, 401, 403, 404, 503)
    @staff_required()
    def supplier_request(order_id: str):
        with runtime.unit_of_work() as uow:
            request = SupplierRequestRepository(uow).get(order_id)
        if request is None:
            return error_response(404, "no supplier request for this order")
        return jsonify(
            {
                "order_id": request.order_id,
                "brand": request.brand,
                "status": request.status,
                "missing": request.missing,
                "document_ids": list(request.document_ids),
            }
        )

    api = install_api(app, "COC supplier-gateway API", __doc__)
    api.register_blueprint(blp)
