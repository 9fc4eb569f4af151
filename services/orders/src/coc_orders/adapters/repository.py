"""Reading and writing the domain values on a connection (the caller owns the transaction)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, delete, func, insert, select, update

from coc_shared.envelope import utcnow

from ..domain.model import AccountDeactivation, Order, OrderDocument, OrderEvent
from . import orm


class OrderEventRepository:
    def __init__(self, conn: Connection):
        self.conn = conn

    def seen(self, event_id: str) -> bool:
        t = orm.order_events
        return self.conn.execute(select(t.c.id).where(t.c.event_id == event_id)).first() is not None

    def add(self, order_event: OrderEvent, outcome: str | None = None, status_after: str | None = None,
            new: bool = False) -> bool:
        """Record ``order_event`` unless it is recorded already (``new``: an event just emitted here,
        which cannot be); True when it was new."""
        t = orm.order_events
        if not new and self.seen(order_event.event_id):
            return False
        self.conn.execute(insert(t).values(
            event_id=order_event.event_id, order_id=order_event.order_id, event_type=order_event.event_type,
            occurred_at=order_event.occurred_at, recorded_at=utcnow(), outcome=outcome, status_after=status_after))
        return True

    def for_order(self, order_id: str) -> list[OrderEvent]:
        t = orm.order_events
        rows = self.conn.execute(select(t.c.order_id, t.c.event_id, t.c.event_type, t.c.occurred_at)
                                 .where(t.c.order_id == order_id).order_by(t.c.occurred_at, t.c.id)).all()
        return [OrderEvent(order_id=r.order_id, event_id=r.event_id, event_type=r.event_type,
                           occurred_at=r.occurred_at) for r in rows]

    def timeline(self, order_id: str) -> list[dict]:
        t = orm.order_events
        rows = self.conn.execute(select(t.c.event_id, t.c.event_type, t.c.occurred_at, t.c.outcome, t.c.status_after)
                                 .where(t.c.order_id == order_id).order_by(t.c.occurred_at, t.c.id)).all()
        return [dict(r._mapping) for r in rows]


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


_ORDER_FIELDS = ("id", "status", "placed_at", "payment_method", "brand", "vin", "first_registration_date",
                 "vehicle_extra", "total_cents", "currency", "vat_rate", "vat_cents", "documents_required",
                 "marketing_consent", "customer", "shipping_address", "billing_address", "company", "account_id",
                 "access_token_sha256", "documents_completed_at", "seq")


def _aware(value):
    from datetime import timezone
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)  # SQLite gives naive UTC values back
    return value


class OrderRepository:
    def __init__(self, conn: Connection):
        self.conn = conn

    def add(self, order: Order, client_ip: str | None, user_agent: str | None) -> int:
        values = {f: getattr(order, f) for f in _ORDER_FIELDS if f != "seq"}
        values.update(updated_at=order.placed_at, client_ip=client_ip, user_agent=(user_agent or "")[:500] or None)
        result = self.conn.execute(insert(orm.orders).values(**values).returning(orm.orders.c.seq))
        order.seq = result.scalar_one()
        return order.seq

    def _to_order(self, row) -> Order:
        m = row._mapping
        order = Order(**{f: m[f] for f in _ORDER_FIELDS})
        order.placed_at = _aware(order.placed_at)
        order.documents_completed_at = _aware(order.documents_completed_at)
        return order

    def get(self, order_id: str, for_update: bool = False) -> Order | None:
        query = select(*[orm.orders.c[f] for f in _ORDER_FIELDS]).where(orm.orders.c.id == order_id)
        if for_update and self.conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = self.conn.execute(query).first()
        return self._to_order(row) if row is not None else None

    def for_account(self, account_id: str, limit: int = 100) -> list[Order]:
        query = (select(*[orm.orders.c[f] for f in _ORDER_FIELDS]).where(orm.orders.c.account_id == account_id)
                 .order_by(orm.orders.c.seq.desc()).limit(limit))
        return [self._to_order(r) for r in self.conn.execute(query)]

    def save_status(self, order: Order) -> None:
        """Save what the order's life changes: status, documents required, completion."""
        self.conn.execute(update(orm.orders).where(orm.orders.c.id == order.id).values(
            status=order.status, documents_completed_at=order.documents_completed_at,
            documents_required=list(order.documents_required), updated_at=utcnow()))


