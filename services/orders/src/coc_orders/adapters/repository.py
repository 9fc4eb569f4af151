"""Reading and writing the domain values through a unit of work (``coc_shared.unit_of_work``: a
use case's ``runtime.unit_of_work()``, or a handler's context).

Reads run at once (``uow.execute``, which first writes what is registered, so it is cheaper to
read before registering); writes are registered (``uow.add``, ``uow.change``, ``uow.remove``) and
written at the unit's flush or commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select

from coc_shared.envelope import utcnow
from coc_shared.ids import BlockAllocator
from coc_shared.values import as_utc

from ..domain.model import Order, OrderDocument, OrderEvent, Refund
from . import tables


def order_numbers(engine: Engine, block_size: int = 100) -> BlockAllocator:
    """The allocator of order numbers (``orders.seq``): one per process, built at start."""
    return BlockAllocator(
        engine, tables.id_blocks, tables.ORDER_NUMBER_SERIES, block_size=block_size
    )


class OrderEventRepository:
    """The order's timeline: each event of its story, once, with what it did to the order."""

    def __init__(self, uow):
        self.uow = uow

    def seen(self, event_id: str) -> bool:
        t = tables.order_events
        return self.uow.execute(select(t.c.id).where(t.c.event_id == event_id)).first() is not None

    def add(self, order_event: OrderEvent, outcome: str, status_after: str | None) -> None:
        """Register ``order_event`` (the caller knows it is new: ``seen``, or emitted here)."""
        self.uow.add(
            tables.order_events,
            {
                "event_id": order_event.event_id,
                "order_id": order_event.order_id,
                "event_type": order_event.event_type,
                "occurred_at": order_event.occurred_at,
                "recorded_at": utcnow(),
                "outcome": outcome,
                "status_after": status_after,
            },
        )

    def timeline(self, order_id: str) -> list[dict]:
        t = tables.order_events
        rows = self.uow.execute(
            select(t.c.event_id, t.c.event_type, t.c.occurred_at, t.c.outcome, t.c.status_after)
            .where(t.c.order_id == order_id)
            .order_by(t.c.occurred_at, t.c.id)
        ).all()
        return [{**r._mapping, "occurred_at": as_utc(r.occurred_at)} for r in rows]


_ORDER_FIELDS = (
    "id",
    "status",
    "placed_at",
    "payment_method",
    "brand",
    "vin",
    "first_registration_date",
    "vehicle_extra",
    "total_cents",
    "currency",
    "vat_rate",
    "vat_cents",
    "documents_required",
    "marketing_consent",
    "customer",
    "shipping_address",
    "billing_address",
    "company",
    "account_id",
    "access_token_sha256",
    "documents_completed_at",
    "seq",
    "vat_regime",
    "vat_check",
)
_ORDER_COLUMNS = [tables.orders.c[f] for f in _ORDER_FIELDS]


def _to_order(row) -> Order:
    order = Order(**row._mapping)
    order.placed_at = as_utc(order.placed_at)
    order.documents_completed_at = as_utc(order.documents_completed_at)
    return order


class OrderRepository:
    def __init__(self, uow):
        self.uow = uow

    def add(self, order: Order, client_ip: str | None, user_agent: str | None) -> None:
        """Register a new order (its ``seq`` drawn already: ``order_numbers``)."""
        values = {f: getattr(order, f) for f in _ORDER_FIELDS}
        values.update(
            updated_at=order.placed_at,
            client_ip=client_ip,
            user_agent=(user_agent or "")[:500] or None,
        )
        self.uow.add(tables.orders, values)

    def get(self, order_id: str, lock: bool = False) -> Order | None:
        """The order, or None; ``lock``: row-locked until the unit's end (PostgreSQL; SQLite's
        write transactions are serialised anyway)."""
        query = select(*_ORDER_COLUMNS).where(tables.orders.c.id == order_id)
        if lock:
            query = query.with_for_update()
        row = self.uow.execute(query).first()
        return _to_order(row) if row is not None else None

    def by_seq(self, seq: int) -> Order | None:
        """The order numbered ``seq`` (its number is COC-<year>-<seq>), or None."""
        row = self.uow.execute(select(*_ORDER_COLUMNS).where(tables.orders.c.seq == seq)).first()
        return _to_order(row) if row is not None else None

    def for_account(self, account_id: str, limit: int = 100) -> list[Order]:
        query = (
            select(*_ORDER_COLUMNS)
            .where(tables.orders.c.account_id == account_id)
            .order_by(tables.orders.c.seq.desc())
            .limit(limit)
        )
        return [_to_order(r) for r in self.uow.execute(query)]

    def save_status(self, order: Order) -> None:
        """Register what the order's life changes: status, documents required, completion."""
        self.uow.change(
            tables.orders,
            {
                "status": order.status,
                "documents_completed_at": order.documents_completed_at,
                "documents_required": list(order.documents_required),
                "updated_at": utcnow(),
            },
            tables.orders.c.id == order.id,
        )


