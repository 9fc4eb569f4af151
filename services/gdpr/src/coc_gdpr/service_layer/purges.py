"""Purge runs of the retention schedule: the gdpr service computes, from the schedule, the cutoff
of each category and asks every service to apply the ends to its own data
(``retention.purge_requested``); it never reads another service's tables. Each service reports
what it removed (``retention.purged.<service>``); the run is complete once all have. Started by the
worker's ``purges`` loop once per GDPR_PURGE_INTERVAL_HOURS, or by ``coc-gdpr purge``."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

from coc_shared.catalogue import ERASING_SERVICES
from coc_shared.consumer import HandlerContext
from coc_shared.envelope import Event, utcnow
from coc_shared.errors import InvalidEvent
from coc_shared.logging import get_logger
from coc_shared.values import as_utc

from ..adapters.repository import ExportRepository, PurgeRunRepository
from ..domain.retention import purge_cutoffs

log = get_logger(__name__)


def start_purge_run(runtime, trigger: str = "command") -> str:
    """Records a run and asks every service to purge; returns the run's id."""
    now = utcnow()
    run_id = str(uuid.uuid4())
    cutoffs = purge_cutoffs(runtime.config.schedule, now.date())
    with runtime.unit_of_work(correlation_id=run_id) as uow:
        PurgeRunRepository(uow).add(run_id, trigger, now, cutoffs)
        ExportRepository(uow).expire(now)  # gdpr's own: exports whose link expired
        uow.emit(
            "retention.purge_requested",
            {
                "run_id": run_id,
                "requested_at": now.isoformat(),
                "cutoffs": {c: d.isoformat() for c, d in cutoffs.items()},
            },
            subject=run_id,
        )
        uow.commit()
    log.info("retention.purge_started", run_id=run_id, trigger=trigger, categories=len(cutoffs))
    return run_id


def record_purge_report(event: Event, ctx: HandlerContext) -> None:
    run_id, service = event.data.get("run_id"), event.data.get("service")
    if not (isinstance(run_id, str) and isinstance(service, str)):
        raise InvalidEvent("a purge report names no run or service")
    runs = PurgeRunRepository(ctx)
    run = runs.lock(run_id)
    if run is None:
        log.warning("retention.report_of_unknown_run", run_id=run_id, service=service)
        return
    runs.add_report(run_id, service, list(event.data.get("purged") or []), utcnow())
    if run.completed_at is None and set(ERASING_SERVICES) <= runs.reported_services(run_id):
        runs.complete(run_id, utcnow())
        log.info("retention.purge_completed", run_id=run_id)


def due(runtime, interval: timedelta) -> bool:
    with runtime.unit_of_work() as uow:
        last = PurgeRunRepository(uow).last_started_at()
    return last is None or utcnow() - as_utc(last) >= interval


def loop(runtime):
    """The worker's ``purges`` loop: a run when the last one is older than the interval."""
    interval = timedelta(hours=runtime.config.purge_interval_hours)

    def run(stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                if due(runtime, interval):
                    start_purge_run(runtime, "schedule")
            except Exception as exc:  # the database or broker is down: try again later
                log.warning("retention.purge_loop_error", error_type=type(exc).__name__)
            stop.wait(min(interval.total_seconds(), 300))

    return run


def recent_runs(runtime, limit: int = 20) -> list[dict]:
    with runtime.unit_of_work() as uow:
        return PurgeRunRepository(uow).recent(limit)
