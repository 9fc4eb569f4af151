"""HTTP routes of the payments service besides the common ones (health, readiness, parked messages).

For now one staff-only read: the payment an order awaits.
"""
from __future__ import annotations

from dataclasses import asdict

from flask import Blueprint, Flask, jsonify

from coc_shared.auth import staff_required
from coc_shared.http import error_response

from ..adapters.repository import PaymentDueRepository


def register_api(app: Flask, runtime) -> None:
    bp = Blueprint("payments_staff", __name__, url_prefix="/v1/staff")

    @bp.get("/payments-due/<order_id>")
    @staff_required()
    def payment_due(order_id: str):
        with runtime.engine.connect() as conn:
            due = PaymentDueRepository(conn).get(order_id)
        if due is None:
            return error_response(404, "no payment is due for this order")
        return jsonify(asdict(due))

    app.register_blueprint(bp)
