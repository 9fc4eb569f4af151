"""The console's pages of orders that need a look: "Stuck orders" (past their state's deadline,
as the orders service lists them) and "Disagreements" (the reconciliation of what orders,
payments and the supplier gateway say of the same orders). Signed-in staff, read only."""

from __future__ import annotations

from flask import Blueprint, g, request

from ..domain.reconciliation import KINDS
from ..service_layer import reconciliation
from .routes import client, page, signed_in

bp = Blueprint("order_checks", __name__, template_folder="../templates")


@bp.get("/stuck")
@signed_in
def stuck_page():
    after = reconciliation.page_after(request.args.get("after"))
    found = reconciliation.stuck_orders(client(), g.staff, after=after)
    return page("stuck.html", items=found["items"], next_after=found["next_after"])


@bp.get("/disagreements")
@signed_in
def disagreements_page():
    settle = reconciliation.settle_of(request.args.get("settle_minutes"))
    after = reconciliation.page_after(request.args.get("after"))
    result = reconciliation.reconcile(
        client(),
        g.staff,
        settle=settle,
        page=reconciliation.PAGE,
        after=after,
        max_orders=reconciliation.PAGE_VIEW_ORDERS,
    )
    minutes = int(settle.total_seconds() // 60)
    return page(
        "disagreements.html", result=result, kinds=KINDS, settle_minutes=minutes, after=after
    )
