"""What the retention schedule's purge runs change in the payments schema, through the unit of
work: the raw bodies and headers of old provider notifications (the row stays: provider, time,
outcome)."""

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