class DocumentRepository:
    def __init__(self, conn: Connection):
        self.conn = conn

    def add(self, document: OrderDocument, storage_key: str) -> None:
        self.conn.execute(insert(orm.order_documents).values(
            id=document.id, order_id=document.order_id, kind=document.kind, content_type=document.content_type,
            size=document.size, sha256=document.sha256, storage_key=storage_key, uploaded_at=document.uploaded_at))

    def for_order(self, order_id: str) -> list[OrderDocument]:
        t = orm.order_documents
        rows = self.conn.execute(select(t.c.id, t.c.order_id, t.c.kind, t.c.content_type, t.c.size, t.c.sha256,
                                        t.c.uploaded_at, t.c.rejected_at).where(t.c.order_id == order_id)
                                 .order_by(t.c.uploaded_at, t.c.id)).all()
        return [OrderDocument(**{**r._mapping, "uploaded_at": _aware(r.uploaded_at),
                                 "rejected_at": _aware(r.rejected_at)}) for r in rows]

    def reject(self, order_id: str, kinds: list[str], at: datetime) -> int:
        """The valid documents of these kinds no longer count (refused by the supplier); returns how many."""
        if not kinds:
            return 0
        t = orm.order_documents
        return self.conn.execute(update(t).where(t.c.order_id == order_id, t.c.kind.in_(kinds),
                                                 t.c.rejected_at.is_(None)).values(rejected_at=at)).rowcount


class IdempotencyRepository:
    def __init__(self, conn: Connection):
        self.conn = conn

    def get(self, scope: str, key: str, ttl: timedelta):
        t = orm.idempotency_keys
        row = self.conn.execute(select(t).where(t.c.scope == scope, t.c.key == key)).first()
        if row is None:
            return None
        if _aware(row.created_at) < utcnow() - ttl:
            self.conn.execute(delete(t).where(t.c.scope == scope, t.c.key == key))
            return None
        return row

    def add(self, scope: str, key: str, request_sha256: str, order_id: str, status_code: int, response: dict,
            secret: bytes | None) -> None:
        self.conn.execute(insert(orm.idempotency_keys).values(
            scope=scope, key=key, request_sha256=request_sha256, order_id=order_id, status_code=status_code,
            response=response, secret=secret, created_at=utcnow()))

    def purge(self, ttl: timedelta, limit: int = 100) -> None:
        t = orm.idempotency_keys
        self.conn.execute(delete(t).where(t.c.created_at < utcnow() - ttl))


class AccountRepository:
    def __init__(self, conn: Connection):
        self.conn = conn

    def by_email(self, email: str):
        t = orm.accounts
        return self.conn.execute(select(t).where(func.lower(t.c.email) == email.lower())).first()

    def get(self, account_id: str):
        t = orm.accounts
        return self.conn.execute(select(t).where(t.c.id == account_id)).first()

    def add(self, account_id: str, email: str, password_hash: str, profile: dict) -> None:
        now = utcnow()
        self.conn.execute(insert(orm.accounts).values(id=account_id, email=email, password_hash=password_hash,
                                                      profile=profile, created_at=now, updated_at=now))

    def update(self, account_id: str, **values) -> None:
        self.conn.execute(update(orm.accounts).where(orm.accounts.c.id == account_id)
                          .values(updated_at=utcnow(), **values))

    def add_email_change(self, token_sha256: str, account_id: str, new_email: str, expires_at: datetime) -> None:
        self.conn.execute(insert(orm.email_changes).values(token_sha256=token_sha256, account_id=account_id,
                                                           new_email=new_email, created_at=utcnow(),
                                                           expires_at=expires_at))

    def pending_email_change(self, account_id: str):
        t = orm.email_changes
        return self.conn.execute(select(t).where(and_(t.c.account_id == account_id, t.c.confirmed_at.is_(None),
                                                      t.c.expires_at > utcnow()))
                                 .order_by(t.c.created_at.desc()).limit(1)).first()

    def email_change(self, token_sha256: str):
        t = orm.email_changes
        return self.conn.execute(select(t).where(t.c.token_sha256 == token_sha256)).first()

    def confirm_email_change(self, token_sha256: str) -> None:
        t = orm.email_changes
        self.conn.execute(update(t).where(t.c.token_sha256 == token_sha256).values(confirmed_at=utcnow()))



