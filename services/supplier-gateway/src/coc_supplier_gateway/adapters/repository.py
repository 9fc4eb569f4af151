"""Reading the domain values through a unit of work, and registering their writes."""

from __future__ import annotations

from sqlalchemy import select

from coc_shared.envelope import utcnow

from ..domain.model import SupplierRequest
from . import tables

_STATE = ("brand", "order_placed", "paid", "documents_completed", "status")


class SupplierRequestRepository:
    def __init__(self, uow):
        self.uow = uow
        self._stored: set[str] = set()  # requests read from the database (saved by an update)

    def get(self, order_id: str, for_update: bool = False) -> SupplierRequest | None:
        t = tables.supplier_requests
        query = select(t.c.order_id, t.c.document_ids, *(t.c[f] for f in _STATE)).where(
            t.c.order_id == order_id
        )
        if for_update:
            query = query.with_for_update()
        row = self.uow.execute(query).first()
        if row is None:
            return None
        values = dict(row._mapping)
        values["document_ids"] = tuple(values["document_ids"] or ())
        self._stored.add(order_id)
        return SupplierRequest(**values)

    def get_or_new(self, order_id: str) -> SupplierRequest:
        return self.get(order_id, for_update=True) or SupplierRequest(order_id=order_id)

    def save(self, request: SupplierRequest) -> None:
        t = tables.supplier_requests
        now = utcnow()
        values = {f: getattr(request, f) for f in _STATE}
        values["document_ids"] = list(request.document_ids)
        if request.order_id in self._stored:
            self.uow.change(t, {**values, "updated_at": now}, t.c.order_id == request.order_id)
        else:
            self.uow.add(
                t, {"order_id": request.order_id, **values, "created_at": now, "updated_at": now}
            )
            self._stored.add(request.order_id)
