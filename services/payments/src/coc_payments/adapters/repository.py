"""Reading and writing the domain values on a connection (the caller owns the transaction)."""
from __future__ import annotations

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from coc_shared.envelope import utcnow

from ..domain.model import CANCELLED, DUE, FAILED, PAID, AccountDeactivation, OrderCancellation, PaymentDue
from ..domain.payments import ALREADY, CONFIRM, PaymentReport
from ..domain.references import creditor_reference
from . import orm

_DUE_COLUMNS = ("order_id", "order_number", "method", "amount_cents", "currency", "status", "account_id",
                "access_token_sha256", "reference", "correlation_id", "paid_provider", "paid_transaction_id")


class PaymentDueRepository:
    def __init__(self, conn: Connection):
        self.conn = conn

    def add(self, due: PaymentDue, event_id: str) -> bool:
        """Record ``due`` unless its order has one already; True when it was new."""
        t = orm.payments_due
        if self.conn.execute(select(t.c.order_id).where(t.c.order_id == due.order_id)).first() is not None:
            return False
        reference = due.reference
        if reference and self.conn.execute(select(t.c.order_id).where(t.c.reference == reference)).first():
            # Order numbers are unique; should one come twice, the order id still gives a unique reference.
            reference = creditor_reference(due.order_id)
        self.conn.execute(insert(t).values(
            order_id=due.order_id, order_number=due.order_number, method=due.method,
            amount_cents=due.amount_cents, currency=due.currency, status=due.status, event_id=event_id,
            account_id=due.account_id, access_token_sha256=due.access_token_sha256, reference=reference,
            correlation_id=due.correlation_id, created_at=utcnow()))
        return True

    def _one(self, where, lock: bool) -> PaymentDue | None:
        t = orm.payments_due
        query = select(*[t.c[c] for c in _DUE_COLUMNS]).where(where)
        if lock:
            query = query.with_for_update()
        row = self.conn.execute(query).first()
        return PaymentDue(**row._mapping) if row is not None else None

    def get(self, order_id: str, lock: bool = False) -> PaymentDue | None:
        return self._one(orm.payments_due.c.order_id == order_id, lock)

    def by_number(self, order_number: str, lock: bool = False) -> PaymentDue | None:
        return self._one(orm.payments_due.c.order_number == order_number, lock)

    def by_reference(self, references: list[str], lock: bool = False) -> PaymentDue | None:
        if not references:
            return None
        t = orm.payments_due
        found = self.conn.execute(select(t.c.order_id, t.c.reference).where(t.c.reference.in_(references))).all()
        if not found:
            return None
        best = max(found, key=lambda r: len(r.reference))  # the longest valid reference named in the label
        return self.get(best.order_id, lock=lock)

    def mark_paid(self, order_id: str, report: PaymentReport) -> bool:
        t = orm.payments_due
        result = self.conn.execute(update(t).where(t.c.order_id == order_id, t.c.status.in_((DUE, FAILED))).values(
            status=PAID, paid_provider=report.provider, paid_transaction_id=report.provider_transaction_id,
            paid_at=utcnow()))
        return result.rowcount == 1

    def mark_failed(self, order_id: str) -> None:
        t = orm.payments_due
        self.conn.execute(update(t).where(t.c.order_id == order_id, t.c.status.in_((DUE, FAILED))).values(status=FAILED))

    def mark_cancelled(self, order_id: str) -> None:
        t = orm.payments_due
        self.conn.execute(update(t).where(t.c.order_id == order_id).values(status=CANCELLED))


class OrderCancellationRepository:
    def __init__(self, conn: Connection):
        self.conn = conn

    def add(self, cancellation: OrderCancellation) -> bool:
        """Record the cancellation of an order once; True when it was new."""
        t = orm.order_cancellations
        if self.cancelled(cancellation.order_id):
            return False
        self.conn.execute(insert(t).values(order_id=cancellation.order_id, event_id=cancellation.event_id,
                                           cancelled_by=cancellation.cancelled_by,
                                           cancelled_at=cancellation.cancelled_at, recorded_at=utcnow()))
        return True

    def cancelled(self, order_id: str) -> bool:
        t = orm.order_cancellations
        return self.conn.execute(select(t.c.order_id).where(t.c.order_id == order_id)).first() is not None


