"""Purge runs of the retention schedule: the gdpr service computes, from the schedule, the cutoff
of each category and asks every service to apply the ends to its own data
(``retention.purge_requested``); it never reads another service's tables. Each service reports
what it removed (``retention.purged.<service>``); the run is complete once all have. Started by the
worker's ``purges`` loop once per GDPR_PURGE_INTERVAL_HOURS, or by ``coc-gdpr purge``."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, date, datetime, time, timedelta

from coc_shared.catalogue import ERASING_SERVICES
from coc_shared.consumer import HandlerContext
from coc_shared.envelope import Event, utcnow
from coc_shared.errors import InvalidEvent
from coc_shared.keystore import own_key_subject
from coc_shared.logging import get_logger
from coc_shared.values import as_utc

from ..adapters.repository import ExportRepository, OwnPurgeRepository, PurgeRunRepository
from ..domain.retention import inactivity_cutoffs, purge_cutoffs

log = get_logger(__name__)


def start_purge_run(runtime, trigger: str = "command") -> str:
    """Records a run, applies the ends of gdpr's own categories (its report is recorded at once)
    and asks every service to purge (orders also warns or deactivates the accounts without
    activity: ``inactivity``); returns the run's id."""
    now = utcnow()
    run_id = str(uuid.uuid4())
    schedule = runtime.config.schedule
    cutoffs = purge_cutoffs(schedule, now.date())
    inactivity = inactivity_cutoffs(schedule, now.date())
    shredded = _shred_summary_keys(runtime, cutoffs, now)
    with runtime.unit_of_work(correlation_id=run_id) as uow:
        runs = PurgeRunRepository(uow)
        runs.add(run_id, trigger, now, cutoffs)
        purged = _purge_own(uow, {c: _start_of(d) for c, d in cutoffs.items()}, now)
        if shredded is not None:
            OwnPurgeRepository(uow).summaries_shredded(shredded, now)
            purged[SUMMARY_KEYS] = len(shredded)
        runs.add_report(
            run_id,
            "gdpr",
            [{"category": c, "count": n} for c, n in sorted(purged.items())],
            now,
        )
        data = {
            "run_id": run_id,
            "requested_at": now.isoformat(),
            "cutoffs": {c: d.isoformat() for c, d in cutoffs.items()},
        }
        if inactivity is not None:
            data["inactivity"] = inactivity.as_data()
        uow.emit("retention.purge_requested", data, subject=run_id)
        uow.commit()
    log.info("retention.purge_started", run_id=run_id, trigger=trigger, categories=len(cutoffs))
    return run_id


SUMMARY_KEYS = "deactivation_summary_keys"


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _purge_own(uow, cutoffs: dict[str, datetime], now: datetime) -> dict[str, int]:
    """gdpr's own data past its end: its categories of the schedule, in the run's unit of work."""
    own = OwnPurgeRepository(uow)
    purged = {"data_exports": ExportRepository(uow).expire(now)}  # links expired: documents go
    steps = {
        "deactivation_requests": own.delete_done_requests,
        "export_records": own.delete_export_records,
        "correction_requests": own.delete_done_corrections,
        "marketing_contact": own.delete_stale_consents,
        "disclosures": own.delete_old_disclosures,
    }
    for category, purge in steps.items():
        if category in cutoffs:
            purged[category] = purge(cutoffs[category])
    return purged


def _shred_summary_keys(runtime, cutoffs: dict[str, date], now: datetime) -> list[str] | None:
    """The summary of an erasure (``account.deactivated``) is sealed with a key of its own that
    outlives the account's: notifications destroys it once the mail is sent; requests done
    before the category's cutoff get theirs destroyed here whatever happened (on the key
    store's connection, at once: a second destruction changes nothing). Returns the accounts
    whose key this run destroyed, None when the schedule has no such category."""
    if SUMMARY_KEYS not in cutoffs:
        return None
    with runtime.unit_of_work() as uow:
        account_ids = OwnPurgeRepository(uow).summaries_to_shred(_start_of(cutoffs[SUMMARY_KEYS]))
    if runtime.keys is not None:
        for account_id in account_ids:
            runtime.keys.destroy(own_key_subject("account.deactivated", account_id))
    return account_ids


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
