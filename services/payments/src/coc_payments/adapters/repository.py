"""Reading and writing the domain values on a connection (the caller owns the transaction)."""
from __future__ import annotations

from sqlalchemy import Connection, insert, select

from coc_shared.envelope import utcnow

from ..domain.model import AccountDeactivation, PaymentDue
from . import orm


class PaymentDueRepository:
    def __init__(self, conn: Connection):
        self.conn = conn

    def add(self, due: PaymentDue, event_id: str) -> bool:
        """Record ``due`` unless its order has one already; True when it was new."""
        t = orm.payments_due
        if self.conn.execute(select(t.c.order_id).where(t.c.order_id == due.order_id)).first() is not None:
            return False
        self.conn.execute(insert(t).values(
            order_id=due.order_id, order_number=due.order_number, method=due.method,
            amount_cents=due.amount_cents, currency=due.currency, status=due.status, event_id=event_id,
            created_at=utcnow()))
        return True

    def get(self, order_id: str) -> PaymentDue | None:
        t = orm.payments_due
        row = self.conn.execute(select(t.c.order_id, t.c.order_number, t.c.method, t.c.amount_cents, t.c.currency,
                                       t.c.status).where(t.c.order_id == order_id)).first()
        return PaymentDue(**row._mapping) if row is not None else None


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
