"""Reading and writing the domain values through a unit of work (``coc_shared.unit_of_work``: a
use case's ``UnitOfWork`` or a handler's ``HandlerContext``, which share one API).

Reads run at once (``uow.execute``, which first writes what is registered, so they see it);
writes are registered (``uow.add``, ``uow.change``) and written at the next read or at the commit.
A few statements must run at once because their answer is needed: claims of a key that a
concurrent transaction may claim too (``uow.claim``) and counters.
"""

from __future__ import annotations

from sqlalchemy import bindparam, select, update

from coc_shared.envelope import utcnow
from coc_shared.transfer import creditor_reference
from coc_shared.values import as_utc

from ..domain.callbacks import Callback
from ..domain.model import OrderCancellation, PaymentDue
from ..domain.payments import PaymentReport
from . import tables

_DUE_COLUMNS = (
    "order_id",
    "order_number",
    "method",
    "amount_cents",
    "currency",
    "status",
    "account_id",
    "access_token_sha256",
    "reference",
    "correlation_id",
    "paid_provider",
    "paid_transaction_id",
)


def _due_query(column: str, lock: bool):
    t = tables.payments_due
    query = select(*[t.c[c] for c in _DUE_COLUMNS]).where(t.c[column] == bindparam("key"))
    return query.with_for_update() if lock else query


# Built once: a statement object reused with new parameters is compiled once by SQLAlchemy.
_DUE_BY = {
    (column, lock): _due_query(column, lock)
    for column in ("order_id", "order_number")
    for lock in (False, True)
}
_CLAIMED_BY = select(tables.callback_keys.c.callback_id).where(
    tables.callback_keys.c.provider == bindparam("provider"),
    tables.callback_keys.c.dedupe_key == bindparam("key"),
)


class PaymentDueRepository:
    def __init__(self, uow):
        self.uow = uow

    def add(self, due: PaymentDue, event_id: str) -> bool:
        """Record ``due`` unless its order has one already; True when it was new."""
        t = tables.payments_due
        if (
            self.uow.execute(select(t.c.order_id).where(t.c.order_id == due.order_id)).first()
            is not None
        ):
            return False
        reference = due.reference
        if (
            reference
            and self.uow.execute(select(t.c.order_id).where(t.c.reference == reference)).first()
        ):
            # Order numbers are unique; should one come twice, the order id still gives a unique
            # reference.
            reference = creditor_reference(due.order_id)
        self.uow.add(
            t,
            {
                "order_id": due.order_id,
                "order_number": due.order_number,
                "method": due.method,
                "amount_cents": due.amount_cents,
                "currency": due.currency,
                "status": due.status,
                "event_id": event_id,
                "account_id": due.account_id,
                "access_token_sha256": due.access_token_sha256,
                "reference": reference,
                "correlation_id": due.correlation_id,
                "created_at": utcnow(),
            },
        )
        return True

    def _one(self, column: str, key: str, lock: bool) -> PaymentDue | None:
        row = self.uow.execute(_DUE_BY[column, lock], {"key": key}).first()
        return PaymentDue(**row._mapping) if row is not None else None

    def get(self, order_id: str, lock: bool = False) -> PaymentDue | None:
        return self._one("order_id", order_id, lock)

    def by_number(self, order_number: str, lock: bool = False) -> PaymentDue | None:
        return self._one("order_number", order_number, lock)

    def by_reference(self, references: list[str], lock: bool = False) -> PaymentDue | None:
        if not references:
            return None
        t = tables.payments_due
        found = self.uow.execute(
            select(t.c.order_id, t.c.reference).where(t.c.reference.in_(references))
        ).all()
        if not found:
            return None
        best = max(
            found, key=lambda r: len(r.reference)
        )  # the longest valid reference named in the label
        return self.get(best.order_id, lock=lock)

    def save(self, before: PaymentDue, after: PaymentDue) -> None:
        """Register the change from ``before`` (read under the row lock) to ``after`` (what the
        domain made of it), guarded by the status that was read."""
        t = tables.payments_due
        values = {"status": after.status}
        if (after.paid_provider, after.paid_transaction_id) != (
            before.paid_provider,
            before.paid_transaction_id,
        ):
            values.update(
                paid_provider=after.paid_provider,
                paid_transaction_id=after.paid_transaction_id,
                paid_at=utcnow(),
            )
        self.uow.change(t, values, t.c.order_id == before.order_id, t.c.status == before.status)


class OrderCancellationRepository:
    def __init__(self, uow):
        self.uow = uow

    def add(self, cancellation: OrderCancellation) -> bool:
        """Record the cancellation of an order once; True when it was new."""
        if self.cancelled(cancellation.order_id):
            return False
        self.uow.add(
            tables.order_cancellations,
            {
                "order_id": cancellation.order_id,
                "event_id": cancellation.event_id,
                "cancelled_by": cancellation.cancelled_by,
                "cancelled_at": cancellation.cancelled_at,
                "recorded_at": utcnow(),
            },
        )
        return True

    def cancelled(self, order_id: str) -> bool:
        t = tables.order_cancellations
        return (
            self.uow.execute(select(t.c.order_id).where(t.c.order_id == order_id)).first()
            is not None
        )


class ConfirmationRepository:
    """The payment that confirmed each order (its primary key makes a second one impossible)."""

    def __init__(self, uow):
        self.uow = uow

    def add(
        self, order_id: str, report: PaymentReport, callback_id: int | None, event_id: str
    ) -> None:
        self.uow.add(
            tables.confirmations,
            {
                "order_id": order_id,
                "provider": report.provider,
                "provider_transaction_id": report.provider_transaction_id,
                "amount_cents": report.amount_cents,
                "currency": report.currency,
                "callback_id": callback_id,
                "event_id": event_id,
                "confirmed_at": utcnow(),
            },
        )


