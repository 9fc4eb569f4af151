"""Stuck orders: the list (staff API) and the detector (the worker's ``stuck`` loop and the
``coc-orders report-stuck`` command), which emits ``order.stuck`` once per order, state and since,
recording each report with its event in the same transaction."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime

from coc_shared.envelope import utcnow
from coc_shared.logging import get_logger

from ..adapters import stuck as stuck_adapters
from ..adapters.stuck import StuckRepository
from ..domain.model import order_number
from ..domain.stuck import Deadlines, StuckOrder, stuck

log = get_logger(__name__)

BATCH = 500


def _stuck_among(repo, deadlines, now, limit, after_seq, order_id=None):
    """(stuck orders among the next ``limit`` candidates, the last candidate's number or None)."""
    candidates = repo.candidates(
        deadlines.earliest_by_status(), now, limit, after_seq=after_seq, order_id=order_id
    )
    found = [s for s in (stuck(c, deadlines, now) for c in candidates) if s is not None]
    return found, (candidates[-1].seq if len(candidates) == limit else None)


def list_stuck(
    runtime,
    deadlines: Deadlines,
    *,
    limit: int = 100,
    after_seq: int = 0,
    order_id: str | None = None,
    now: datetime | None = None,
) -> tuple[list[StuckOrder], int | None]:
    """Orders stuck now (by number, after ``after_seq``), each with when it was reported (None:
    not yet); and the number to continue after, or None at the end."""
    now = now or utcnow()
    with runtime.unit_of_work() as uow:
        repo = StuckRepository(uow)
        found: list[StuckOrder] = []
        cursor: int | None = after_seq
        while cursor is not None and len(found) < limit:
            batch, cursor = _stuck_among(repo, deadlines, now, BATCH, cursor, order_id)
            found.extend(batch)
        found = found[:limit]
        if len(found) == limit:
            cursor = found[-1].seq
        reported = repo.reported([s.order_id for s in found])
    items = [StuckOrder(**{**s.__dict__, "reported_at": reported.get(s.key)}) for s in found]
    return items, cursor


def report_stuck(
    runtime, deadlines: Deadlines, now: datetime | None = None, batch: int = BATCH
) -> list[StuckOrder]:
    """Emit ``order.stuck`` for each order stuck now and not reported yet in this state since
    this moment; returns those reported. One transaction per batch of candidates."""
    now = now or utcnow()
    reported_now: list[StuckOrder] = []
    cursor: int | None = 0
    while cursor is not None:
        with runtime.unit_of_work() as uow:
            repo = StuckRepository(uow)
            found, cursor = _stuck_among(repo, deadlines, now, batch, cursor)
            already = repo.reported([s.order_id for s in found])
            for s in found:
                if s.key in already:
                    continue
                event = uow.emit(
                    "order.stuck", s.event_data(), subject=s.order_id, correlation_id=s.order_id
                )
                repo.record(s, event.id, now)
                reported_now.append(s)
            uow.commit()
    if reported_now:  # one line a pass (each order is in its order.stuck event)
        by_state = Counter(s.state for s in reported_now)
        log.warning(
            "orders.stuck_reported", count=len(reported_now), **dict(sorted(by_state.items()))
        )
    return reported_now


def loop(runtime):
    """The worker's ``stuck`` loop: the detector every ORDERS_STUCK_CHECK_MINUTES."""
    config = runtime.config

    def run(stop: threading.Event) -> None:
        # a round after each interval, the first one too: a worker (re)started does not report at
        # once what the previous one may be reporting
        while not stop.wait(config.stuck_check.total_seconds()):
            try:
                report_stuck(runtime, config.deadlines)
            except Exception as exc:  # the database is down: try again at the next round
                log.warning("order.stuck_loop_error", error_type=type(exc).__name__)

    return run


def order_states(runtime, after_seq: int, limit: int) -> tuple[list[dict], int | None]:
    """A page of every order's status, by number (the reconciliation's source): the items and
    the number to continue after, or None at the end."""
    with runtime.unit_of_work() as uow:
        rows = stuck_adapters.order_states(uow, after_seq, limit)
    items = [
        {
            "order_id": r["id"],
            "number": order_number(r["seq"], r["placed_at"]),
            "status": r["status"],
            "updated_at": r["updated_at"],
        }
        for r in rows
    ]
    return items, (rows[-1]["seq"] if len(rows) == limit else None)
