"""Reading the domain values through a unit of work, and registering their writes."""

from __future__ import annotations

from sqlalchemy import select

from coc_shared.envelope import utcnow

from ..domain.model import PENDING, WITHDRAWN, ConsentWithdrawal, DeactivationRequest
from . import tables


class DeactivationRequestRepository:
    def __init__(self, uow):
        self.uow = uow

    def add(self, request: DeactivationRequest) -> None:
        self.uow.add(
            tables.deactivation_requests,
            {
                "account_id": request.account_id,
                "event_id": request.event_id,
                "requested_at": request.requested_at,
                "due_by": request.due_by,
                "status": request.status,
                "received_at": utcnow(),
            },
        )

    def pending_for(self, account_id: str) -> DeactivationRequest | None:
        t = tables.deactivation_requests
        row = self.uow.execute(
            select(t.c.account_id, t.c.event_id, t.c.requested_at, t.c.status)
            .where(t.c.account_id == account_id, t.c.status == PENDING)
            .order_by(t.c.id)
            .limit(1)
        ).first()
        return DeactivationRequest(**row._mapping) if row is not None else None

    def for_account(self, account_id: str) -> list[DeactivationRequest]:
        t = tables.deactivation_requests
        rows = self.uow.execute(
            select(t.c.account_id, t.c.event_id, t.c.requested_at, t.c.status)
            .where(t.c.account_id == account_id)
            .order_by(t.c.id)
        ).all()
        return [DeactivationRequest(**r._mapping) for r in rows]


class ConsentRepository:
    def __init__(self, uow):
        self.uow = uow

    def add_withdrawal(self, withdrawal: ConsentWithdrawal) -> bool:
        """Recorded once per event (a repeated delivery inserts nothing)."""
        return self.uow.claim(
            tables.marketing_consents,
            {
                "event_id": withdrawal.event_id,
                "account_id": withdrawal.account_id,
                "address_sha256": withdrawal.address_sha256,
                "purpose": withdrawal.purpose,
                "status": WITHDRAWN,
                "changed_at": withdrawal.changed_at,
                "source": withdrawal.source,
                "recorded_at": utcnow(),
            },
        )