# Placing an order on PostgreSQL in one statement --------------------------------------------------
#
# ``POST /v1/orders`` is the hot path of the service. On PostgreSQL the order's number (``nextval``
# of the table's sequence), the order row, its timeline row, the outbox row of ``order.placed`` (and
# the Idempotency-Key record when there is one) and the outbox NOTIFY are ONE statement
# (data-modifying CTEs): one round trip, atomic on its own (autocommit), where the generic path
# takes BEGIN, four or five statements and COMMIT. The SQL is a fixed string, so psycopg prepares it
# on the server after a few uses and SQLAlchemy builds nothing.
#
# The event body and the stored answer carry the order's number, known only inside the statement:
# Python serialises them with a placeholder number and the statement splices the real one in
# (``head || number || tail``). The placeholder is found as the JSON member ``"order_number":"…"``
# (``"number": "…"`` in the answer): a JSON string value cannot contain that byte sequence (its
# quotes are escaped), so the member is found exactly once. The bytes are those the generic path
# writes.

_NUMBER = ("('COC-' || %(year)s || '-' || CASE WHEN s.seq < 1000000 THEN lpad(s.seq::text, 6, '0') "
           "ELSE s.seq::text END)")

_PLACE_SQL = """
WITH s AS (
  SELECT nextval(%(sequence)s::regclass) AS seq
), o AS (
  INSERT INTO {s}.orders (seq, id, status, placed_at, updated_at, account_id, access_token_sha256, payment_method,
                         brand, vin, first_registration_date, vehicle_extra, total_cents, currency, vat_rate,
                         vat_cents, documents_required, marketing_consent, customer, shipping_address,
                         billing_address, company, client_ip, user_agent)
  SELECT s.seq, %(id)s, %(status)s, %(placed_at)s, %(placed_at)s, %(account_id)s, %(access_token_sha256)s,
         %(payment_method)s, %(brand)s, %(vin)s, %(first_registration_date)s, %(vehicle_extra)s::json,
         %(total_cents)s, %(currency)s, %(vat_rate)s, %(vat_cents)s, %(documents_required)s::json,
         %(marketing_consent)s, %(customer)s::json, %(shipping_address)s::json, %(billing_address)s::json,
         %(company)s::json, %(client_ip)s, %(user_agent)s
  FROM s
), e AS (
  INSERT INTO {s}.order_events (event_id, order_id, event_type, occurred_at, recorded_at, outcome, status_after)
  VALUES (%(event_id)s, %(id)s, %(event_type)s, %(placed_at)s, %(recorded_at)s, 'applied', %(status)s)
), x AS (
  INSERT INTO {s}.outbox (event_id, event_type, correlation_id, subject, body, created_at, attempts)
  SELECT %(event_id)s, %(event_type)s, %(correlation_id)s, %(subject)s,
         %(body_head)s::bytea || convert_to({number}, 'UTF8') || %(body_tail)s::bytea, %(recorded_at)s, 0
  FROM s
){idempotency}
SELECT s.seq, pg_notify(%(channel)s, '') FROM s
"""

