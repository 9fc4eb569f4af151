"""Staff routes of stuck orders and of the orders' states the console's reconciliation reads
(staff tokens; no personal data)."""

from __future__ import annotations

from flask import jsonify, request
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from coc_shared.guards import InputRefused
from coc_shared.http import staff_required
from coc_shared.openapi import STAFF_SECURITY, errors

from ..domain.stuck import STATUS_OF_STATE
from ..service_layer import stuck as stuck_uc
from .context import orders_app

blp = Blueprint(
    "order_checks",
    __name__,
    url_prefix="/v1/staff",
    description="Stuck orders and every order's state (support staff)",
)


class StuckOrderSchema(Schema):
    order_id = fields.String(required=True)
    order_number = fields.String(required=True)
    state = fields.String(required=True, metadata={"description": "one of ``states``"})
    status = fields.String(required=True)
    since = fields.DateTime(required=True)
    deadline = fields.DateTime(required=True)
    reported_at = fields.DateTime(
        required=True, allow_none=True, metadata={"description": "when order.stuck was emitted"}
    )


class StuckOrdersSchema(Schema):
    states = fields.List(fields.String(), required=True)
    items = fields.List(fields.Nested(StuckOrderSchema), required=True)
    next_after = fields.Integer(
        required=True, allow_none=True, metadata={"description": "the next page's after"}
    )


class OrderStateSchema(Schema):
    order_id = fields.String(required=True)
    number = fields.String(required=True)
    status = fields.String(required=True)
    updated_at = fields.DateTime(required=True)


class OrderStatesSchema(Schema):
    items = fields.List(fields.Nested(OrderStateSchema), required=True)
    next_after = fields.Integer(
        required=True, allow_none=True, metadata={"description": "the next page's after"}
    )


def _page_parameters(max_limit: int, extra: tuple = ()) -> list[dict]:
    """The query's ``after`` (the last page's ``next_after``) and ``limit``, documented."""
    return [
        {"in": "query", "name": "after", "schema": {"type": "integer", "minimum": 0}},
        {
            "in": "query",
            "name": "limit",
            "schema": {"type": "integer", "minimum": 1, "maximum": max_limit},
        },
        *extra,
    ]


def _whole(name: str, default: str, low: int, high: int, problems: dict) -> int:
    value = request.args.get(name, default)
    if not value.isdigit() or not low <= int(value) <= high:
        problems[name] = [f"Must be a whole number from {low} to {high}."]
        return low
    return int(value)


def _page_query(default_limit: str, max_limit: int) -> tuple[int, int]:
    """(after, limit) of the query string; 400 naming each bad parameter."""
    problems: dict = {}
    after = _whole("after", "0", 0, 10**15, problems)
    limit = _whole("limit", default_limit, 1, max_limit, problems)
    if problems:
        raise InputRefused(400, "invalid query", problems)
    return after, limit


@blp.route("/orders/stuck", methods=["GET"])
@blp.doc(
    security=STAFF_SECURITY,
    summary="Orders past their state's deadline now, by number, each with when it was reported",
    parameters=_page_parameters(
        1000, ({"in": "query", "name": "order_id", "schema": {"type": "string"}},)
    ),
)
@blp.response(200, StuckOrdersSchema)
@errors(blp, 400, 401, 403, 503)
@staff_required()
def stuck_orders():
    """Orders past their state's deadline now, by number, each with when it was reported."""
    after, limit = _page_query("100", 1000)
    order_id = request.args.get("order_id") or None
    app = orders_app()
    found, cursor = stuck_uc.list_stuck(
        app.runtime, app.config.deadlines, limit=limit, after_seq=after, order_id=order_id
    )
    return jsonify(
        {
            "states": sorted(STATUS_OF_STATE),
            "items": [
                {
                    **s.event_data(),
                    "reported_at": s.reported_at.isoformat() if s.reported_at else None,
                }
                for s in found
            ],
            "next_after": cursor,
        }
    )


@blp.route("/order-states", methods=["GET"])
@blp.doc(
    security=STAFF_SECURITY,
    summary="Every order's status, a page at a time by number",
    parameters=_page_parameters(1000),
)
@blp.response(200, OrderStatesSchema)
@errors(blp, 400, 401, 403, 503)
@staff_required()
def order_states():
    """Every order's status, a page at a time by number (``after``: the last page's
    ``next_after``)."""
    after, limit = _page_query("500", 1000)
    items, cursor = stuck_uc.order_states(orders_app().runtime, after, limit)
    for item in items:
        item["updated_at"] = item["updated_at"].isoformat()
    return jsonify({"items": items, "next_after": cursor})
