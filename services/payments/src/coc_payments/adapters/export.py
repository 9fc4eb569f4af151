"""What the payments service holds of an export's subject (``account.export_requested``), per
category of the retention schedule: the invoices and credit notes of its orders (numbers, dates,
amounts) with the buyer details kept for them, and the providers' notifications about its orders
(provider, time, outcome; card data is never stored). Reads only."""

from __future__ import annotations

from sqlalchemy import or_, select

from coc_shared.export import ExportSubject

from . import tables


def collect(uow, subject: ExportSubject) -> dict[str, list]:
    s, b, c = tables.sales, tables.billing_documents, tables.callbacks
    mine = [s.c.order_id.in_(subject.order_ids)] if subject.order_ids else []
    if subject.account_id:
        mine.append(s.c.account_id == subject.account_id)
    sales = uow.execute(select(s.c.order_id, s.c.sale).where(or_(*mine))).all()
    order_ids = sorted({*subject.order_ids, *(r.order_id for r in sales)})
    documents = (
        uow.execute(
            select(
                b.c.kind,
                b.c.number,
                b.c.order_id,
                b.c.issued_at,
                b.c.currency,
                b.c.net_cents,
                b.c.vat_cents,
                b.c.total_cents,
                b.c.vat_regime,
            )
            .where(b.c.order_id.in_(order_ids))
            .order_by(b.c.issued_at)
        ).all()
        if order_ids
        else []
    )
    callbacks = (
        uow.execute(
            select(c.c.provider, c.c.received_at, c.c.verdict, c.c.outcome, c.c.order_id)
            .where(c.c.order_id.in_(order_ids))
            .order_by(c.c.received_at)
        ).all()
        if order_ids
        else []
    )
    return {
        "invoices": [
            *({"order_id": r.order_id, "buyer": r.sale} for r in sales),
            *(dict(r._mapping) for r in documents),
        ],
        "provider_callbacks": [dict(r._mapping) for r in callbacks],
    }
