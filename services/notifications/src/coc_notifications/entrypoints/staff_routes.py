"""Support staff's routes of the notifications service: an order's mails, the mails by status,
template or order (no bodies; addresses masked), and the resending of a failed mail."""

from __future__ import annotations

from dataclasses import asdict

from flask import g, jsonify
from flask_smorest import Blueprint

from coc_shared.http import current_runtime, staff_required
from coc_shared.openapi import STAFF_SECURITY, errors

from ..service_layer import queries, staff
from . import schemas as s

blp = Blueprint(
    "notifications_staff",
    __name__,
    url_prefix="/v1/staff",
    description="Mails to customers (support staff)",
)


@blp.route("/orders/<order_id>/notifications", methods=["GET"])
@blp.doc(security=STAFF_SECURITY, summary="The mails of an order")
@blp.response(200, s.OrderNotificationsSchema)
@errors(blp, 401, 403, 503)
@staff_required()
def order_notifications(order_id: str):
    mails = queries.order_mails(current_runtime(), order_id)
    return jsonify({"order_id": order_id, "items": [asdict(m) for m in mails]})


@blp.route("/mails", methods=["GET"])
@blp.doc(security=STAFF_SECURITY, summary="Mails by status, template or order (no bodies)")
@blp.arguments(s.MailQuerySchema, location="query")
@blp.response(200, s.MailsSchema)
@errors(blp, 401, 403, 422, 503)
@staff_required()
def list_mails(query):
    items = staff.list_mails(
        current_runtime(),
        status=query.get("status"),
        template=query.get("template"),
        order_id=query.get("order_id"),
        limit=query["limit"],
    )
    return {"items": items}


@blp.route("/mails/<int:mail_id>/resend", methods=["POST"])
@blp.doc(security=STAFF_SECURITY, summary="Send a failed mail again (with a reason)")
@blp.arguments(s.ResendSchema)
@blp.response(200, s.ResentSchema)
@errors(blp, 401, 403, 404, 409, 422, 503)
@staff_required()
def resend_mail(body, mail_id: int):
    return staff.resend(current_runtime(), mail_id, g.staff, body["reason"])
