"""What every service does when the gdpr service runs a purge of the retention schedule
(``retention.purge_requested``): apply the end of each category it owns to its own data older than
the category's cutoff, and report how much (``retention.purged.<service>``).

A service declares its purges as ``{category: purge(uow, cutoff) -> count}`` and gets its handler
from ``purge_requested_handler``. Every service also drops the personal part of its own parked
messages (category ``parked_messages``). A purge only removes what has reached its end, so a
second run, or the same run delivered twice, finds nothing more to do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time

from .catalogue import purge_report_type
from .envelope import Event
from .errors import InvalidEvent
from .logging import get_logger

log = get_logger(__name__)

PARKED_MESSAGES = "parked_messages"
Purge = Callable[[object, datetime], int]


def cutoffs_of(event: Event) -> dict[str, datetime]:
    """The run's cutoffs, as the start (UTC) of each category's cutoff day."""
    raw = event.data.get("cutoffs")
    if not isinstance(raw, Mapping):
        raise InvalidEvent("retention.purge_requested carries no cutoffs")
    cutoffs = {}
    for category, day in raw.items():
        try:
            cutoffs[category] = datetime.combine(date.fromisoformat(str(day)), time(), tzinfo=UTC)
        except ValueError:
            raise InvalidEvent(f"cutoff of {category} is not a date: {day!r}") from None
    return cutoffs


def purge_requested_handler(
    purges: Mapping[str, Purge],
    runtime=None,
    also: Callable[[Event, object], Mapping[str, int]] | None = None,
):
    """The handler of ``retention.purge_requested``: runs the service's purge of each category the
    run names, drops the personal part of its old parked messages (with a runtime), and emits the
    service's report on the same transaction. ``also(event, ctx)`` does what else the run asks of
    the service (orders: the accounts without activity) and returns its counts for the report."""

    def purge_requested(event: Event, ctx) -> None:
        cutoffs = cutoffs_of(event)
        purged = dict(also(event, ctx)) if also is not None else {}
        purged.update(
            {
                category: purge(ctx, cutoffs[category])
                for category, purge in purges.items()
                if category in cutoffs
            }
        )
        shared = runtime is not None and runtime.parking_engine is runtime.engine
        if PARKED_MESSAGES in cutoffs and runtime is not None and (shared or not ctx.dry_run):
            # on the handler's transaction when ops is in its database; a parking database of
            # its own commits apart, which a dry run must not do (skipped there)
            purged[PARKED_MESSAGES] = runtime.parking.drop_personal_parts(
                runtime.settings.service,
                cutoffs[PARKED_MESSAGES],
                conn=ctx.conn if shared else None,
            )
        ctx.emit(
            purge_report_type(ctx.producer),
            {
                "run_id": str(event.data.get("run_id") or event.id),
                "service": ctx.producer,
                "purged": [{"category": c, "count": n} for c, n in sorted(purged.items())],
            },
        )
        log.info("retention.purged", run_id=event.data.get("run_id"), **purged)

    return purge_requested
