"""What the supplier gateway holds of an export's subject (``account.export_requested``), per
category of the retention schedule: the name and shipping address sent for its orders, and the
exchange with the supplier (supplier, VIN, dates, status, tracking, history). Reads only."""

from __future__ import annotations

from sqlalchemy import or_, select

from coc_shared.export import ExportSubject

from . import tables


def collect(uow, subject: ExportSubject) -> dict[str, list]:
    r, h = tables.supplier_requests, tables.supplier_request_history
    mine = [r.c.order_id.in_(subject.order_ids)] if subject.order_ids else []
    if subject.account_id:
        mine.append(r.c.account_id == subject.account_id)
    requests = uow.execute(select(r).where(or_(*mine)).order_by(r.c.created_at)).all()
    ids = [row.order_id for row in requests]
    history = (
        uow.execute(
            select(h.c.order_id, h.c.at, h.c.what, h.c.detail)
            .where(h.c.order_id.in_(ids))
            .order_by(h.c.at)
        ).all()
        if ids
        else []
    )
    evidence_columns = (
        "order_id",
        "order_number",
        "supplier",
        "status",
        "vin",
        "brand",
        "first_registration_date",
        "created_at",
        "updated_at",
    )
    return {
        "order_customer": [
            {
                "order_id": row.order_id,
                "customer_name": row.customer_name,
                "shipping_address": row.shipping_address,
            }
            for row in requests
            if row.customer_name or row.shipping_address
        ],
        "order_evidence": [
            {
                **{c: row._mapping[c] for c in evidence_columns if c in row._mapping},
                **{
                    c: row._mapping[c]
                    for c in ("carrier", "tracking_number", "shipped_at", "delivered_at")
                    if c in row._mapping
                },
            }
            for row in requests
        ]
        + [dict(item._mapping) for item in history],
    }
