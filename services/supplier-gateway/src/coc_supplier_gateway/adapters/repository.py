"""Reading the domain values through a unit of work, and registering their writes."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from sqlalchemy import and_, func, or_, select

from coc_shared.envelope import utcnow
from coc_shared.values import as_utc

from ..domain.model import CANCELLED, DELIVERED, SupplierRequest
from . import tables

_FIELDS = [f.name for f in dataclasses.fields(SupplierRequest)]
_TUPLES = ("document_ids", "documents")


def _request(row) -> SupplierRequest:
    values = dict(row._mapping)
    for name in _TUPLES:
        values[name] = tuple(values[name] or ())
    values["vehicle_extra"] = values["vehicle_extra"] or {}
    for name, value in values.items():
        if isinstance(value, datetime):
            values[name] = as_utc(value)
    return SupplierRequest(**values)


class SupplierRequestRepository:
    def __init__(self, uow):
        self.uow = uow
        self._stored: set[str] = set()  # requests read from the database (saved by an update)

    def _query(self):
        t = tables.supplier_requests
        return select(*(t.c[f] for f in _FIELDS))

    def get(self, order_id: str, for_update: bool = False) -> SupplierRequest | None:
        query = self._query().where(tables.supplier_requests.c.order_id == order_id)
        if for_update:
            query = query.with_for_update()
        row = self.uow.execute(query).first()
        if row is None:
            return None
        self._stored.add(order_id)
        return _request(row)

    def get_or_new(self, order_id: str) -> SupplierRequest:
        return self.get(order_id, for_update=True) or SupplierRequest(order_id=order_id)

    def of_request_id(self, request_id: str, for_update: bool = True):
        """(the order's request, the round of ``request_id``) or (None, None) for an unknown id."""
        ids = tables.supplier_request_ids
        known = self.uow.execute(
            select(ids.c.order_id, ids.c.round).where(ids.c.request_id == request_id)
        ).first()
        if known is None:
            return None, None
        return self.get(known.order_id, for_update=for_update), known.round

    def of_account(self, account_id: str) -> list[SupplierRequest]:
        t = tables.supplier_requests
        rows = self.uow.execute(
            self._query().where(t.c.account_id == account_id).with_for_update()
        ).all()
        for row in rows:
            self._stored.add(row.order_id)
        return [_request(r) for r in rows]

    def ended_with_personal_data(self, before, limit: int = 500) -> list[SupplierRequest]:
        """Delivered or cancelled requests last changed before ``before`` that still hold the
        customer's name or address (the retention schedule's ``order_customer``)."""
        t = tables.supplier_requests
        rows = self.uow.execute(
            self._query()
            .where(
                t.c.status.in_((DELIVERED, CANCELLED)),
                t.c.updated_at < before,
                t.c.personal_erased_at.is_(None),
                or_(t.c.customer_name.isnot(None), t.c.shipping_address.isnot(None)),
            )
            .limit(limit)
            .with_for_update()
        ).all()
        for row in rows:
            self._stored.add(row.order_id)
        return [_request(r) for r in rows]

    def list(
        self,
        status: str | None = None,
        supplier: str | None = None,
        overdue: bool | None = None,
        limit: int = 100,
    ) -> list[SupplierRequest]:
        t = tables.supplier_requests
        query = self._query()
        if status:
            query = query.where(t.c.status == status)
        if supplier:
            query = query.where(t.c.supplier == supplier)
        if overdue is not None:
            late = and_(t.c.overdue_at.is_not(None), t.c.status.in_(("sent", "accepted")))
            query = query.where(late if overdue else or_(t.c.overdue_at.is_(None), ~late))
        return [
            _request(r)
            for r in self.uow.execute(query.order_by(t.c.updated_at.desc()).limit(limit))
        ]

    def due_for(
        self,
        column: str,
        now: datetime,
        statuses: tuple[str, ...],
        limit: int = 100,
        unannounced: bool = False,
    ):
        """Requests in ``statuses`` whose ``column`` time has come, locked (SKIP LOCKED);
        ``unannounced``: not yet announced overdue."""
        t = tables.supplier_requests
        query = (
            self._query()
            .where(t.c.status.in_(statuses), t.c[column].is_not(None), t.c[column] <= now)
            .order_by(t.c[column])
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if unannounced:
            query = query.where(t.c.overdue_at.is_(None))
        rows = self.uow.execute(query).all()
        for row in rows:
            self._stored.add(row.order_id)
        return [_request(r) for r in rows]

    def save(self, request: SupplierRequest) -> None:
        t = tables.supplier_requests
        now = utcnow()
        values = {f: getattr(request, f) for f in _FIELDS if f != "order_id"}
        for name in _TUPLES:
            values[name] = [dict(v) if isinstance(v, dict) else v for v in values[name]]
        if request.order_id in self._stored:
            self.uow.change(t, {**values, "updated_at": now}, t.c.order_id == request.order_id)
        else:
            self.uow.add(
                t, {"order_id": request.order_id, **values, "created_at": now, "updated_at": now}
            )
            self._stored.add(request.order_id)

    def mark_sent(self, order_ids: list[str], now: datetime, due_at: datetime) -> None:
        """Requests handed to their supplier at ``now`` (one statement for a batch)."""
        t = tables.supplier_requests
        self.uow.change(
            t,
            {"status": "sent", "sent_at": now, "due_at": due_at, "updated_at": now},
            t.c.order_id.in_(order_ids),
        )

    def add_request_id(self, request: SupplierRequest, now: datetime) -> None:
        self.uow.add(
            tables.supplier_request_ids,
            {
                "request_id": request.request_id,
                "order_id": request.order_id,
                "round": request.round,
                "supplier": request.supplier,
                "created_at": now,
            },
        )


class HistoryRepository:
    def __init__(self, uow):
        self.uow = uow

    def add(
        self,
        request: SupplierRequest,
        what: str,
        detail: dict | None = None,
        actor: str = "gateway",
        at: datetime | None = None,
    ) -> None:
        self.uow.add(
            tables.supplier_request_history,
            {
                "order_id": request.order_id,
                "request_id": request.request_id,
                "at": at or utcnow(),
                "what": what,
                "detail": detail,
                "actor": actor,
            },
        )

    def of(self, order_id: str) -> list[dict]:
        t = tables.supplier_request_history
        rows = self.uow.execute(
            select(t.c.at, t.c.what, t.c.request_id, t.c.detail, t.c.actor)
            .where(t.c.order_id == order_id)
            .order_by(t.c.id)
        ).all()
        return [{**r._mapping, "at": as_utc(r.at)} for r in rows]


class DispatchRepository:
    def __init__(self, uow):
        self.uow = uow

    def add(self, request: SupplierRequest, channel: str, kind: str, now: datetime) -> None:
        self.uow.add(
            tables.supplier_dispatches,
            {
                "order_id": request.order_id,
                "request_id": request.request_id,
                "supplier": request.supplier,
                "channel": channel,
                "kind": kind,
                "created_at": now,
                "next_attempt_at": now,
                "attempts": 0,
            },
        )

    def claim(self, channel: str, now: datetime, limit: int, supplier: str | None = None):
        """Due rows of ``channel`` with their request, both locked (SKIP LOCKED): [(dispatch,
        request)], at most one per order."""
        d, r = tables.supplier_dispatches, tables.supplier_requests
        query = (
            select(
                d.c.id,
                d.c.kind,
                d.c.attempts,
                d.c.request_id.label("dispatch_request_id"),
                *(r.c[f] for f in _FIELDS),
            )
            .select_from(d.join(r, r.c.order_id == d.c.order_id))
            .where(
                d.c.channel == channel,
                d.c.sent_at.is_(None),
                d.c.cancelled_at.is_(None),
                d.c.next_attempt_at <= now,
            )
            .order_by(d.c.next_attempt_at, d.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=(d, r))
        )
        if supplier is not None:
            query = query.where(d.c.supplier == supplier)
        claimed, seen = [], set()
        for row in self.uow.execute(query).all():
            if row.order_id in seen:
                continue  # the other row of this order waits for the next batch
            seen.add(row.order_id)
            values = {k: v for k, v in row._mapping.items() if k in _FIELDS}
            dispatch = {
                "id": row.id,
                "kind": row.kind,
                "attempts": row.attempts,
                "request_id": row.dispatch_request_id,
            }
            claimed.append((dispatch, _request(_Row(values))))
        return claimed

    def mark_sent(self, ids: list[int], now: datetime) -> None:
        if ids:
            d = tables.supplier_dispatches
            self.uow.change(d, {"sent_at": now}, d.c.id.in_(ids))

    def cancel(self, ids: list[int], now: datetime, why: str) -> None:
        if ids:
            d = tables.supplier_dispatches
            self.uow.change(d, {"cancelled_at": now, "last_error": why}, d.c.id.in_(ids))

    def failed(self, dispatch: dict, error: str, next_attempt_at: datetime) -> None:
        d = tables.supplier_dispatches
        self.uow.change(
            d,
            {
                "attempts": dispatch["attempts"] + 1,
                "last_error": error[:2000],
                "next_attempt_at": next_attempt_at,
            },
            d.c.id == dispatch["id"],
        )

    def pending(self, order_id: str) -> list[dict]:
        d = tables.supplier_dispatches
        rows = self.uow.execute(
            select(d.c.id, d.c.kind, d.c.attempts, d.c.last_error, d.c.next_attempt_at).where(
                d.c.order_id == order_id, d.c.sent_at.is_(None), d.c.cancelled_at.is_(None)
            )
        ).all()
        return [dict(r._mapping) for r in rows]

    def count_unsent(self) -> int:
        d = tables.supplier_dispatches
        return self.uow.execute(
            select(func.count()).where(d.c.sent_at.is_(None), d.c.cancelled_at.is_(None))
        ).scalar_one()


class _Row:
    def __init__(self, mapping: dict):
        self._mapping = mapping


class ReplyRepository:
    def __init__(self, uow):
        self.uow = uow

    def claim(self, reply_id: str, request_id: str, order_id: str, supplier: str, kind: str, via):
        """True the first time ``reply_id`` is seen (the row is written now: ON CONFLICT)."""
        return self.uow.claim(
            tables.supplier_replies,
            {
                "reply_id": reply_id,
                "request_id": request_id,
                "order_id": order_id,
                "supplier": supplier,
                "kind": kind,
                "via": via,
                "received_at": utcnow(),
                "outcome": "received",
            },
        )

    def outcome(self, reply_id: str, outcome: str) -> None:
        t = tables.supplier_replies
        self.uow.change(t, {"outcome": outcome}, t.c.reply_id == reply_id)

    def known(self, reply_id: str) -> str | None:
        t = tables.supplier_replies
        return self.uow.execute(
            select(t.c.outcome).where(t.c.reply_id == reply_id)
        ).scalar_one_or_none()
