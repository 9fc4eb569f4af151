"""The support console's summary of a service's parked messages, counted by the database (not
listed and counted by the console: a service may hold 100,000 of them): the groups of those
waiting for a decision (event type and error class: count, first and last failure), how many
were parked in each of the last hours (the console's chart of failures per hour), and one group's
messages, the oldest first. Staff-only HTTP routes over the ``ops`` store."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import Blueprint, jsonify, request
from sqlalchemy import Engine, func, select

from .envelope import utcnow
from .logging import scrub_text
from .tables import parked_messages

CHART_HOURS = 24
GROUP_LIMIT = 200


def _hour(column, dialect: str):
    """The hour a timestamp falls in, as the database truncates it."""
    if dialect == "postgresql":  # in UTC, whatever the session's time zone
        return func.date_trunc("hour", func.timezone("UTC", column))
    return func.strftime("%Y-%m-%d %H:00:00", column)


def _as_hour(value) -> datetime:
    if isinstance(value, str):  # SQLite's strftime
        value = datetime.fromisoformat(value)
    return value.replace(minute=0, second=0, microsecond=0, tzinfo=None)


def groups(engine: Engine, service: str) -> list[dict]:
    """The groups of the messages waiting for a decision, the largest first (ix_parked_groups)."""
    p = parked_messages.c
    query = (
        select(
            p.event_type,
            p.error_type,
            func.count().label("count"),
            func.min(p.first_failed_at).label("first_seen"),
            func.max(p.last_failed_at).label("last_seen"),
        )
        .where(p.status == "parked", p.service == service)
        .group_by(p.event_type, p.error_type)
        .order_by(func.count().desc(), p.event_type, p.error_type)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        {
            "event_type": r.event_type or "?",
            "error_type": r.error_type,
            "count": r.count,
            "first_seen": r.first_seen.isoformat(),
            "last_seen": r.last_seen.isoformat(),
        }
        for r in rows
    ]


def per_hour(engine: Engine, service: str, now: datetime, hours: int = CHART_HOURS) -> list[dict]:
    """How many messages were parked in each of the last ``hours`` hours (whatever became of them
    since), oldest first, empty hours included (ix_parked_service_parked_at)."""
    p = parked_messages.c
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=hours)
    hour = _hour(p.parked_at, engine.dialect.name).label("hour")
    query = (
        select(hour, func.count().label("count"))
        .where(p.service == service, p.parked_at >= start)
        .group_by(hour)
    )
    with engine.connect() as conn:
        counts = {_as_hour(r.hour): r.count for r in conn.execute(query)}
    naive_start = start.replace(tzinfo=None)
    slots = [naive_start + timedelta(hours=n) for n in range(hours)]
    return [{"hour": s.isoformat() + "+00:00", "count": counts.get(s, 0)} for s in slots]


def group_messages(
    engine: Engine, service: str, event_type: str, error_type: str, limit: int = GROUP_LIMIT
) -> list[dict]:
    """The group's messages waiting for a decision, the oldest first, at most ``limit``."""
    p = parked_messages.c
    query = (
        select(
            p.id,
            p.event_id,
            p.event_type,
            p.order_id,
            p.error_type,
            p.error_message,
            p.attempts,
            p.first_failed_at,
            p.last_failed_at,
            p.status,
        )
        .where(
            p.status == "parked",
            p.service == service,
            p.event_type == event_type if event_type != "?" else p.event_type.is_(None),
            p.error_type == error_type,
        )
        .order_by(p.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        {
            **r._mapping,
            "error_message": scrub_text(r.error_message)[:300],  # shown to the support role
            "first_failed_at": r.first_failed_at.isoformat(),
            "last_failed_at": r.last_failed_at.isoformat(),
        }
        for r in rows
    ]


def parked_summary_blueprint(runtime) -> Blueprint:
    from .http import error_response, staff_required  # this module is one of its parts

    bp = Blueprint("parked_summary", __name__, url_prefix="/v1/staff")
    service = runtime.settings.service

    @bp.get("/parked-summary")
    @staff_required()
    def summary():
        """The groups waiting for a decision and the failures of the last hours, per hour."""
        engine = runtime.parking_engine
        return jsonify(
            {
                "service": service,
                "groups": groups(engine, service),
                "per_hour": per_hour(engine, service, utcnow()),
            }
        )

    @bp.get("/parked-summary/messages")
    @staff_required()
    def messages():
        """One group's messages (``event_type``, ``error_type``), the oldest first."""
        event_type = request.args.get("event_type", "")
        error_type = request.args.get("error_type", "")
        limit = request.args.get("limit", str(GROUP_LIMIT))
        problems = {}
        if not event_type or len(event_type) > 100:
            problems["event_type"] = ["Required: at most 100 characters ('?' for none)."]
        if not error_type or len(error_type) > 300:
            problems["error_type"] = ["Required: at most 300 characters."]
        if not limit.isdigit() or not 1 <= int(limit) <= 1000:
            problems["limit"] = ["Must be a whole number from 1 to 1000."]
        if problems:
            return error_response(400, "invalid query", problems)
        items = group_messages(runtime.parking_engine, service, event_type, error_type, int(limit))
        return jsonify({"items": items})

    return bp
