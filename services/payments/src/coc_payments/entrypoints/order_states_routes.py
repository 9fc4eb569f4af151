"""``POST /v1/staff/order-states``: what payments says of a batch of orders (the support
console's reconciliation compares it with the orders service's and the supplier gateway's)."""

from __future__ import annotations

from flask import jsonify
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from coc_shared.http import staff_required
from coc_shared.openapi import STAFF_SECURITY, errors
from coc_shared.order_states import OrderIdsSchema

from ..service_layer import order_states as order_states_uc

blp = Blueprint(
    "payments_order_states",
    __name__,
    url_prefix="/v1/staff",
    description="Orders' states for the reconciliation (support staff)",
)


class PaymentStateSchema(Schema):
    order_id = fields.String(required=True)
    payment = fields.String(
        allow_none=True, metadata={"description": "due | failed | paid | cancelled; null: none"}
    )
    paid_at = fields.DateTime(allow_none=True)
    invoice = fields.String(allow_none=True, metadata={"description": "its number, if any"})
    refunded_cents = fields.Integer(metadata={"description": "completed refunds, in cents"})


class PaymentStatesSchema(Schema):
    items = fields.List(fields.Nested(PaymentStateSchema), required=True)


@blp.route("/order-states", methods=["POST"])
@blp.doc(
    security=STAFF_SECURITY,
    summary="What payments says of a batch of orders (absent: never heard of)",
)
@blp.arguments(OrderIdsSchema)
@blp.response(200, PaymentStatesSchema)
@errors(blp, 400, 401, 403, 422, 503)
@staff_required()
def order_states(body):
    from .routes import parts

    return jsonify({"items": order_states_uc.order_states(parts().payments, body["order_ids"])})
