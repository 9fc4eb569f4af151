"""What payments holds of a batch of orders, for the console's reconciliation: the payment due's
status, the invoice (issued or numbered) and the money refunded."""

from __future__ import annotations

from sqlalchemy import func, select, union_all

from coc_shared.values import as_utc

from . import tables


def payment_states(uow, order_ids: list[str]) -> dict[str, dict]:
    due, docs, to_issue, refunds = (
        tables.payments_due,
        tables.billing_documents,
        tables.invoices_to_issue,
        tables.refunds,
    )
    found: dict[str, dict] = {}
    for r in uow.execute(
        select(due.c.order_id, due.c.status, due.c.paid_at).where(due.c.order_id.in_(order_ids))
    ).all():
        found[r.order_id] = {
            "payment": r.status,
            "paid_at": as_utc(r.paid_at).isoformat() if r.paid_at else None,
            "invoice": None,
            "refunded_cents": 0,
        }
    invoices = union_all(
        select(docs.c.order_id, docs.c.number).where(
            docs.c.kind == "invoice", docs.c.order_id.in_(order_ids)
        ),
        select(to_issue.c.order_id, to_issue.c.number).where(to_issue.c.order_id.in_(order_ids)),
    )
    for r in uow.execute(invoices).all():
        found.setdefault(r.order_id, _nothing())["invoice"] = r.number
    for r in uow.execute(
        select(refunds.c.order_id, func.sum(refunds.c.amount_cents).label("cents"))
        .where(refunds.c.order_id.in_(order_ids), refunds.c.status == "completed")
        .group_by(refunds.c.order_id)
    ).all():
        found.setdefault(r.order_id, _nothing())["refunded_cents"] = int(r.cents)
    return found


def _nothing() -> dict:
    return {"payment": None, "paid_at": None, "invoice": None, "refunded_cents": 0}
