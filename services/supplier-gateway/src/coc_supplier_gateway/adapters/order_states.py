"""What the gateway holds of a batch of orders, for the console's reconciliation: the supplier
request's status and the moments it was sent, got its certificate, shipped and delivered."""

from __future__ import annotations

from sqlalchemy import select

from coc_shared.values import as_utc

from . import tables

MOMENTS = ("sent_at", "issued_at", "shipped_at", "delivered_at")


def request_states(uow, order_ids: list[str]) -> list[dict]:
    t = tables.supplier_requests
    rows = uow.execute(
        select(t.c.order_id, t.c.status, t.c.supplier, *(t.c[m] for m in MOMENTS)).where(
            t.c.order_id.in_(order_ids)
        )
    ).all()
    return [
        {
            "order_id": r.order_id,
            "status": r.status,
            "supplier": r.supplier,
            **{m: as_utc(r._mapping[m]).isoformat() if r._mapping[m] else None for m in MOMENTS},
        }
        for r in rows
    ]
