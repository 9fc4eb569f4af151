"""``POST /v1/staff/order-states``: the supplier requests of a batch of orders (the support
console's reconciliation compares them with the orders service's and payments' records)."""

from __future__ import annotations

from flask import jsonify
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from coc_shared.http import current_runtime, staff_required
from coc_shared.openapi import STAFF_SECURITY, errors
from coc_shared.order_states import OrderIdsSchema

from ..domain.model import STATUSES
from ..service_layer import order_states as order_states_uc

blp = Blueprint(
    "supplier_gateway_order_states",
    __name__,
    url_prefix="/v1/staff",
    description="Orders' states for the reconciliation (support staff)",
)


class RequestStateSchema(Schema):
    order_id = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": list(STATUSES)})
    supplier = fields.String(allow_none=True)
    sent_at = fields.DateTime(allow_none=True)
    issued_at = fields.DateTime(allow_none=True, metadata={"description": "certificate issued"})
    shipped_at = fields.DateTime(allow_none=True)
    delivered_at = fields.DateTime(allow_none=True)


class RequestStatesSchema(Schema):
    items = fields.List(fields.Nested(RequestStateSchema), required=True)


@blp.route("/order-states", methods=["POST"])
@blp.doc(
    security=STAFF_SECURITY,
    summary="The supplier requests of a batch of orders (absent: the order has none)",
)
@blp.arguments(OrderIdsSchema)
@blp.response(200, RequestStatesSchema)
@errors(blp, 400, 401, 403, 422, 503)
@staff_required()
def order_states(body):
    items = order_states_uc.order_states(current_runtime(), body["order_ids"])
    return jsonify({"items": items})
