"""HTTP API of the notifications service besides the common routes (health, readiness, parked
messages): flask-smorest, documented in the OpenAPI document served at ``/openapi.json`` and kept
in the repository (``services/notifications/openapi.json``).

For now one staff-only read: the notifications of an order (whether a recipient is known, not
the address itself).
"""

from __future__ import annotations

from flask import Flask, jsonify
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from coc_shared.http import staff_required
from coc_shared.openapi import STAFF_SECURITY, errors, install_api

from ..adapters.repository import NotificationRepository


class NotificationSchema(Schema):
    event_id = fields.String(required=True)
    event_type = fields.String(required=True)
    template = fields.String(required=True)
    status = fields.String(required=True)
    has_recipient = fields.Boolean(required=True)


class OrderNotificationsSchema(Schema):
    order_id = fields.String(required=True)
    items = fields.List(fields.Nested(NotificationSchema), required=True)


def register_api(app: Flask, runtime) -> None:
    blp = Blueprint(
        "notifications_staff",
        __name__,
        url_prefix="/v1/staff",
        description="Notifications of orders (support staff)",
    )

    @blp.route("/orders/<order_id>/notifications", methods=["GET"])
    @blp.doc(security=STAFF_SECURITY, summary="The notifications of an order")
    @blp.response(200, OrderNotificationsSchema)
    @errors(blp, 401, 403, 503)
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

    api = install_api(app, "COC notifications API", __doc__)
    api.register_blueprint(blp)
