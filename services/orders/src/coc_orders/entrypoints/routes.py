"""HTTP routes of the orders service besides the common ones (health, readiness, parked messages).

For now one staff-only read: the milestones recorded for an order.
"""
from __future__ import annotations

from flask import Blueprint, Flask, jsonify

from coc_shared.auth import staff_required

from ..adapters.repository import OrderEventRepository


def register_api(app: Flask, runtime) -> None:
    bp = Blueprint("orders_staff", __name__, url_prefix="/v1/staff")

    @bp.get("/orders/<order_id>/events")
    @staff_required()
    def order_events(order_id: str):
        with runtime.engine.connect() as conn:
            events = OrderEventRepository(conn).for_order(order_id)
        return jsonify({"order_id": order_id, "items": [
            {"event_id": e.event_id, "event_type": e.event_type, "milestone": e.milestone,
             "occurred_at": e.occurred_at.isoformat()} for e in events]})

    app.register_blueprint(bp)
