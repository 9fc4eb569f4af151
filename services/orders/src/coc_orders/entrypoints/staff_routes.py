"""Staff-only routes of the orders service (besides the shared parked-messages view)."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request
from marshmallow import Schema, ValidationError, fields

from coc_shared.http import error_response, staff_required

from ..domain.errors import ValidationFailed
from ..service_layer import orders as orders_uc
from ..service_layer import support as support_uc
from .context import orders_app

ADMIN = ("admin",)

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


class SupportRecordInSchema(Schema):
    """A support record as staff send it (domain.support checks the values)."""

    order_id = fields.String(load_default=None, allow_none=True)
    account_id = fields.String(load_default=None, allow_none=True)
    channel = fields.String(required=True)
    summary = fields.String(required=True)
    contacted_at = fields.AwareDateTime(load_default=None, allow_none=True)


def _order_json(order) -> dict:
    return {
        "id": order.id,
        "number": order.number,
        "status": order.status,
        "placed_at": order.placed_at.isoformat(),
        "payment_method": order.payment_method,
        "total": {"amount_cents": order.total_cents, "currency": order.currency},
        "brand": order.brand,
        "account_id": order.account_id,
    }


@bp.post("/support-records")
@staff_required()
def add_support_record():
    """Attach the record of a customer's contact (e-mail, chat, phone) to an order or account."""
    body = request.get_json(silent=True)
    try:
        fields_in = SupportRecordInSchema().load(body if isinstance(body, dict) else {})
    except ValidationError as exc:
        raise ValidationFailed(
            exc.normalized_messages(), "the support record is not valid"
        ) from None
    record = support_uc.add_support_record(orders_app().runtime, g.staff, fields_in)
    return jsonify(record.as_json()), 201


@bp.get("/support-records")
@staff_required()
def support_records():
    """The support records of an order (with its account's) or of an account, latest first."""
    order_id = request.args.get("order_id") or None
    account_id = request.args.get("account_id") or None
    if not order_id and not account_id:
        raise ValidationFailed({"order_id": ["order_id or account_id is required"]})
    found = support_uc.support_records(orders_app().runtime, order_id, account_id)
    return jsonify({"items": [r.as_json() for r in found]})


@bp.get("/orders")
@staff_required(ADMIN)
def orders_by_email():
    """Admins only: the orders of a customer's e-mail address (the order's or its account's)."""
    found = support_uc.orders_by_email(orders_app().runtime, request.args.get("email", ""))
    return jsonify({"items": [_order_json(o) for o in found]})


@bp.get("/orders/<reference>")
@staff_required()
def find_order(reference: str):
    """An order by id or number, without personal data (the support console's search)."""
    order = orders_uc.find_order(orders_app().runtime, reference)
    if order is None:
        return error_response(404, "no such order")
    return jsonify(_order_json(order))
