"""Staff-only routes of the orders service (besides the shared parked-messages view)."""

from __future__ import annotations

from flask import Blueprint, jsonify

from coc_shared.http import error_response, staff_required

from ..service_layer import orders as orders_uc
from .context import orders_app

bp = Blueprint("orders_staff", __name__, url_prefix="/v1/staff")


@bp.get("/orders/<order_id>/events")
@staff_required()
def order_events(order_id: str):
    events = orders_uc.order_timeline(orders_app().runtime, order_id)
    return jsonify(
        {
            "order_id": order_id,
            "items": [
                {
                    "event_id": e["event_id"],
                    "event_type": e["event_type"],
                    "outcome": e["outcome"],
                    "status_after": e["status_after"],
                    "occurred_at": e["occurred_at"].isoformat(),
                }
                for e in events
            ],
        }
    )


@bp.get("/orders/<reference>")
@staff_required()
def find_order(reference: str):
    """An order by id or number, without personal data (the support console's search)."""
    order = orders_uc.find_order(orders_app().runtime, reference)
    if order is None:
        return error_response(404, "no such order")
    return jsonify(
        {
            "id": order.id,
            "number": order.number,
            "status": order.status,
            "placed_at": order.placed_at.isoformat(),
            "payment_method": order.payment_method,
            "total": {"amount_cents": order.total_cents, "currency": order.currency},
            "brand": order.brand,
            "account_id": order.account_id,
        }
    )
