"""The stuck-order detector's reads and its record of what was reported (``tables.stuck_reports``:
one row per order, state and since, so each is reported once)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select

from coc_shared.values import as_utc

from ..domain.stuck import OrderProgress, StuckOrder
from . import tables


def _utc(value):
    return as_utc(value) if value is not None else None


class StuckRepository:
    def __init__(self, uow):
        self.uow = uow

    def candidates(
        self,
        waits: dict[str, timedelta],
        now: datetime,
        limit: int,
        after_seq: int = 0,
        order_id: str | None = None,
    ) -> list[OrderProgress]:
        """Orders (by number, after ``after_seq``) whose status is watched and that entered it
        longer ago than the shortest wait of that status (``Deadlines.earliest_by_status``): the
        rules decide among them."""
        o, e = tables.orders, tables.order_events
        entered = (
            select(func.max(e.c.occurred_at))
            .where(e.c.order_id == o.c.id, e.c.outcome == "applied", e.c.status_after == o.c.status)
            .scalar_subquery()
        )
        promise = (
            select(func.max(e.c.occurred_at))
            .where(e.c.order_id == o.c.id, e.c.event_type == "supplier.request_overdue")
            .scalar_subquery()
        )
        entered_or_placed = func.coalesce(entered, o.c.placed_at)

        def since(status: str):  # as domain.stuck.state_of counts it (a lower bound when paid)
            return o.c.placed_at if status == "placed" else entered_or_placed

        query = (
            select(
                o.c.id,
                o.c.seq,
                o.c.placed_at,
                o.c.status,
                o.c.documents_completed_at,
                entered.label("entered_at"),
                promise.label("promise_passed_at"),
            )
            .where(
                o.c.seq > after_seq,
                or_(*(and_(o.c.status == s, since(s) <= now - wait) for s, wait in waits.items())),
            )
            .order_by(o.c.seq)
            .limit(limit)
        )
        if order_id is not None:
            query = query.where(o.c.id == order_id)
        return [
            OrderProgress(
                order_id=r.id,
                seq=r.seq,
                placed_at=as_utc(r.placed_at),
                status=r.status,
                entered_at=_utc(r.entered_at),
                documents_completed_at=_utc(r.documents_completed_at),
                promise_passed_at=_utc(r.promise_passed_at),
            )
            for r in self.uow.execute(query).all()
        ]

    def reported(self, order_ids: list[str]) -> dict[tuple, datetime]:
        """(order id, state, since) -> when it was reported, for ``order_ids``."""
        if not order_ids:
            return {}
        t = tables.stuck_reports
        rows = self.uow.execute(
            select(t.c.order_id, t.c.state, t.c.since, t.c.reported_at).where(
                t.c.order_id.in_(order_ids)
            )
        ).all()
        return {(r.order_id, r.state, as_utc(r.since)): as_utc(r.reported_at) for r in rows}

    def record(self, found: StuckOrder, event_id: str, now: datetime) -> None:
        self.uow.add(
            tables.stuck_reports,
            {
                "order_id": found.order_id,
                "state": found.state,
                "since": found.since,
                "deadline": found.deadline,
                "event_id": event_id,
                "reported_at": now,
            },
        )


def order_states(uow, after_seq: int, limit: int) -> list[dict]:
    """Orders by number after ``after_seq``: id, number's parts and status (what the console's
    reconciliation compares with the other services' records)."""
    o = tables.orders
    rows = uow.execute(
        select(o.c.id, o.c.seq, o.c.placed_at, o.c.status, o.c.updated_at)
        .where(o.c.seq > after_seq)
        .order_by(o.c.seq)
        .limit(limit)
    ).all()
    return [
        {**r._mapping, "placed_at": as_utc(r.placed_at), "updated_at": as_utc(r.updated_at)}
        for r in rows
    ]
