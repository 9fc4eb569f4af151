"""The parked-message store (``ops`` schema) and the support actions on it.

A message that cannot be handled is parked here with everything needed to understand and
replay it; it is acked from its queue only after this row is committed, so it is never lost.
Replay sends it to its original queue only (through the default exchange), never to every
subscriber of its type. Every support action is recorded in ``support_actions`` (who, why).
The functions take plain filters and return plain dicts so a web console can serve them too.
"""

from __future__ import annotations

import json
import socket
from datetime import datetime

from sqlalchemy import Engine, and_, func, insert, select, update

from .bus import (
    HEADER_ATTEMPTS,
    HEADER_FIRST_FAILURE,
    HEADER_LAST_ERROR,
    HEADER_REPLAY_RUN,
    HEADER_REPLAYED_FROM,
    OutgoingMessage,
    Publisher,
)
from .envelope import utcnow
from .logging import get_logger
from .tables import parked_messages, revoked_staff_tokens, support_actions
from .tokens import Actor

log = get_logger(__name__)

RETRY_HEADERS = (
    HEADER_ATTEMPTS,
    HEADER_FIRST_FAILURE,
    HEADER_LAST_ERROR,
    HEADER_REPLAY_RUN,
    "x-coc-delayed",
    "x-death",
    "x-first-death-exchange",
    "x-first-death-queue",
    "x-first-death-reason",
    "x-last-death-exchange",
    "x-last-death-queue",
    "x-last-death-reason",
    "x-delivery-count",
)


