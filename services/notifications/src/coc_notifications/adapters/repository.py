"""Reading the domain values through a unit of work, and registering their writes."""

from __future__ import annotations

from sqlalchemy import select

from coc_shared.envelope import utcnow

from ..domain.model import PERSONAL_FIELDS, Notification
from . import tables

_FIELDS = (
    "event_id",
    "event_type",
    "template",
    "order_id",
    "account_id",
    "recipient_email",
    "status",
    "confirmation_url",
)


class NotificationRepository:
    def __init__(self, uow):
        self.uow = uow

    def exists(self, event_id: str) -> bool:
        t = tables.notifications
        return self.uow.execute(select(t.c.id).where(t.c.event_id == event_id)).first() is not None

    def add(self, notification: Notification) -> None:
        self.uow.add(
            tables.notifications,
            {**{f: getattr(notification, f) for f in _FIELDS}, "created_at": utcnow()},
        )

    def erase_personal_data(self, account_id: str) -> None:
        """Erase what the notifications of ``account_id`` keep of personal data."""
        t = tables.notifications
        self.uow.change(t, {f: None for f in PERSONAL_FIELDS}, t.c.account_id == account_id)

    def account_deactivated(self, account_id: str) -> bool:
        """True when the account's deactivation was recorded (its personal data is erased)."""
        t = tables.notifications
        return (
            self.uow.execute(
                select(t.c.id).where(
                    t.c.account_id == account_id, t.c.event_type == "account.deactivated"
                )
            ).first()
            is not None
        )

    def for_order(self, order_id: str) -> list[Notification]:
        t = tables.notifications
        rows = self.uow.execute(
            select(*(t.c[f] for f in _FIELDS)).where(t.c.order_id == order_id).order_by(t.c.id)
        )
        return [Notification(**r._mapping) for r in rows]

    def for_account(self, account_id: str) -> list[Notification]:
        t = tables.notifications
        rows = self.uow.execute(
            select(*(t.c[f] for f in _FIELDS)).where(t.c.account_id == account_id).order_by(t.c.id)
        )
        return [Notification(**r._mapping) for r in rows]
