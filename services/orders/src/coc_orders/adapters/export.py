"""What the orders service holds of an export's subject (``account.export_requested``), per
category of the retention schedule: the account, its orders (the customer's identity and
addresses, the vehicle and amounts, the device's IP address and user agent), the documents'
records (kind, size, dates; not the files) and the support records of the account and its orders.
Reads only."""

from __future__ import annotations

from sqlalchemy import or_, select

from coc_shared.export import ExportSubject

from . import tables


def collect(uow, subject: ExportSubject) -> dict[str, list]:
    a, o, d = tables.accounts, tables.orders, tables.order_documents
    account = []
    if subject.account_id:
        row = uow.execute(
            select(a.c.id, a.c.email, a.c.profile, a.c.created_at).where(
                a.c.id == subject.account_id
            )
        ).first()
        account = [dict(row._mapping)] if row is not None else []
    mine = [o.c.id.in_(subject.order_ids)] if subject.order_ids else []
    if subject.account_id:
        mine.append(o.c.account_id == subject.account_id)
    orders = uow.execute(select(o).where(or_(*mine)).order_by(o.c.placed_at)).all()
    ids = [r.id for r in orders]
    documents = (
        uow.execute(
            select(
                d.c.id,
                d.c.order_id,
                d.c.kind,
                d.c.content_type,
                d.c.size,
                d.c.uploaded_at,
                d.c.erased_at,
            ).where(d.c.order_id.in_(ids))
        ).all()
        if ids
        else []
    )
    s = tables.support_records
    on_subject = [s.c.order_id.in_(ids)] if ids else []
    if subject.account_id:
        on_subject.append(s.c.account_id == subject.account_id)
    support = (
        uow.execute(
            select(s.c.order_id, s.c.channel, s.c.summary, s.c.staff, s.c.contacted_at)
            .where(or_(*on_subject))
            .order_by(s.c.contacted_at, s.c.id)
        ).all()
        if on_subject
        else []
    )
    return {
        "account": account,
        "order_customer": [
            {
                "order_id": r.id,
                "customer": r.customer,
                "shipping_address": r.shipping_address,
                "billing_address": r.billing_address,
                "company": r.company,
                "marketing_consent": r.marketing_consent,
            }
            for r in orders
        ],
        "order_evidence": [
            {
                "order_id": r.id,
                "status": r.status,
                "placed_at": r.placed_at,
                "brand": r.brand,
                "vin": r.vin,
                "first_registration_date": r.first_registration_date,
                "total_cents": r.total_cents,
                "currency": r.currency,
                "payment_method": r.payment_method,
            }
            for r in orders
        ],
        "order_client_traces": [
            {"order_id": r.id, "client_ip": r.client_ip, "user_agent": r.user_agent}
            for r in orders
            if r.client_ip or r.user_agent
        ],
        "identity_documents": [dict(r._mapping) for r in documents],
        "support_records": [dict(r._mapping) for r in support],
    }


def order_ids_of_account(uow, account_id: str) -> list[str]:
    o = tables.orders
    return list(
        uow.execute(
            select(o.c.id).where(o.c.account_id == account_id).order_by(o.c.placed_at)
        ).scalars()
    )
