"""Support records in the orders schema, through the unit of work; and the admins' search of
orders by the customer's e-mail address (the order's own, or its account's)."""

from __future__ import annotations

from sqlalchemy import or_, select

from ..domain.support import SupportRecord
from . import tables
from .repository import _ORDER_COLUMNS, _to_order

_RECORD_COLUMNS = (
    "id",
    "order_id",
    "account_id",
    "channel",
    "summary",
    "staff",
    "staff_role",
    "contacted_at",
    "recorded_at",
)


class SupportRecordRepository:
    def __init__(self, uow):
        self.uow = uow

    def add(self, record: SupportRecord) -> None:
        self.uow.add(tables.support_records, {c: getattr(record, c) for c in _RECORD_COLUMNS})

    def about(self, order_id: str | None, account_id: str | None, limit: int = 200):
        """The records of the order and of its account (either may be None), latest first."""
        t = tables.support_records
        clauses = [t.c.order_id == order_id] if order_id else []
        clauses += [t.c.account_id == account_id] if account_id else []
        if not clauses:
            return []
        rows = self.uow.execute(
            select(t).where(or_(*clauses)).order_by(t.c.contacted_at.desc(), t.c.id).limit(limit)
        ).all()
        return [SupportRecord(**r._mapping) for r in rows]


class OrderSearchRepository:
    def __init__(self, uow):
        self.uow = uow

    def by_customer_email(self, email: str, limit: int = 50):
        """Orders whose customer's address is ``email`` or whose account's is (case ignored),
        newest first; each side of the OR is an index look-up (ix_orders_customer_email; the
        accounts' ix_accounts_email_lower, then ix_orders_account_id)."""
        o, a = tables.orders, tables.accounts
        address = email.strip().lower()
        accounts = select(a.c.id).where(tables.ACCOUNT_EMAIL == address)
        query = (
            select(*_ORDER_COLUMNS)
            .where(or_(tables.ORDER_CUSTOMER_EMAIL == address, o.c.account_id.in_(accounts)))
            .order_by(o.c.seq.desc())
            .limit(limit)
        )
        rows = self.uow.execute(query).all()
        return [_to_order(r) for r in rows]