def _jsonable(value):
    """AMQP headers may hold bytes, datetimes and nested tables; keep them as JSON."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


class ParkingStore:
    def __init__(self, engine: Engine, keys=None):
        self.engine = engine
        self.keys = keys  # keystore.KeyStore: opens the personal part of a body shown to staff

    def park(
        self,
        *,
        service: str,
        queue: str,
        routing_key: str,
        body: bytes,
        headers: dict,
        properties: dict,
        error_type: str,
        error_message: str,
        stack_trace: str | None,
        attempts: int,
        first_failed_at: datetime,
        last_failed_at: datetime,
        event_id: str | None = None,
        event_type: str | None = None,
        order_id: str | None = None,
        correlation_id: str | None = None,
    ) -> int:
        now = utcnow()
        with self.engine.begin() as conn:
            parked_id = conn.execute(
                insert(parked_messages)
                .values(
                    service=service,
                    host=socket.gethostname(),
                    queue=queue,
                    routing_key=routing_key,
                    event_id=event_id,
                    event_type=event_type,
                    order_id=order_id,
                    correlation_id=correlation_id,
                    body=body,
                    headers=_jsonable(headers),
                    properties=_jsonable(properties),
                    error_type=error_type,
                    error_message=error_message[:10000],
                    stack_trace=stack_trace,
                    attempts=attempts,
                    first_failed_at=first_failed_at,
                    last_failed_at=last_failed_at,
                    parked_at=now,
                    status="parked",
                )
                .returning(parked_messages.c.id)
            ).scalar_one()
        return parked_id

    # queries
    @staticmethod
    def _filters(
        service=None,
        event_type=None,
        error=None,
        order_id=None,
        status="parked",
        event_id=None,
        error_type=None,
    ):
        p = parked_messages.c
        clauses = []
        if status:
            clauses.append(p.status == status)
        if service:
            clauses.append(p.service == service)
        if event_type:
            clauses.append(p.event_type == event_type)
        if error:
            escaped = error.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern = f"%{escaped}%"
            clauses.append(
                func.lower(p.error_type).like(pattern, escape="\\")
                | func.lower(p.error_message).like(pattern, escape="\\")
            )
        if order_id:
            clauses.append(p.order_id == order_id)
        if event_id:
            clauses.append(p.event_id == event_id)
        if error_type:  # a group's error class, exactly
            clauses.append(p.error_type == error_type)
        return and_(*clauses) if clauses else True

    def list(self, limit: int = 100, **filters) -> list[dict]:
        p = parked_messages.c
        columns = [
            p.id,
            p.service,
            p.queue,
            p.routing_key,
            p.event_id,
            p.event_type,
            p.order_id,
            p.error_type,
            p.error_message,
            p.attempts,
            p.first_failed_at,
            p.last_failed_at,
            p.parked_at,
            p.status,
        ]
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(*columns).where(self._filters(**filters)).order_by(p.id).limit(limit)
            ).all()
        return [dict(r._mapping) for r in rows]

    def get(self, parked_id: int) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(parked_messages).where(parked_messages.c.id == parked_id)
            ).first()
        return dict(row._mapping) if row else None

    def count(self, **filters) -> int:
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.count()).select_from(parked_messages).where(self._filters(**filters))
            ).scalar_one()

    def ids(self, limit: int | None = None, **filters) -> list[int]:
        """The ids of the messages ``filters`` match, oldest first."""
        p = parked_messages.c
        query = select(p.id).where(self._filters(**filters)).order_by(p.id)
        with self.engine.connect() as conn:
            return list(conn.execute(query.limit(limit) if limit else query).scalars())

    def last_id(self) -> int:
        """The highest id so far (a message parked after this moment has a higher one)."""
        with self.engine.connect() as conn:
            return conn.execute(select(func.max(parked_messages.c.id))).scalar() or 0

    def parked_again(self, service: str, event_ids: list[str], after_id: int) -> list[dict]:
        """Messages of ``event_ids`` that ``service`` parked after ``after_id``."""
        p = parked_messages.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(p.id, p.event_id, p.error_type, p.error_message)
                .where(p.service == service, p.event_id.in_(event_ids), p.id > after_id)
                .order_by(p.id)
            ).all()
        return [dict(r._mapping) for r in rows]

    def actions(self, target: str) -> list[dict]:
        """The support actions recorded on ``target``, in order."""
        t = support_actions
        with self.engine.connect() as conn:
            rows = conn.execute(select(t).where(t.c.target == target).order_by(t.c.id)).all()
        return [dict(r._mapping) for r in rows]

    # actions
    def record_action(
        self, actor: Actor, action: str, target: str | None, reason: str | None, details=None
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(support_actions).values(
                    at=utcnow(),
                    actor=actor.name,
                    role=actor.role,
                    action=action,
                    target=target,
                    reason=reason,
                    details=_jsonable(details),
                )
            )
        log.info(
            "support.action",
            actor=actor.name,
            role=actor.role,
            action=action,
            target=target,
            reason=reason,
        )

    # staff tokens
    def revoke_token(self, jti: str, actor: Actor, reason: str) -> bool:
        """Revoke a staff token by its id (every service refuses it from now on); False when it
        was revoked already. Recorded in the support actions."""
        if not reason or not reason.strip():
            raise ValueError("a reason is required to revoke a token")
        with self.engine.begin() as conn:
            known = conn.execute(
                select(revoked_staff_tokens.c.jti).where(revoked_staff_tokens.c.jti == jti)
            ).first()
            if known is None:
                conn.execute(
                    insert(revoked_staff_tokens).values(
                        jti=jti, revoked_at=utcnow(), revoked_by=actor.name, reason=reason.strip()
                    )
                )
        self.record_action(actor, "revoke_token", jti, reason)
        return known is None

    def token_revoked(self, jti: str) -> bool:
        with self.engine.connect() as conn:
            return (
                conn.execute(
                    select(revoked_staff_tokens.c.jti).where(revoked_staff_tokens.c.jti == jti)
                ).first()
                is not None
            )

    def drop_personal_parts(
        self, service: str, before: datetime, limit: int = 1000, conn=None
    ) -> int:
        """The retention schedule's end for parked messages: the personal part of ``service``'s
        messages parked before ``before`` is replaced by null (the rest stays, so that support can
        still show and replay them); returns how many were changed. Bodies that are not JSON
        envelopes are left as they are (support discards them). ``conn``: a connection already in
        a transaction on the store's database (a handler's, where the store shares its engine: a
        second connection would wait for the first's lock on SQLite)."""
        if conn is None:
            with self.engine.begin() as own:
                return self.drop_personal_parts(service, before, limit, own)
        t = parked_messages
        changed = 0
        rows = conn.execute(
            select(t.c.id, t.c.body)
            .where(t.c.service == service, t.c.status == "parked", t.c.parked_at < before)
            .order_by(t.c.id)
            .limit(limit)
            .with_for_update()
        ).all()
        for row in rows:
            try:
                envelope = json.loads(bytes(row.body))
            except ValueError:
                continue
            if not isinstance(envelope, dict) or envelope.get("personal") is None:
                continue
            envelope["personal"] = None
            conn.execute(
                update(t)
                .where(t.c.id == row.id)
                .values(body=json.dumps(envelope, ensure_ascii=False).encode())
            )
            changed += 1
        return changed

    def replay(self, parked_id: int, publisher: Publisher, actor: Actor, reason: str) -> dict:
        """Send a parked message back to its original queue; marks it replayed once the broker
        confirmed.

        The row is locked from the status check to the update, so two staff members replaying the
        same message at once publish it once; the second is told it is already replayed.
        """
        if not reason or not reason.strip():
            raise ValueError("a reason is required to replay a parked message")
        with self.engine.begin() as conn:
            found = conn.execute(
                select(parked_messages).where(parked_messages.c.id == parked_id).with_for_update()
            ).first()
            if found is None:
                raise LookupError(f"no parked message {parked_id}")
            row = dict(found._mapping)
            if row["status"] != "parked":
                raise ValueError(f"parked message {parked_id} is already {row['status']}")
            if row["error_type"] == "ForgedEvent":
                # published by a service that is not its producer: applying it is never right
                raise ValueError(
                    f"parked message {parked_id} is a forged event: it cannot be replayed"
                )
            headers = {k: v for k, v in (row["headers"] or {}).items() if k not in RETRY_HEADERS}
            headers[HEADER_REPLAYED_FROM] = parked_id
            properties = row["properties"] or {}
            queue = row["queue"]
            publisher.publish_one(
                OutgoingMessage(
                    message_id=properties.get("message_id")
                    or row["event_id"]
                    or f"parked-{parked_id}",
                    body=row["body"],
                    routing_key=queue,
                    to_queue=True,
                    headers=headers,
                    event_type=properties.get("type") or row["event_type"],
                    correlation_id=row["correlation_id"],
                )
            )
            conn.execute(
                update(parked_messages)
                .where(parked_messages.c.id == parked_id)
                .values(
                    status="replayed",
                    resolved_at=utcnow(),
                    resolved_by=actor.name,
                    resolution_reason=reason,
                )
            )
        self.record_action(
            actor, "replay", str(parked_id), reason, {"queue": queue, "event_id": row["event_id"]}
        )
        return {"id": parked_id, "status": "replayed", "queue": queue}

    def replay_batch(
        self,
        ids: list[int],
        publisher: Publisher,
        actor: Actor,
        reason: str,
        run: str,
        service: str,
    ) -> list[dict]:
        """Send the messages of ``ids`` still parked (not forged) of ``service`` back to their
        queue, one publish with confirms for all, marked replayed in the same transaction; their
        header ``HEADER_REPLAY_RUN`` names ``run`` (the consumer parks such a message again at once
        when it fails). Returns the replayed ones (id, event id); the others are skipped."""
        t = parked_messages
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(t)
                .where(
                    t.c.id.in_(ids),
                    t.c.service == service,
                    t.c.status == "parked",
                    t.c.error_type != "ForgedEvent",
                )
                .order_by(t.c.id)
                .with_for_update(skip_locked=True)
            ).all()
            messages = [_replayed_message(dict(r._mapping), run) for r in rows]
            result = publisher.publish_batch(messages)
            confirmed = set(result.confirmed)
            sent = [
                {"id": r.id, "event_id": r.event_id}
                for r, m in zip(rows, messages, strict=True)
                if m.message_id in confirmed
            ]
            if sent:
                conn.execute(
                    update(t)
                    .where(t.c.id.in_([s["id"] for s in sent]), t.c.service == service)
                    .values(
                        status="replayed",
                        resolved_at=utcnow(),
                        resolved_by=actor.name,
                        resolution_reason=reason,
                    )
                )
        return sent

    def discard(self, parked_id: int, actor: Actor, reason: str) -> dict:
        if not reason or not reason.strip():
            raise ValueError("a reason is required to discard a parked message")
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(parked_messages)
                .where(
                    and_(parked_messages.c.id == parked_id, parked_messages.c.status == "parked")
                )
                .values(
                    status="discarded",
                    resolved_at=utcnow(),
                    resolved_by=actor.name,
                    resolution_reason=reason,
                )
            ).rowcount
        if not changed:
            raise LookupError(f"no parked message {parked_id} waiting for a decision")
        self.record_action(actor, "discard", str(parked_id), reason)
        return {"id": parked_id, "status": "discarded"}


