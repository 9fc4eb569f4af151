"""HTTP routes of the notifications service besides the common ones (health, readiness, parked
messages).

For now one staff-only read: the notifications of an order (whether a recipient is known, not
the address itself).
"""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify

from coc_shared.http import staff_required

from ..adapters.repository import NotificationRepository


def register_api(app: Flask, runtime) -> None:
    bp = Blueprint("notifications_staff", __name__, url_prefix="/v1/staff")

    @bp.get("/orders/<order_id>/notifications")
    @staff_required()
    def order_notifications(order_id: str):
        with runtime.unit_of_work() as uow:
            notifications = NotificationRepository(uow).for_order(order_id)
        return jsonify(
            {
                "order_id": order_id,
                "items": [
                    {
                        "event_id": n.event_id,
                        "event_type": n.event_type,
                        "template": n.template,
                        "status": n.status,
                        "has_recipient": n.recipient_email is not None,
                    }
                    for n in notifications
                ],
            }
        )

    app.register_blueprint(bp)
