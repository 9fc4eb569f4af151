"""Reading and writing the domain values on a connection (the caller owns the transaction)."""
from __future__ import annotations

from sqlalchemy import Connection, insert, select, update

from coc_shared.envelope import utcnow

from ..domain.model import AccountDeactivation, SupplierRequest
from . import orm

_STATE = ("brand", "order_placed", "paid", "documents_completed", "status")


class SupplierRequestRepository:
    def __init__(self, conn: Connection):
        self.conn = conn

    def get(self, order_id: str, for_update: bool = False) -> SupplierRequest | None:
        t = orm.supplier_requests
        query = select(t.c.order_id, t.c.document_ids, *(t.c[f] for f in _STATE)).where(t.c.order_id == order_id)
        if for_update:
            query = query.with_for_update()
        row = self.conn.execute(query).first()
        if row is None:
            return None
        values = dict(row._mapping)
        values["document_ids"] = tuple(values["document_ids"] or ())
        return SupplierRequest(**values)

    def get_or_new(self, order_id: str) -> SupplierRequest:
        return self.get(order_id, for_update=True) or SupplierRequest(order_id=order_id)

    def save(self, request: SupplierRequest) -> None:
        t = orm.supplier_requests
        now = utcnow()
        values = {f: getattr(request, f) for f in _STATE}
        values["document_ids"] = list(request.document_ids)
        changed = self.conn.execute(update(t).where(t.c.order_id == request.order_id)
                                    .values(**values, updated_at=now)).rowcount
        if not changed:
            self.conn.execute(insert(t).values(order_id=request.order_id, **values, created_at=now, updated_at=now))


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
