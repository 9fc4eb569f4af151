"""Staff routes of stuck orders and of the orders' states the console's reconciliation reads
(staff tokens; no personal data)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from coc_shared.guards import InputRefused
from coc_shared.http import staff_required

from ..domain.stuck import STATUS_OF_STATE
from ..service_layer import stuck as stuck_uc
from .context import orders_app

bp = Blueprint("orders_stuck", __name__, url_prefix="/v1/staff")


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


@bp.get("/orders/stuck")
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


@bp.get("/order-states")
@staff_required()
def order_states():
    """Every order's status, a page at a time by number (``after``: the last page's
    ``next_after``)."""
    after, limit = _page_query("500", 1000)
    items, cursor = stuck_uc.order_states(orders_app().runtime, after, limit)
    for item in items:
        item["updated_at"] = item["updated_at"].isoformat()
    return jsonify({"items": items, "next_after": cursor})
