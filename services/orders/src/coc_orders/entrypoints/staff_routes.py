"""Staff-only routes of the orders service (besides the shared parked-messages view)."""

from __future__ import annotations

from flask import g, jsonify, request
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields

from coc_shared.http import error_response, staff_required
from coc_shared.openapi import STAFF_SECURITY, errors

from ..domain.errors import ValidationFailed
from ..service_layer import orders as orders_uc
from ..service_layer import support as support_uc
from .context import orders_app

ADMIN = ("admin",)

blp = Blueprint(
    "orders_staff",
    __name__,
    url_prefix="/v1/staff",
    description="Orders and support records (support staff)",
)


class TimelineEventSchema(Schema):
    event_id = fields.String(required=True)
    event_type = fields.String(required=True)
    outcome = fields.String(required=True, allow_none=True)
    status_after = fields.String(required=True, allow_none=True)
    occurred_at = fields.DateTime(required=True)


class OrderEventsSchema(Schema):
    order_id = fields.String(required=True)
    items = fields.List(fields.Nested(TimelineEventSchema), required=True)


class SupportRecordSchema(Schema):
    id = fields.String(required=True)
    order_id = fields.String(required=True, allow_none=True)
    account_id = fields.String(required=True, allow_none=True)
    channel = fields.String(required=True, metadata={"description": "email, chat or phone"})
    summary = fields.String(required=True)
    staff = fields.String(required=True)
    staff_role = fields.String(required=True)
    contacted_at = fields.DateTime(required=True)
    recorded_at = fields.DateTime(required=True)


class SupportRecordListSchema(Schema):
    items = fields.List(fields.Nested(SupportRecordSchema), required=True)


class TotalSchema(Schema):
    amount_cents = fields.Integer(required=True)
    currency = fields.String(required=True)


class StaffOrderSchema(Schema):
    """An order as staff see it: no personal data."""

    id = fields.String(required=True)
    number = fields.String(required=True)
    status = fields.String(required=True)
    placed_at = fields.DateTime(required=True)
    payment_method = fields.String(required=True)
    total = fields.Nested(TotalSchema, required=True)
    brand = fields.String(required=True)
    account_id = fields.String(required=True, allow_none=True)


class StaffOrderListSchema(Schema):
    items = fields.List(fields.Nested(StaffOrderSchema), required=True)


def _query(name: str, description: str, required: bool = False) -> dict:
    return {
        "in": "query",
        "name": name,
        "required": required,
        "schema": {"type": "string"},
        "description": description,
    }


@blp.route("/orders/<order_id>/events", methods=["GET"])
@blp.doc(security=STAFF_SECURITY, summary="The events of an order's story as recorded")
@blp.response(200, OrderEventsSchema)
@errors(blp, 401, 403, 503)
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
    """A support record as staff send it (domain.support checks the values: an order or an
    account, the channel, a summary, a contact not in the future)."""

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


@blp.route("/support-records", methods=["POST"])
@blp.doc(
    security=STAFF_SECURITY,
    summary="Attach the record of a customer's contact (e-mail, chat, phone) to an order or "
    "account",
    requestBody={
        "required": True,
        "content": {"application/json": {"schema": SupportRecordInSchema}},
    },
)
@blp.response(201, SupportRecordSchema)
@errors(blp, 400, 401, 403, 404, 422, 503)
@staff_required()
def add_support_record():
    body = request.get_json(silent=True)
    try:
        fields_in = SupportRecordInSchema().load(body if isinstance(body, dict) else {})
    except ValidationError as exc:
        raise ValidationFailed(
            exc.normalized_messages(), "the support record is not valid"
        ) from None
    record = support_uc.add_support_record(orders_app().runtime, g.staff, fields_in)
    return jsonify(record.as_json()), 201


@blp.route("/support-records", methods=["GET"])
@blp.doc(
    security=STAFF_SECURITY,
    summary="The support records of an order (with its account's) or of an account, latest first",
    parameters=[
        _query("order_id", "an order's id (order_id or account_id is required)"),
        _query("account_id", "an account's id"),
    ],
)
@blp.response(200, SupportRecordListSchema)
@errors(blp, 400, 401, 403, 422, 503)
@staff_required()
def support_records():
    """The support records of an order (with its account's) or of an account, latest first."""
    order_id = request.args.get("order_id") or None
    account_id = request.args.get("account_id") or None
    if not order_id and not account_id:
        raise ValidationFailed({"order_id": ["order_id or account_id is required"]})
    found = support_uc.support_records(orders_app().runtime, order_id, account_id)
    return jsonify({"items": [r.as_json() for r in found]})


class OrderSearchSchema(Schema):
    """The admins' search by the customer's e-mail address: in the body, so that the address is
    in no URL (access logs, proxies, browser history)."""

    email = fields.String(required=True, metadata={"description": "the customer's e-mail address"})


@blp.route("/orders/search", methods=["POST"])
@blp.doc(
    security=STAFF_SECURITY,
    summary="Admins only: the orders of a customer's e-mail address (the order's or its account's)",
    requestBody={
        "required": True,
        "content": {"application/json": {"schema": OrderSearchSchema}},
    },
)
@blp.response(200, StaffOrderListSchema)
@errors(blp, 400, 401, 403, 422, 503)
@staff_required(ADMIN)
def orders_by_email():
    """Admins only: the orders of a customer's e-mail address (the order's or its account's)."""
    body = request.get_json(silent=True)
    try:
        search = OrderSearchSchema().load(body if isinstance(body, dict) else {})
    except ValidationError as exc:
        raise ValidationFailed(exc.normalized_messages(), "the search is not valid") from None
    found = support_uc.orders_by_email(orders_app().runtime, search["email"])
    return jsonify({"items": [_order_json(o) for o in found]})


@blp.route("/orders/<reference>", methods=["GET"])
@blp.doc(
    security=STAFF_SECURITY,
    summary="An order by id or number, without personal data (the support console's search)",
)
@blp.response(200, StaffOrderSchema)
@errors(blp, 401, 403, 404, 503)
@staff_required()
def find_order(reference: str):
    """An order by id or number, without personal data (the support console's search)."""
    order = orders_uc.find_order(orders_app().runtime, reference)
    if order is None:
        return error_response(404, "no such order")
    return jsonify(_order_json(order))