def _replayed_message(row: dict, run: str) -> OutgoingMessage:
    """A parked row as the message a progressive replay sends to its original queue."""
    headers = {k: v for k, v in (row["headers"] or {}).items() if k not in RETRY_HEADERS}
    headers[HEADER_REPLAYED_FROM] = row["id"]
    headers[HEADER_REPLAY_RUN] = run
    properties = row["properties"] or {}
    return OutgoingMessage(
        message_id=properties.get("message_id") or row["event_id"] or f"parked-{row['id']}",
        body=row["body"],
        routing_key=row["queue"],
        to_queue=True,
        headers=headers,
        event_type=properties.get("type") or row["event_type"],
        correlation_id=row["correlation_id"],
    )


def _opened_body(body: dict, keys) -> dict:
    """The body as support sees it: a sealed personal part opened (``personal_state``: ``sealed``
    and opened, ``erased`` when the subject's key is destroyed, ``unreadable`` when it does not
    open or no key store is configured), the body stored in the row unchanged."""
    from .envelope import Event
    from .keystore import is_erased_marker, is_sealed

    personal = body.get("personal")
    if not (is_sealed(personal) or is_erased_marker(personal)):
        return body
    shown = dict(body)
    if is_erased_marker(personal):
        shown["personal"], shown["personal_state"] = None, "erased"
        return shown
    if keys is None:
        shown["personal_state"] = "sealed"
        return shown
    try:
        event = Event.from_json(json.dumps(body))
        keys.unseal_event(event)
    except Exception as exc:
        shown["personal_state"] = f"unreadable: {type(exc).__name__}"
        return shown
    if event.personal_erased:
        shown["personal"], shown["personal_state"] = None, "erased"
    else:
        shown["personal"], shown["personal_state"] = event.personal, "opened"
    return shown


def parked_to_json(row: dict, include_body: bool = False, keys=None) -> dict:
    """A parked message as JSON; with ``include_body``, its body, the personal part opened with
    ``keys`` (the store's ``keys``) or marked erased."""
    out = {
        k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items() if k != "body"
    }
    if include_body and "body" in row:
        body = row["body"]
        try:
            out["body"] = json.loads(body)
            if isinstance(out["body"], dict):
                out["body"] = _opened_body(out["body"], keys)
        except ValueError:
            out["body_raw"] = (
                body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
            )
    return out