_REFUND_FIELDS = (
    "refund_id",
    "order_id",
    "amount_cents",
    "currency",
    "reason",
    "credit_note_number",
    "status",
    "requested_at",
    "completed_at",
)


class RefundRepository:
    """The refunds of orders' money (``Refund``), by refund id."""

    def __init__(self, uow):
        self.uow = uow

    def get(self, refund_id: str) -> Refund | None:
        t = tables.order_refunds
        row = self.uow.execute(
            select(*[t.c[f] for f in _REFUND_FIELDS]).where(t.c.refund_id == refund_id)
        ).first()
        if row is None:
            return None
        refund = Refund(**row._mapping)
        refund.requested_at = as_utc(refund.requested_at)
        refund.completed_at = as_utc(refund.completed_at)
        return refund

    def add(self, refund: Refund) -> None:
        self.uow.add(tables.order_refunds, {f: getattr(refund, f) for f in _REFUND_FIELDS})

    def save(self, refund: Refund) -> None:
        t = tables.order_refunds
        self.uow.change(
            t,
            {f: getattr(refund, f) for f in _REFUND_FIELDS if f != "refund_id"},
            t.c.refund_id == refund.refund_id,
        )


class DocumentRepository:
    def __init__(self, uow):
        self.uow = uow

    def add(self, document: OrderDocument, storage_key: str) -> None:
        self.uow.add(
            tables.order_documents,
            {
                "id": document.id,
                "order_id": document.order_id,
                "kind": document.kind,
                "content_type": document.content_type,
                "size": document.size,
                "sha256": document.sha256,
                "storage_key": storage_key,
                "uploaded_at": document.uploaded_at,
            },
        )

    def for_order(self, order_id: str) -> list[OrderDocument]:
        t = tables.order_documents
        rows = self.uow.execute(
            select(
                t.c.id,
                t.c.order_id,
                t.c.kind,
                t.c.content_type,
                t.c.size,
                t.c.sha256,
                t.c.uploaded_at,
                t.c.rejected_at,
            )
            .where(t.c.order_id == order_id)
            .order_by(t.c.uploaded_at, t.c.id)
        ).all()
        return [
            OrderDocument(
                **{
                    **r._mapping,
                    "uploaded_at": as_utc(r.uploaded_at),
                    "rejected_at": as_utc(r.rejected_at),
                }
            )
            for r in rows
        ]

    def for_orders(self, order_ids: list[str]) -> dict[str, list[OrderDocument]]:
        """The documents of several orders at once, by order id."""
        found: dict[str, list[OrderDocument]] = {order_id: [] for order_id in order_ids}
        if not order_ids:
            return found
        t = tables.order_documents
        rows = self.uow.execute(
            select(
                t.c.id,
                t.c.order_id,
                t.c.kind,
                t.c.content_type,
                t.c.size,
                t.c.sha256,
                t.c.uploaded_at,
                t.c.rejected_at,
            )
            .where(t.c.order_id.in_(order_ids))
            .order_by(t.c.uploaded_at, t.c.id)
        ).all()
        for r in rows:
            found[r.order_id].append(
                OrderDocument(
                    **{
                        **r._mapping,
                        "uploaded_at": as_utc(r.uploaded_at),
                        "rejected_at": as_utc(r.rejected_at),
                    }
                )
            )
        return found

    def reject(self, documents: list[OrderDocument], at: datetime) -> None:
        """Register that these documents no longer count (refused by the supplier)."""
        if documents:
            t = tables.order_documents
            self.uow.change(t, {"rejected_at": at}, t.c.id.in_([d.id for d in documents]))

    def stored(self, document_id: str) -> StoredDocument | None:
        """A document with where its file is and its order's status (for a supplier's link)."""
        d, o = tables.order_documents, tables.orders
        row = self.uow.execute(
            select(
                d.c.id,
                d.c.order_id,
                d.c.kind,
                d.c.content_type,
                d.c.storage_key,
                d.c.erased_at,
                o.c.status.label("order_status"),
            )
            .select_from(d.join(o, o.c.id == d.c.order_id))
            .where(d.c.id == document_id)
        ).first()
        return StoredDocument(**row._mapping) if row is not None else None

    def not_erased(self, *where, limit: int | None = None) -> list[StoredDocument]:
        """The documents not erased yet that match ``where`` (on order_documents and orders)."""
        d, o = tables.order_documents, tables.orders
        query = (
            select(
                d.c.id,
                d.c.order_id,
                d.c.kind,
                d.c.content_type,
                d.c.storage_key,
                d.c.erased_at,
                o.c.status.label("order_status"),
            )
            .select_from(d.join(o, o.c.id == d.c.order_id))
            .where(d.c.erased_at.is_(None), *where)
        )
        rows = self.uow.execute(query.limit(limit) if limit else query).all()
        return [StoredDocument(**r._mapping) for r in rows]

    def of_account(self, account_id: str) -> list[StoredDocument]:
        """The documents not erased yet of the account's orders."""
        return self.not_erased(tables.orders.c.account_id == account_id)

    def erase(self, documents: list[StoredDocument], at: datetime) -> None:
        """Register that these documents' files are erased (their links no longer open them)."""
        if documents:
            t = tables.order_documents
            self.uow.change(t, {"erased_at": at}, t.c.id.in_([d.id for d in documents]))

    def record_download(self, document: StoredDocument, supplier: str, client_ip: str) -> None:
        self.uow.add(
            tables.document_downloads,
            {
                "document_id": document.id,
                "order_id": document.order_id,
                "supplier": supplier,
                "downloaded_at": utcnow(),
                "client_ip": client_ip[:64],
            },
        )