_IDEMPOTENCY_CTE = """, k AS (
  INSERT INTO {s}.idempotency_keys (scope, key, request_sha256, order_id, status_code, response, secret, created_at)
  SELECT %(k_scope)s, %(k_key)s, %(k_sha256)s, %(id)s, %(k_status)s,
         (%(k_head)s::text || {number} || %(k_tail)s::text)::json, %(k_secret)s, %(recorded_at)s
  FROM s
)"""


def _json_or_none(value):
    return None if value is None else json.dumps(value)


def _split(document: bytes, member: bytes, placeholder: bytes) -> tuple[bytes, bytes]:
    """``document`` cut around the value ``placeholder`` of its JSON member ``member``."""
    marker = member + placeholder + b'"'
    at = document.find(marker)
    if at < 0 or document.find(marker, at + 1) >= 0:
        raise ValueError(f"{marker!r} is not once in the document")
    cut = at + len(member)
    return document[:cut], document[cut + len(placeholder):]


class PlacedOrderWriter:
    """Writes a placed order and its ``order.placed`` outbox row in one PostgreSQL statement."""

    def __init__(self, schema: str = "orders"):
        self.schema = schema
        self.sql = _PLACE_SQL.format(s=schema, idempotency="", number=_NUMBER)
        self.sql_with_key = _PLACE_SQL.format(s=schema, number=_NUMBER,
                                              idempotency=_IDEMPOTENCY_CTE.format(s=schema, number=_NUMBER))
        self._sequence: str | None = None

    def sequence(self, conn: Connection) -> str:
        if self._sequence is None:
            self._sequence = conn.exec_driver_sql(
                "SELECT pg_get_serial_sequence(%(t)s, 'seq')", {"t": f"{self.schema}.orders"}).scalar_one()
        return self._sequence

    def write(self, conn: Connection, order: Order, client_ip: str | None, user_agent: str | None,
              outbox_row: dict, channel: str, idempotency: dict | None = None) -> int:
        """Stores ``order`` (``order.seq`` None: its number is the placeholder in the bodies, see
        above) with its outbox row; returns the order's ``seq``."""
        placeholder = order.number.encode()
        head, tail = _split(outbox_row["body"], b'"order_number":"', placeholder)
        params = {
            "sequence": self.sequence(conn), "year": f"{order.placed_at.year:04d}",
            "id": order.id, "status": order.status, "placed_at": order.placed_at,
            "account_id": order.account_id, "access_token_sha256": order.access_token_sha256,
            "payment_method": order.payment_method, "brand": order.brand, "vin": order.vin,
            "first_registration_date": order.first_registration_date,
            "vehicle_extra": json.dumps(order.vehicle_extra), "total_cents": order.total_cents,
            "currency": order.currency, "vat_rate": order.vat_rate, "vat_cents": order.vat_cents,
            "documents_required": json.dumps(order.documents_required),
            "marketing_consent": order.marketing_consent, "customer": json.dumps(order.customer),
            "shipping_address": json.dumps(order.shipping_address),
            "billing_address": _json_or_none(order.billing_address), "company": _json_or_none(order.company),
            "client_ip": client_ip, "user_agent": (user_agent or "")[:500] or None,
            "event_id": outbox_row["event_id"], "event_type": outbox_row["event_type"],
            "correlation_id": outbox_row["correlation_id"], "subject": outbox_row["subject"],
            "body_head": head, "body_tail": tail, "recorded_at": outbox_row["created_at"], "channel": channel,
        }
        sql = self.sql
        if idempotency is not None:
            sql = self.sql_with_key
            k_head, k_tail = _split(json.dumps(idempotency["response"]).encode(), b'"number": "', placeholder)
            params.update(k_scope=idempotency["scope"], k_key=idempotency["key"],
                          k_sha256=idempotency["request_sha256"], k_status=idempotency["status_code"],
                          k_head=k_head.decode(), k_tail=k_tail.decode(), k_secret=idempotency["secret"])
        return conn.exec_driver_sql(sql, params).scalar_one()
