"""What the orders service erases of an account (``account.erasure_requested``), as writes on the
unit of work: the account itself, its pending e-mail changes and idempotency records, its support
records, and the personal part of its orders, which stay as pseudonymised evidence (no account, no
name, no address, no IP address: the vehicle, the dates and the amounts)."""

from __future__ import annotations

from sqlalchemy import func, select

from . import tables


class AccountErasureRepository:
    def __init__(self, uow):
        self.uow = uow

    def _count(self, table, *where) -> int:
        return self.uow.execute(select(func.count()).select_from(table).where(*where)).scalar_one()

    def erase_account(self, account_id: str):
        """Registers the erasure; returns the rows it touches per category, and when the
        account's last order was placed (None: it has none)."""
        a, e, k, o = tables.accounts, tables.email_changes, tables.idempotency_keys, tables.orders
        s = tables.support_records
        # support records of the account and of its orders (a guest's order is erased as the
        # account of its own id)
        support = (
            (s.c.account_id == account_id)
            | (s.c.order_id == account_id)
            | s.c.order_id.in_(select(o.c.id).where(o.c.account_id == account_id))
        )
        counts = {
            "account": self._count(a, a.c.id == account_id),
            "email_changes": self._count(e, e.c.account_id == account_id),
            "order_personal_data": self._count(o, o.c.account_id == account_id),
            "support_records": self._count(s, support),
        }
        last_placed = self.uow.execute(
            select(func.max(o.c.placed_at)).where(o.c.account_id == account_id)
        ).scalar_one()
        self.uow.remove(s, support)  # before the orders lose their account (below)
        self.uow.remove(e, e.c.account_id == account_id)
        self.uow.remove(k, k.c.scope == account_id)
        self.uow.change(
            o,
            {
                "account_id": None,
                "customer": {},
                "shipping_address": {},
                "billing_address": None,
                "company": None,
                "client_ip": None,
                "user_agent": None,
            },
            o.c.account_id == account_id,
        )
        self.uow.remove(a, a.c.id == account_id)
        return counts, last_placed