@dataclass(frozen=True)
class StoredDocument:
    id: str
    order_id: str
    kind: str
    content_type: str
    storage_key: str
    erased_at: datetime | None
    order_status: str


@dataclass(frozen=True)
class IdempotencyRecord:
    """What a first ``POST /v1/orders`` with an Idempotency-Key left for its retries."""

    scope: str
    key: str
    request_sha256: str
    order_id: str
    secret: bytes | None  # the guest's access token, encrypted
    created_at: datetime


class IdempotencyRepository:
    def __init__(self, uow):
        self.uow = uow

    def get(self, scope: str, key: str) -> IdempotencyRecord | None:
        t = tables.idempotency_keys
        row = self.uow.execute(
            select(
                t.c.scope, t.c.key, t.c.request_sha256, t.c.order_id, t.c.secret, t.c.created_at
            ).where(t.c.scope == scope, t.c.key == key)
        ).first()
        if row is None:
            return None
        return IdempotencyRecord(**{**row._mapping, "created_at": as_utc(row.created_at)})

    def add(self, record: IdempotencyRecord) -> None:
        self.uow.add(
            tables.idempotency_keys,
            {
                "scope": record.scope,
                "key": record.key,
                "request_sha256": record.request_sha256,
                "order_id": record.order_id,
                "secret": record.secret,
                "created_at": record.created_at,
            },
        )

    def remove(self, record: IdempotencyRecord) -> None:
        t = tables.idempotency_keys
        self.uow.remove(t, t.c.scope == record.scope, t.c.key == record.key)


class AccountRepository:
    def __init__(self, uow):
        self.uow = uow

    def by_email(self, email: str):
        t = tables.accounts
        return self.uow.execute(select(t).where(func.lower(t.c.email) == email.lower())).first()

    def get(self, account_id: str):
        t = tables.accounts
        return self.uow.execute(select(t).where(t.c.id == account_id)).first()

    def add(self, account_id: str, email: str, password_hash: str, profile: dict) -> None:
        now = utcnow()
        self.uow.add(
            tables.accounts,
            {
                "id": account_id,
                "email": email,
                "password_hash": password_hash,
                "profile": profile,
                "created_at": now,
                "updated_at": now,
                "last_activity_at": now,
            },
        )

    def update(self, account_id: str, **values) -> None:
        self.uow.change(
            tables.accounts, {"updated_at": utcnow(), **values}, tables.accounts.c.id == account_id
        )

    def active(self, account_id: str, at: datetime, **values) -> None:
        """An action of the owner (log-in, order, change): the clock of inactivity starts again,
        and a warning sent before no longer counts."""
        self.update(account_id, last_activity_at=at, **values)

    def add_email_change(
        self, token_sha256: str, account_id: str, new_email: str, expires_at: datetime
    ) -> None:
        self.uow.add(
            tables.email_changes,
            {
                "token_sha256": token_sha256,
                "account_id": account_id,
                "new_email": new_email,
                "created_at": utcnow(),
                "expires_at": expires_at,
            },
        )

    def pending_email_change(self, account_id: str):
        t = tables.email_changes
        return self.uow.execute(
            select(t)
            .where(
                t.c.account_id == account_id, t.c.confirmed_at.is_(None), t.c.expires_at > utcnow()
            )
            .order_by(t.c.created_at.desc())
            .limit(1)
        ).first()

    def email_change(self, token_sha256: str):
        t = tables.email_changes
        return self.uow.execute(select(t).where(t.c.token_sha256 == token_sha256)).first()

    def confirm_email_change(self, token_sha256: str) -> None:
        t = tables.email_changes
        self.uow.change(t, {"confirmed_at": utcnow()}, t.c.token_sha256 == token_sha256)
