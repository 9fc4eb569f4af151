"""Reading and writing the domain values on a connection (the caller owns the transaction)."""
from __future__ import annotations

from sqlalchemy import Connection, insert, select, update

from coc_shared.envelope import utcnow

from ..domain.model import PERSONAL_FIELDS, Notification
from . import orm

_FIELDS = ("event_id", "event_type", "template", "order_id", "account_id", "recipient_email", "status",
           "confirmation_url")


class NotificationRepository:
    def __init__(self, conn: Connection):
        self.conn = conn

    def add(self, notification: Notification) -> bool:
        """Record ``notification`` unless its event made one already; True when it was new."""
        t = orm.notifications
        if self.conn.execute(select(t.c.id).where(t.c.event_id == notification.event_id)).first() is not None:
            return False
        self.conn.execute(insert(t).values(**{f: getattr(notification, f) for f in _FIELDS}, created_at=utcnow()))
        return True

    def erase_personal_data(self, account_id: str) -> int:
        """Erase what the notifications of ``account_id`` keep of personal data; returns the rows changed."""
        t = orm.notifications
        return self.conn.execute(update(t).where(t.c.account_id == account_id)
                                 .values(**{f: None for f in PERSONAL_FIELDS})).rowcount

    def account_deactivated(self, account_id: str) -> bool:
        """True when the account's deactivation was recorded (its personal data is erased)."""
        t = orm.notifications
        return self.conn.execute(select(t.c.id).where(t.c.account_id == account_id,
                                                      t.c.event_type == "account.deactivated")).first() is not None

    def for_order(self, order_id: str) -> list[Notification]:
        t = orm.notifications
        rows = self.conn.execute(select(*(t.c[f] for f in _FIELDS)).where(t.c.order_id == order_id).order_by(t.c.id))
        return [Notification(**r._mapping) for r in rows]

    def for_account(self, account_id: str) -> list[Notification]:
        t = orm.notifications
        rows = self.conn.execute(select(*(t.c[f] for f in _FIELDS)).where(t.c.account_id == account_id)
                                 .order_by(t.c.id))
        return [Notification(**r._mapping) for r in rows]
