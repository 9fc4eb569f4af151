"""HTTP routes of the supplier gateway besides the common ones (health, readiness, parked messages).

For now one staff-only read: an order's supplier request and what it still waits for.
"""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify

from coc_shared.http import error_response, staff_required

from ..adapters.repository import SupplierRequestRepository


def register_api(app: Flask, runtime) -> None:
    bp = Blueprint("supplier_gateway_staff", __name__, url_prefix="/v1/staff")

    @bp.get("/supplier-requests/<order_id>")
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

    app.register_blueprint(bp)