class ConfirmationRepository:
    def __init__(self, conn: Connection):
        self.conn = conn

    def add(self, order_id: str, report: PaymentReport, callback_id: int | None, event_id: str) -> None:
        self.conn.execute(insert(orm.confirmations).values(
            order_id=order_id, provider=report.provider, provider_transaction_id=report.provider_transaction_id,
            amount_cents=report.amount_cents, currency=report.currency, callback_id=callback_id, event_id=event_id,
            confirmed_at=utcnow()))


class CallbackRepository:
    def __init__(self, conn: Connection):
        self.conn = conn

    def record(self, provider: str, headers: dict, body: str, verdict: str, detail: str | None = None,
               dedupe_key: str | None = None, order_id: str | None = None, callback_id: int | None = None,
               received_at=None) -> int:
        """The callback's audit row; ``callback_id``: an id already drawn from its sequence."""
        values = {"id": callback_id} if callback_id is not None else {}
        return self.conn.execute(insert(orm.callbacks).values(
            provider=provider, received_at=received_at or utcnow(), headers=headers, body=body, verdict=verdict,
            detail=(detail or "")[:2000] or None, dedupe_key=dedupe_key, order_id=order_id, **values,
        ).returning(orm.callbacks.c.id)).scalar_one()

    def claim(self, provider: str, dedupe_key: str, callback_id: int) -> int | None:
        """Claim a notification id for ``callback_id``; the id of the earlier callback when it was
        already claimed (concurrent deliveries wait for each other on the primary key)."""
        t = orm.callback_keys
        if self.conn.dialect.name in ("postgresql", "sqlite"):
            # One round trip: a concurrent claim of the same key waits for the other transaction.
            if self.conn.dialect.name == "postgresql":
                from sqlalchemy.dialects.postgresql import insert as dialect_insert
            else:
                from sqlalchemy.dialects.sqlite import insert as dialect_insert
            claimed = self.conn.execute(dialect_insert(t).values(
                provider=provider, dedupe_key=dedupe_key, callback_id=callback_id, created_at=utcnow(),
            ).on_conflict_do_nothing().returning(t.c.callback_id)).scalar()
            if claimed is not None:
                return None
            return self.conn.execute(select(t.c.callback_id).where(t.c.provider == provider,
                                                                   t.c.dedupe_key == dedupe_key)).scalar_one()
        existing = self.conn.execute(select(t.c.callback_id).where(t.c.provider == provider,
                                                                   t.c.dedupe_key == dedupe_key)).scalar()
        if existing is not None:
            return existing
        savepoint = self.conn.begin_nested()
        try:
            self.conn.execute(insert(t).values(provider=provider, dedupe_key=dedupe_key, callback_id=callback_id,
                                               created_at=utcnow()))
            savepoint.commit()
            return None
        except IntegrityError:
            savepoint.rollback()
            return self.conn.execute(select(t.c.callback_id).where(t.c.provider == provider,
                                                                   t.c.dedupe_key == dedupe_key)).scalar_one()

    def claimed_by(self, provider: str, dedupe_key: str) -> int:
        """The callback that claimed a notification id."""
        t = orm.callback_keys
        return self.conn.execute(select(t.c.callback_id).where(t.c.provider == provider,
                                                               t.c.dedupe_key == dedupe_key)).scalar_one()

    def conclude(self, callback_id: int, verdict: str, outcome: str | None, order_id: str | None = None,
                 detail: str | None = None) -> None:
        values = {"verdict": verdict, "outcome": outcome}
        if order_id is not None:
            values["order_id"] = order_id
        if detail is not None:
            values["detail"] = detail[:2000]
        self.conn.execute(update(orm.callbacks).where(orm.callbacks.c.id == callback_id).values(**values))


class ReviewRepository:
    def __init__(self, conn: Connection):
        self.conn = conn

    def add(self, reason: str, report: PaymentReport, order_id: str | None, callback_id: int | None,
            label: str | None = None) -> int:
        return self.conn.execute(insert(orm.review_items).values(
            created_at=utcnow(), status="open", reason=reason, order_id=order_id, provider=report.provider,
            method=report.method, provider_transaction_id=report.provider_transaction_id,
            amount_cents=report.amount_cents, currency=report.currency, label=label, callback_id=callback_id,
        ).returning(orm.review_items.c.id)).scalar_one()

    def list(self, status: str | None = "open", reason: str | None = None, order_id: str | None = None,
             limit: int = 100) -> list[dict]:
        t = orm.review_items
        query = select(t).order_by(t.c.id.desc()).limit(limit)
        if status:
            query = query.where(t.c.status == status)
        if reason:
            query = query.where(t.c.reason == reason)
        if order_id:
            query = query.where(t.c.order_id == order_id)
        return [dict(r._mapping) for r in self.conn.execute(query)]


