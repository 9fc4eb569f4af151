"""Reading the domain values through a unit of work (or a handler's context), and registering
their writes. No SQL text: SQLAlchemy Core on the ``Table`` objects, the same on PostgreSQL and
SQLite (``with_for_update(skip_locked=True)`` is a no-op where the dialect has no row locks)."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime

from sqlalchemy import func, or_, select

from coc_shared.envelope import utcnow

from ..domain.model import (
    DROPPED,
    PENDING,
    SENT,
    Contact,
    Mail,
    OrderRecipient,
    address_hash,
)
from . import tables

_MAIL_COLUMNS = [f.name for f in fields(Mail) if f.name != "id"]
_RECIPIENT_COLUMNS = {
    "order_id",
    "order_number",
    "account_id",
    "payment_method",
    "total_cents",
    "currency",
    "documents_required",
    "email",
    "first_name",
    "erase_after",
}
_PERSONAL_MAIL_COLUMNS = ("to_address", "to_name", "secret_url", "data")


def _mail(row) -> Mail:
    values = dict(row._mapping)
    values.pop("created_at", None)
    values.pop("sent_at", None)
    return Mail(**values)


class MailRepository:
    def __init__(self, uow):
        self.uow = uow

    # recording
    def add(self, mail: Mail, now: datetime | None = None) -> bool:
        """Record a mail to send unless the same (source, template, recipient) is recorded: True
        when it is new. Runs at once (``INSERT … ON CONFLICT DO NOTHING``)."""
        now = now or utcnow()
        row = {c: getattr(mail, c) for c in _MAIL_COLUMNS}
        row["next_attempt_at"] = mail.next_attempt_at or now
        row["created_at"] = now
        return self.uow.claim(tables.mails, row)

    def add_many(self, mails: list[Mail], now: datetime | None = None) -> None:
        """Register new mails (a campaign's: their keys are new)."""
        now = now or utcnow()
        self.uow.add(
            tables.mails,
            [
                {
                    **{c: getattr(m, c) for c in _MAIL_COLUMNS},
                    "next_attempt_at": m.next_attempt_at or now,
                    "created_at": now,
                }
                for m in mails
            ],
        )

    def recorded_for_order(self, order_id: str, event_types: tuple[str, ...]) -> bool:
        """Whether a mail (of any status) was recorded for one of ``event_types`` of the order."""
        t = tables.mails
        query = (
            select(t.c.id).where(t.c.order_id == order_id, t.c.event_type.in_(event_types)).limit(1)
        )
        return self.uow.execute(query).first() is not None

    # the sender
    def claim_due(self, now: datetime, limit: int) -> list[Mail]:
        """Pending mails whose time has come, locked for this transaction; rows another sender
        holds are skipped (``FOR UPDATE SKIP LOCKED``)."""
        t = tables.mails
        query = (
            select(t.c.id, *(t.c[c] for c in _MAIL_COLUMNS))
            .where(t.c.status == PENDING, t.c.next_attempt_at <= now)
            .order_by(t.c.next_attempt_at, t.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return [_mail(r) for r in self.uow.execute(query)]

    def save(self, mail: Mail, now: datetime | None = None) -> None:
        """Register the sender's (or staff's) decision about a claimed mail."""
        t = tables.mails
        values = {
            "status": mail.status,
            "attempts": mail.attempts,
            "next_attempt_at": mail.next_attempt_at,
            "last_answer": mail.last_answer,
            "message_id": mail.message_id,
            "address_hash": mail.address_hash,
            "address_masked": mail.address_masked,
            **{c: getattr(mail, c) for c in _PERSONAL_MAIL_COLUMNS},
        }
        if mail.status == SENT:
            values["sent_at"] = now or utcnow()
        self.uow.change(t, values, t.c.id == mail.id)

    # staff
    def get(self, mail_id: int, lock: bool = False) -> Mail | None:
        t = tables.mails
        query = select(t.c.id, *(t.c[c] for c in _MAIL_COLUMNS)).where(t.c.id == mail_id)
        row = self.uow.execute(query.with_for_update() if lock else query).first()
        return _mail(row) if row else None

    def listing(
        self,
        status: str | None = None,
        template: str | None = None,
        order_id: str | None = None,
        limit: int = 100,
    ) -> list[dict]:
        """Mails for staff: no body, no address (its masked form), newest first."""
        t = tables.mails
        query = select(
            t.c.id,
            t.c.source_id,
            t.c.event_type,
            t.c.template,
            t.c.kind,
            t.c.order_id,
            t.c.status,
            t.c.attempts,
            t.c.next_attempt_at,
            t.c.last_answer,
            t.c.message_id,
            t.c.address_masked,
            t.c.created_at,
            t.c.sent_at,
        )
        if status:
            query = query.where(t.c.status == status)
        if template:
            query = query.where(t.c.template == template)
        if order_id:
            query = query.where(t.c.order_id == order_id)
        rows = self.uow.execute(query.order_by(t.c.id.desc()).limit(limit))
        return [dict(r._mapping) for r in rows]

    def for_order(self, order_id: str) -> list[Mail]:
        t = tables.mails
        rows = self.uow.execute(
            select(t.c.id, *(t.c[c] for c in _MAIL_COLUMNS))
            .where(t.c.order_id == order_id)
            .order_by(t.c.id)
        )
        return [_mail(r) for r in rows]

    # erasure
    def erase_for_account(self, account_id: str, order_ids: list[str]) -> None:
        """The account's pending mails are dropped (nothing personal kept), and what its other
        mails kept of their recipient (hash, masked form, the address of a failed one) erased."""
        t = tables.mails
        mine = (
            or_(t.c.account_id == account_id, t.c.order_id.in_(order_ids))
            if order_ids
            else t.c.account_id == account_id
        )
        self.uow.change(
            t,
            {
                "status": DROPPED,
                "last_answer": "the account was deactivated",
                **{c: None for c in _PERSONAL_MAIL_COLUMNS},
            },
            mine,
            t.c.status == PENDING,
        )
        self.uow.change(
            t,
            {"address_hash": None, "address_masked": None}
            | {c: None for c in _PERSONAL_MAIL_COLUMNS},
            mine,
            t.c.status != PENDING,
        )

    def counts(self) -> dict[str, int]:
        t = tables.mails
        rows = self.uow.execute(select(t.c.status, func.count()).group_by(t.c.status))
        return {status: count for status, count in rows}


class RecipientRepository:
    def __init__(self, uow):
        self.uow = uow

    def add(self, recipient: OrderRecipient) -> bool:
        row = {c: getattr(recipient, c) for c in _RECIPIENT_COLUMNS}
        row["created_at"] = utcnow()
        return self.uow.claim(tables.order_recipients, row)

    def get(self, order_id: str) -> OrderRecipient | None:
        t = tables.order_recipients
        row = self.uow.execute(
            select(*(t.c[c] for c in _RECIPIENT_COLUMNS), t.c.erased_at).where(
                t.c.order_id == order_id
            )
        ).first()
        if row is None:
            return None
        values = dict(row._mapping)
        erased_at = values.pop("erased_at")
        values["documents_required"] = values["documents_required"] or []
        return OrderRecipient(**values, erased=erased_at is not None)

    def get_many(self, order_ids: list[str]) -> dict[str, OrderRecipient]:
        """The recipients of several orders in one query (a sender's batch)."""
        t = tables.order_recipients
        if not order_ids:
            return {}
        rows = self.uow.execute(
            select(*(t.c[c] for c in _RECIPIENT_COLUMNS), t.c.erased_at).where(
                t.c.order_id.in_(order_ids)
            )
        )
        found = {}
        for row in rows:
            values = dict(row._mapping)
            erased_at = values.pop("erased_at")
            values["documents_required"] = values["documents_required"] or []
            found[values["order_id"]] = OrderRecipient(**values, erased=erased_at is not None)
        return found

    def orders_of_account(self, account_id: str) -> list[OrderRecipient]:
        t = tables.order_recipients
        rows = self.uow.execute(
            select(t.c.order_id).where(t.c.account_id == account_id).order_by(t.c.created_at)
        )
        return [self.get(r.order_id) for r in rows.all()]

    def schedule_erasure(self, order_id: str, after: datetime) -> None:
        t = tables.order_recipients
        self.uow.change(
            t, {"erase_after": after}, t.c.order_id == order_id, t.c.erased_at.is_(None)
        )

    def erase_for_account(self, account_id: str, at: datetime) -> None:
        t = tables.order_recipients
        self.uow.change(
            t, {"email": None, "first_name": None, "erased_at": at}, t.c.account_id == account_id
        )

    def erase_due(self, now: datetime, limit: int = 500) -> int:
        """Erase the recipients whose retention is over (none while a mail of theirs waits)."""
        t, m = tables.order_recipients, tables.mails
        waiting = select(m.c.order_id).where(m.c.status == PENDING, m.c.order_id.is_not(None))
        due = (
            self.uow.execute(
                select(t.c.order_id)
                .where(
                    t.c.erased_at.is_(None),
                    t.c.erase_after <= now,
                    t.c.order_id.not_in(waiting),
                )
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            .scalars()
            .all()
        )
        if due:
            self.uow.change(
                t, {"email": None, "first_name": None, "erased_at": now}, t.c.order_id.in_(due)
            )
        return len(due)


class ContactRepository:
    def __init__(self, uow):
        self.uow = uow

    def forget_inactive(self, before: datetime) -> int:
        """Contacts who consented and did nothing since ``before`` (the retention schedule's
        three years): forgotten. A withdrawal stays (its hash proves it)."""
        t = tables.contacts
        where = (t.c.withdrawn_at.is_(None), t.c.updated_at < before)
        count = self.uow.execute(select(func.count()).select_from(t).where(*where)).scalar_one()
        if count:
            self.uow.remove(t, *where)
        return count

    def _query(self):
        t = tables.contacts
        return select(
            t.c.id,
            t.c.address_hash,
            t.c.email,
            t.c.account_id,
            t.c.consented_at,
            t.c.withdrawn_at,
            t.c.source_event_id,
        )

    def by_address(self, email: str, lock: bool = False) -> Contact | None:
        query = self._query().where(tables.contacts.c.address_hash == address_hash(email))
        row = self.uow.execute(query.with_for_update() if lock else query).first()
        return Contact(**row._mapping) if row else None

    def get(self, contact_id: str, lock: bool = False) -> Contact | None:
        query = self._query().where(tables.contacts.c.id == contact_id)
        row = self.uow.execute(query.with_for_update() if lock else query).first()
        return Contact(**row._mapping) if row else None

    def add(self, contact: Contact) -> None:
        self.uow.add(
            tables.contacts,
            {
                "id": contact.id,
                "address_hash": contact.address_hash,
                "email": contact.email,
                "account_id": contact.account_id,
                "consented_at": contact.consented_at,
                "withdrawn_at": contact.withdrawn_at,
                "source_event_id": contact.source_event_id,
                "updated_at": utcnow(),
            },
        )

    def save(self, contact: Contact) -> None:
        t = tables.contacts
        self.uow.change(
            t,
            {
                "email": contact.email,
                "account_id": contact.account_id,
                "consented_at": contact.consented_at,
                "withdrawn_at": contact.withdrawn_at,
                "updated_at": utcnow(),
            },
            t.c.id == contact.id,
        )

    def consenting(self) -> list[Contact]:
        t = tables.contacts
        rows = self.uow.execute(
            self._query()
            .where(
                t.c.consented_at.is_not(None), t.c.withdrawn_at.is_(None), t.c.email.is_not(None)
            )
            .order_by(t.c.id)
        )
        return [Contact(**r._mapping) for r in rows]

    def erase_for_account(self, account_id: str, hashes: list[str]) -> None:
        """The account's contacts go (their consent dies with the account's data)."""
        t = tables.contacts
        mine = (
            or_(t.c.account_id == account_id, t.c.address_hash.in_(hashes))
            if hashes
            else t.c.account_id == account_id
        )
        self.uow.remove(t, mine)


class CampaignRepository:
    def __init__(self, uow):
        self.uow = uow

    def add(self, campaign_id, template, per_second, recipients, created_by, at) -> None:
        self.uow.add(
            tables.campaigns,
            {
                "id": campaign_id,
                "template": template,
                "per_second": per_second,
                "recipients": recipients,
                "created_by": created_by,
                "created_at": at,
            },
        )