class CallbackRepository:
    def __init__(self, uow):
        self.uow = uow

    def add(self, callback: Callback) -> None:
        """The callback's audit row, with its final verdict (written once)."""
        self.uow.add(
            tables.callbacks,
            {
                "id": callback.id,
                "provider": callback.provider,
                "received_at": callback.received_at,
                "headers": callback.headers,
                "body": callback.body,
                "verdict": callback.verdict,
                "detail": callback.detail or None,
                "dedupe_key": callback.dedupe_key,
                "order_id": callback.order_id,
                "outcome": callback.outcome,
            },
        )

    def claim(self, provider: str, dedupe_key: str, callback_id: int) -> int | None:
        """Claim a notification id for ``callback_id`` (at once); None when the claim is ours, else
        the id of the callback that claimed it first. A concurrent claim of the same key waits for
        the other transaction, then finds its claim."""
        if self.uow.claim(
            tables.callback_keys,
            {
                "provider": provider,
                "dedupe_key": dedupe_key,
                "callback_id": callback_id,
                "created_at": utcnow(),
            },
        ):
            return None
        return self.uow.execute(_CLAIMED_BY, {"provider": provider, "key": dedupe_key}).scalar_one()


class ReviewRepository:
    def __init__(self, uow):
        self.uow = uow

    def add(
        self,
        reason: str,
        report: PaymentReport,
        order_id: str | None,
        callback_id: int | None,
        label: str | None = None,
    ) -> None:
        self.uow.add(
            tables.review_items,
            {
                "created_at": utcnow(),
                "status": "open",
                "reason": reason,
                "order_id": order_id,
                "provider": report.provider,
                "method": report.method,
                "provider_transaction_id": report.provider_transaction_id,
                "amount_cents": report.amount_cents,
                "currency": report.currency,
                "label": label,
                "callback_id": callback_id,
            },
        )

    def latest(self, order_id: str, reasons, provider_transaction_id: str | None = None):
        """The latest review item of the order for one of ``reasons`` (and that transaction)."""
        t = tables.review_items
        query = (
            select(t)
            .where(t.c.order_id == order_id, t.c.reason.in_(reasons))
            .order_by(t.c.id.desc())
        )
        if provider_transaction_id:
            query = query.where(t.c.provider_transaction_id == provider_transaction_id)
        return self.uow.execute(query).first()

    def list(
        self,
        status: str | None = "open",
        reason: str | None = None,
        order_id: str | None = None,
        limit: int = 100,
    ) -> list[dict]:
        t = tables.review_items
        query = select(t).order_by(t.c.id.desc()).limit(limit)
        if status:
            query = query.where(t.c.status == status)
        if reason:
            query = query.where(t.c.reason == reason)
        if order_id:
            query = query.where(t.c.order_id == order_id)
        return [{**r._mapping, "created_at": as_utc(r.created_at)} for r in self.uow.execute(query)]


class CardAttemptRepository:
    TRANSACTION_IDS = 899999  # vads_trans_id: 000001 … 899999, unique per shop and day

    def __init__(self, uow):
        self.uow = uow

    def next_transaction_id(self, order_id: str, provider: str, day: str) -> str:
        """The next 6-digit transaction number of ``day``, and the attempt that uses it recorded.
        The day's counter row is created once (a concurrent creation waits, then does nothing)
        and incremented under its row lock, so concurrent checkouts get distinct numbers."""
        t = tables.card_transaction_counters
        increment = update(t).where(t.c.day == day).values(last=t.c.last + 1).returning(t.c.last)
        value = self.uow.execute(increment).scalar()
        if value is None:
            self.uow.claim(t, {"day": day, "last": 0})
            value = self.uow.execute(increment).scalar_one()
        transaction_id = f"{(value - 1) % self.TRANSACTION_IDS + 1:06d}"
        self.uow.add(
            tables.card_attempts,
            {
                "order_id": order_id,
                "provider": provider,
                "day": day,
                "transaction_id": transaction_id,
                "created_at": utcnow(),
            },
        )
        return transaction_id


class PayPalOrderRepository:
    def __init__(self, uow):
        self.uow = uow

    def for_order(self, order_id: str) -> dict | None:
        t = tables.paypal_orders
        row = self.uow.execute(select(t).where(t.c.order_id == order_id)).first()
        return dict(row._mapping) if row else None

    def get(self, paypal_order_id: str, lock: bool = False) -> dict | None:
        t = tables.paypal_orders
        query = select(t).where(t.c.paypal_order_id == paypal_order_id)
        if lock:
            query = query.with_for_update()
        row = self.uow.execute(query).first()
        return dict(row._mapping) if row else None

    def add_unless_known(
        self, paypal_order_id: str, order_id: str, approval_url: str | None, status: str
    ) -> None:
        """Record a PayPal order at once, unless its order has one already (a concurrent checkout
        recorded the same PayPal order: one PayPal-Request-Id per order)."""
        now = utcnow()
        self.uow.claim(
            tables.paypal_orders,
            {
                "paypal_order_id": paypal_order_id,
                "order_id": order_id,
                "approval_url": approval_url,
                "status": status,
                "created_at": now,
                "updated_at": now,
            },
        )

    def update(self, paypal_order_id: str, **values) -> None:
        t = tables.paypal_orders
        self.uow.change(
            t, {"updated_at": utcnow(), **values}, t.c.paypal_order_id == paypal_order_id
        )