class CardAttemptRepository:
    def __init__(self, conn: Connection):
        self.conn = conn

    def next_transaction_id(self, order_id: str, provider: str, day: str) -> str:
        """The next 6-digit transaction number of ``day`` (000001 … 899999, then round again)."""
        t = orm.card_transaction_counters
        value = self.conn.execute(update(t).where(t.c.day == day).values(last=t.c.last + 1)
                                  .returning(t.c.last)).scalar()
        if value is None:
            savepoint = self.conn.begin_nested()
            try:
                self.conn.execute(insert(t).values(day=day, last=1))
                savepoint.commit()
                value = 1
            except IntegrityError:
                savepoint.rollback()
                value = self.conn.execute(update(t).where(t.c.day == day).values(last=t.c.last + 1)
                                          .returning(t.c.last)).scalar_one()
        transaction_id = f"{(value - 1) % 899999 + 1:06d}"
        self.conn.execute(insert(orm.card_attempts).values(order_id=order_id, provider=provider, day=day,
                                                           transaction_id=transaction_id, created_at=utcnow()))
        return transaction_id


class PayPalOrderRepository:
    def __init__(self, conn: Connection):
        self.conn = conn

    def for_order(self, order_id: str) -> dict | None:
        t = orm.paypal_orders
        row = self.conn.execute(select(t).where(t.c.order_id == order_id)).first()
        return dict(row._mapping) if row else None

    def get(self, paypal_order_id: str, lock: bool = False) -> dict | None:
        t = orm.paypal_orders
        query = select(t).where(t.c.paypal_order_id == paypal_order_id)
        if lock:
            query = query.with_for_update()
        row = self.conn.execute(query).first()
        return dict(row._mapping) if row else None

    def add(self, paypal_order_id: str, order_id: str, approval_url: str | None, status: str) -> None:
        t = orm.paypal_orders
        if self.get(paypal_order_id) is not None:
            return
        now = utcnow()
        self.conn.execute(insert(t).values(paypal_order_id=paypal_order_id, order_id=order_id,
                                           approval_url=approval_url, status=status, created_at=now, updated_at=now))

    def update(self, paypal_order_id: str, **values) -> None:
        t = orm.paypal_orders
        self.conn.execute(update(t).where(t.c.paypal_order_id == paypal_order_id).values(updated_at=utcnow(), **values))


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


class CardCallbackFastPath:
    """The card notification's common case on PostgreSQL in two statements (plus BEGIN/COMMIT)
    instead of eight, and the callback's audit row written once instead of inserted and updated
    (measured by ``bench/bench_payments.py``: each statement is a round trip and ~0.2 ms of
    SQLAlchemy work in a process that shares two cores with PostgreSQL).

    ``claim_and_lock``: draw the callback's id from its sequence and claim the notification id
    with it (``ON CONFLICT DO NOTHING``: a concurrent claim of the same key waits for the other
    transaction) and, only when the claim is ours, lock the order's payment row(s) ``FOR UPDATE``
    — what ``CallbackRepository.claim`` + ``PaymentDueRepository.by_number(lock=True)`` do, in one
    statement. Under READ COMMITTED the locked row is the latest committed version (PostgreSQL
    re-reads a row updated since the statement's snapshot before locking it).

    ``confirm``: mark the payment paid (only from due/failed), record the confirmation, write the
    ``payment.confirmed`` outbox row (the row ``coc_shared.outbox.add_to_outbox`` writes), write
    the callback's audit row with its verdict and outcome, and ``pg_notify`` the relay — in one
    statement; the confirmation and the event only when the UPDATE matched (always, under the row
    lock). The audit row is in the same transaction as the claim: committed together, before the
    answer, or not at all (then nothing was answered but an error)."""

    def __init__(self, conn: Connection, outbox_table):
        self.conn = conn
        self._statements = _fast_statements(outbox_table)

    def claim_and_lock(self, provider: str, dedupe_key: str, order_number: str,
                       now) -> tuple[int | None, PaymentDue | None]:
        """(the new callback id, the order's payment locked) when the notification id is claimed
        here; (None, None) when an earlier callback claimed it."""
        first = self.conn.execute(self._statements[0], {
            "provider": provider, "now": now, "dedupe_key": dedupe_key, "order_number": order_number}).first()
        due = None
        if first.order_id is not None:
            due = PaymentDue(**{c: getattr(first, c) for c in _DUE_COLUMNS})
        return first.callback_id, due

    def confirm(self, due: PaymentDue, report: PaymentReport, callback_id: int, received_at, headers: dict,
                body: str, dedupe_key: str, outbox_row: dict, channel: str) -> bool:
        paid = self.conn.execute(self._statements[1], {
            "order_id": due.order_id, "provider": report.provider, "txid": report.provider_transaction_id,
            "amount_cents": report.amount_cents, "currency": report.currency, "callback_id": callback_id,
            "received_at": received_at, "headers": headers, "body": body, "dedupe_key": dedupe_key,
            "now": utcnow(), "channel": channel, **outbox_row}).scalar_one()
        return paid == 1


