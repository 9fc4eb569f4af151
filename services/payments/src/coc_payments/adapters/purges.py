"""What the retention schedule's purge runs change in the payments schema, through the unit of
work: the raw bodies and headers of old provider notifications (the row stays: provider, time,
outcome); and what an account's erasure empties of its orders' rows: those bodies, the bank labels
kept for review, the company's name and address VIES answered."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from . import tables

EMPTIED = b""


class PurgeRepository:
    def __init__(self, uow):
        self.uow = uow

    def empty_callbacks(self, before: datetime) -> int:
        t = tables.callbacks
        where = (t.c.received_at < before, t.c.body != EMPTIED)
        count = self.uow.execute(select(func.count()).select_from(t).where(*where)).scalar_one()
        if count:
            self.uow.change(t, {"body": EMPTIED, "headers": {}}, *where)
        return count

    def orders_of(self, account_id: str) -> list[str]:
        """The account's orders that a payment was due for."""
        t = tables.payments_due
        query = select(t.c.order_id).where(t.c.account_id == account_id)
        return list(self.uow.execute(query).scalars())

    def empty_for_orders(self, order_ids: list[str]) -> dict[str, int]:
        """Counts per category of the rows of these orders emptied."""
        if not order_ids:
            return {}
        c, r, v = tables.callbacks, tables.review_items, tables.vat_checks
        emptied = {}
        for category, table, where, values in (
            (
                "provider_callbacks",
                c,
                (c.c.order_id.in_(order_ids), c.c.body != EMPTIED),
                {"body": EMPTIED, "headers": {}},
            ),
            (
                "review_labels",
                r,
                (r.c.order_id.in_(order_ids), r.c.label.is_not(None)),
                {"label": None},
            ),
            (
                "vat_check_answers",
                v,
                (v.c.order_id.in_(order_ids), (v.c.name.is_not(None)) | (v.c.address.is_not(None))),
                {"name": None, "address": None},
            ),
        ):
            count = self.uow.execute(
                select(func.count()).select_from(table).where(*where)
            ).scalar_one()
            if count:
                self.uow.change(table, values, *where)
            emptied[category] = count
        return emptied
