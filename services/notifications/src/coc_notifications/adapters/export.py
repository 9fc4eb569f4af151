"""What the notifications service holds of an export's subject (``account.export_requested``),
per category of the retention schedule: the recipient of its orders' mails, the mails (template,
status, dates, the masked address; bodies are never kept) and the marketing contact of its
addresses (consent given, withdrawn). Reads only."""

from __future__ import annotations

from sqlalchemy import or_, select

from coc_shared.export import ExportSubject

from ..domain.model import address_hash
from . import tables


def collect(uow, subject: ExportSubject) -> dict[str, list]:
    r, m, c = tables.order_recipients, tables.mails, tables.contacts
    mine = [r.c.order_id.in_(subject.order_ids)] if subject.order_ids else []
    if subject.account_id:
        mine.append(r.c.account_id == subject.account_id)
    recipients = uow.execute(
        select(r.c.order_id, r.c.order_number, r.c.email, r.c.first_name, r.c.created_at).where(
            or_(*mine)
        )
    ).all()
    order_ids = [row.order_id for row in recipients] or list(subject.order_ids)
    of_mails = [m.c.order_id.in_(order_ids)] if order_ids else []
    if subject.account_id:
        of_mails.append(m.c.account_id == subject.account_id)
    mails = uow.execute(
        select(
            m.c.order_id, m.c.template, m.c.status, m.c.address_masked, m.c.created_at, m.c.sent_at
        )
        .where(or_(*of_mails))
        .order_by(m.c.id)
    ).all()
    hashes = sorted({address_hash(row.email) for row in recipients if row.email})
    of_contacts = [c.c.address_hash.in_(hashes)] if hashes else []
    if subject.account_id:
        of_contacts.append(c.c.account_id == subject.account_id)
    contacts = (
        uow.execute(
            select(c.c.email, c.c.consented_at, c.c.withdrawn_at, c.c.updated_at).where(
                or_(*of_contacts)
            )
        ).all()
        if of_contacts
        else []
    )
    return {
        "mail_recipients": [
            *(dict(row._mapping) for row in recipients if row.email),
            *(dict(row._mapping) for row in mails),
        ],
        "marketing_contact": [dict(row._mapping) for row in contacts],
    }