_FAST: dict = {}


def _fast_statements(outbox_table) -> tuple:
    key = (outbox_table.schema, outbox_table.name)
    if key in _FAST:
        return _FAST[key]
    from sqlalchemy import JSON, LargeBinary, bindparam, text

    def name(table) -> str:
        return f'"{table.schema}"."{table.name}"'
    callbacks = name(orm.callbacks)
    claim_and_lock = text(f"""
        WITH claim AS (
            INSERT INTO {name(orm.callback_keys)} (provider, dedupe_key, callback_id, created_at)
            VALUES (:provider, :dedupe_key, nextval(pg_get_serial_sequence('{callbacks}', 'id')), :now)
            ON CONFLICT DO NOTHING
            RETURNING callback_id
        )
        SELECT claim.callback_id, {", ".join(f"due.{c}" for c in _DUE_COLUMNS)}
        FROM (SELECT 1) AS one
        LEFT JOIN claim ON true
        LEFT JOIN LATERAL (
            SELECT {", ".join(f"d.{c}" for c in _DUE_COLUMNS)} FROM {name(orm.payments_due)} d
            WHERE d.order_number = :order_number AND claim.callback_id IS NOT NULL
            FOR UPDATE
        ) due ON true
    """)
    confirm = text(f"""
        WITH paid AS (
            UPDATE {name(orm.payments_due)}
            SET status = '{PAID}', paid_provider = :provider, paid_transaction_id = :txid, paid_at = :now
            WHERE order_id = :order_id AND status IN ('{DUE}', '{FAILED}')
            RETURNING order_id
        ), confirmation AS (
            INSERT INTO {name(orm.confirmations)} (order_id, provider, provider_transaction_id, amount_cents,
                                                  currency, callback_id, event_id, confirmed_at)
            SELECT order_id, :provider, :txid, :amount_cents, :currency, :callback_id, :event_id, :now FROM paid
        ), event AS (
            INSERT INTO {name(outbox_table)} (event_id, event_type, correlation_id, subject, body, created_at,
                                             attempts)
            SELECT :event_id, :event_type, :correlation_id, :subject, :event_body, :created_at, 0 FROM paid
        ), audit AS (
            INSERT INTO {callbacks} (id, provider, received_at, headers, body, verdict, dedupe_key, order_id,
                                    outcome, detail)
            SELECT :callback_id, :provider, :received_at, :headers, :body, 'accepted', :dedupe_key, :order_id,
                   CASE WHEN done THEN '{CONFIRM}' ELSE '{ALREADY}' END,
                   CASE WHEN done THEN 'paid' ELSE 'paid_concurrently' END
            FROM (SELECT EXISTS (SELECT 1 FROM paid) AS done) AS outcome
        )
        SELECT (SELECT count(*) FROM paid), pg_notify(:channel, '')
    """).bindparams(bindparam("event_body", type_=LargeBinary), bindparam("headers", type_=JSON))
    _FAST[key] = (claim_and_lock, confirm)
    return _FAST[key]
