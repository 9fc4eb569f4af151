"""What the retention schedule's purge runs find and change in the orders schema, through the unit
of work: the client traces of old orders, and the documents of orders whose certificate the
supplier issued long enough ago."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select

from . import tables
from .repository import DocumentRepository, StoredDocument

CERTIFICATE_ISSUED = "certificate.received"


class PurgeRepository:
    def __init__(self, uow):
        self.uow = uow

    def clear_client_traces(self, before: datetime) -> int:
        """IP address and user agent of the orders placed before ``before``; returns how many."""
        o = tables.orders
        where = (o.c.placed_at < before, or_(o.c.client_ip.isnot(None), o.c.user_agent.isnot(None)))
        count = self.uow.execute(select(func.count()).select_from(o).where(*where)).scalar_one()
        if count:
            self.uow.change(o, {"client_ip": None, "user_agent": None}, *where)
        return count

    def delete_support_records(self, before: datetime) -> int:
        """Support records of contacts before ``before``; returns how many."""
        s = tables.support_records
        where = s.c.contacted_at < before
        count = self.uow.execute(select(func.count()).select_from(s).where(where)).scalar_one()
        if count:
            self.uow.remove(s, where)
        return count

    def documents_issued_before(self, before: datetime, limit: int = 500) -> list[StoredDocument]:
        """Documents not erased yet of orders whose certificate was issued before ``before``."""
        e = tables.order_events
        issued = select(e.c.order_id).where(
            e.c.event_type == CERTIFICATE_ISSUED, e.c.occurred_at < before
        )
        return DocumentRepository(self.uow).not_erased(
            tables.order_documents.c.order_id.in_(issued), limit=limit
        )
