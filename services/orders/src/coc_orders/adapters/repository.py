"""Reading and writing the domain values on a connection (the caller owns the transaction)."""
from __future__ import annotations

from sqlalchemy import Connection, insert, select

from coc_shared.envelope import utcnow

from ..domain.model import AccountDeactivation, OrderEvent
from . import orm


class OrderEventRepository:
    def __init__(self, conn: Connection):
        self.conn = conn

    def add(self, order_event: OrderEvent) -> bool:
        """Record ``order_event`` unless it is recorded already; True when it was new."""
        t = orm.order_events
        if self.conn.execute(select(t.c.id).where(t.c.event_id == order_event.event_id)).first() is not None:
            return False
        self.conn.execute(insert(t).values(
            event_id=order_event.event_id, order_id=order_event.order_id, event_type=order_event.event_type,
            occurred_at=order_event.occurred_at, recorded_at=utcnow()))
        return True

    def for_order(self, order_id: str) -> list[OrderEvent]:
        t = orm.order_events
        rows = self.conn.execute(select(t.c.order_id, t.c.event_id, t.c.event_type, t.c.occurred_at)
                                 .where(t.c.order_id == order_id).order_by(t.c.occurred_at, t.c.id)).all()
        return [OrderEvent(order_id=r.order_id, event_id=r.event_id, event_type=r.event_type,
                           occurred_at=r.occurred_at) for r in rows]


class AccountDeactivationRepository:
    def __init__(self, conn: Connection):
        self.conn = conn

    def add(self, deactivation: AccountDeactivation) -> bool:
        """Record the deactivation of an account once; True when it was new."""
        t = orm.account_deactivations
        if self.conn.execute(select(t.c.account_id).where(t.c.account_id == deactivation.account_id)).first():
            return False
        self.conn.execute(insert(t).values(account_id=deactivation.account_id, event_id=deactivation.event_id,
                                           erased_at=deactivation.erased_at, recorded_at=utcnow()))
        return True
