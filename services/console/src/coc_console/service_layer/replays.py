"""Safe replay of a group of parked messages, through the owning service's staff API
(``coc_shared.replay``): a dry run of the group, then a progressive replay that the service runs
and stops by itself at the first message failing again; the console polls its report. Each step
is in the console's audit log (who, why, the group, the run and, once known, its outcome); the
service records the same in its support actions with the ids of every batch."""

from __future__ import annotations

from ..adapters.services_client import StaffApiClient
from ..domain.model import MAY_REPLAY, InputError, Staff, allow, require_reason
from . import audit
from .failures import check_service

FINISHED = ("completed", "stopped", "abandoned")


def _group(client: StaffApiClient, service: str, event_type: str, error_type: str) -> dict:
    check_service(client, service)
    fields = {
        k: "required" for k, v in (("event_type", event_type), ("error_type", error_type)) if not v
    }
    if fields:
        raise InputError(fields)
    return {"event_type": event_type, "error_type": error_type}


def group_target(service: str, event_type: str, error_type: str) -> str:
    return f"{service}:group:{event_type}:{error_type}"[:200]


def run_target(service: str, run_id: str) -> str:
    return f"{service}:replay:{run_id}"


def dry_run(
    runtime, client: StaffApiClient, staff: Staff, service: str, event_type: str, error_type: str
) -> dict:
    """What the group's messages would do if replayed now (nothing is kept by the service)."""
    group = _group(client, service, event_type, error_type)
    allow(staff, MAY_REPLAY, "a dry run")
    summary = client.call(
        service, "POST", "/v1/staff/parked/dry-run", staff.name, staff.role, json=group
    )
    audit.record(
        runtime,
        staff,
        "dry_run",
        group_target(service, event_type, error_type),
        None,
        {k: summary.get(k) for k in ("count", "tried", "would_succeed", "would_fail")},
    )
    return summary


def start(
    runtime,
    client: StaffApiClient,
    staff: Staff,
    service: str,
    event_type: str,
    error_type: str,
    reason: str,
) -> dict:
    """Start the progressive replay of a group at its service; returns the run's first report."""
    group = _group(client, service, event_type, error_type)
    allow(staff, MAY_REPLAY, "replaying messages")
    reason = require_reason(reason)
    started = client.call(
        service,
        "POST",
        "/v1/staff/parked/replays",
        staff.name,
        staff.role,
        json={**group, "reason": reason},
    )
    audit.record(
        runtime,
        staff,
        "replay",
        run_target(service, started["id"]),
        reason,
        {**group, "count": started.get("count")},
    )
    return started


def report(runtime, client: StaffApiClient, staff: Staff, service: str, run_id: str):
    """The run's report (None: no such run); its outcome goes to the audit log once finished."""
    check_service(client, service)
    found = client.call(
        service,
        "GET",
        f"/v1/staff/parked/replays/{run_id}",
        staff.name,
        staff.role,
        missing_ok=True,
    )
    if found is not None and found.get("status") in FINISHED:
        audit.record_once(  # once per run (a unique index), however often the report is read
            runtime,
            staff,
            "replay_outcome",
            run_target(service, run_id),
            found.get("reason"),
            {
                k: found.get(k)
                for k in ("status", "stopped_because", "replayed", "handled", "failed_again")
            },
        )
    return found
