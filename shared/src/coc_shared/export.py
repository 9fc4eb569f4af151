"""What every service does when the gdpr service assembles a customer's export of their personal
data (GDPR 15 and 20; ``account.export_requested``): collect what the service holds of the subject
(an account with its orders, or a guest's order) per category of the retention schedule, and send
it back (``account.export_contributed.<service>``) in the event's ``personal`` part only.

A service declares its part as a function ``collect(uow, subject) -> {category: [records]}``
(reads only, through the unit of work; records are JSON values) and gets its handler from
``export_requested_handler``. Collecting changes nothing, so a repeated request is answered again
with the same data, and gdpr keeps one contribution per request and service.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from .envelope import Event
from .errors import InvalidEvent


@dataclass(frozen=True)
class ExportSubject:
    """Whose data: an account (``account_id``, with its orders) or a guest's order."""

    request_id: str
    account_id: str | None
    order_ids: tuple[str, ...]

    @classmethod
    def from_message(cls, event_id: str, data: dict) -> ExportSubject:
        account_id = data.get("account_id") or None
        order_ids = tuple(str(o) for o in data.get("order_ids") or () if o)
        if account_id is None and not order_ids:
            raise InvalidEvent("an export request names neither an account nor an order")
        return cls(str(data.get("request_id") or event_id), account_id, order_ids)


Collect = Callable[[object, ExportSubject], dict[str, list]]


def jsonable(value):
    """``value`` with dates, decimals, bytes and tuples made JSON values."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return f"<{len(bytes(value))} bytes, not exported>"
    return value


def export_requested_handler(collect: Collect):
    """The handler of ``account.export_requested``: the service's data of the subject, sent back
    in the personal part of ``account.export_contributed.<service>`` on the same transaction."""

    def export_requested(event: Event, ctx) -> None:
        from .catalogue import export_contribution_type

        subject = ExportSubject.from_message(event.id, event.data)
        data = {c: jsonable(records) for c, records in (collect(ctx, subject) or {}).items()}
        ctx.emit(
            export_contribution_type(ctx.producer),
            {
                "request_id": subject.request_id,
                "service": ctx.producer,
                "categories": sorted(c for c, records in data.items() if records),
            },
            personal={"data": data},
            subject=subject.account_id or (subject.order_ids[0] if subject.order_ids else None),
        )

    return export_requested


def contributions_emitted(rt, event) -> int:
    """1 when the service answered the export request ``event`` (its contribution in the outbox,
    in the request's story): for the services' "recorded once" tests."""
    from sqlalchemy import func, select

    from .catalogue import export_contribution_type

    outbox = rt.outbox
    with rt.engine.connect() as conn:
        answered = conn.execute(
            select(func.count())
            .select_from(outbox)
            .where(
                (outbox.c.event_type == export_contribution_type(rt.definition.name))
                & (outbox.c.correlation_id == event.correlation_id)
            )
        ).scalar_one()
    return min(answered, 1)
