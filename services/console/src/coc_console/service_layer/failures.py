"""Failed (parked) messages of every service, through their staff APIs: grouped and charted per
hour (counted by each service's database), one message masked or revealed (admins, with a reason
in the audit log), discarded with a reason."""

from __future__ import annotations

from ..adapters.services_client import ServiceError, ServiceUnavailable, StaffApiClient
from ..domain.model import (
    MAY_DISCARD,
    MAY_REVEAL,
    FailureGroup,
    InputError,
    Staff,
    allow,
    masked_message,
    require_reason,
)
from ..domain.support import HourBar, hourly_chart
from . import audit

LIST_LIMIT = 1000


def parked_by_service(
    client: StaffApiClient, staff: Staff, services=None, **filters
) -> tuple[dict[str, list[dict]], dict[str, str]]:
    """({service: its parked messages}, {service: why it could not be asked})."""
    found, problems = {}, {}
    params = {"limit": str(LIST_LIMIT), **{k: v for k, v in filters.items() if v}}
    for service in services or client.service_urls:
        try:
            answer = client.call(service, "GET", "/v1/staff/parked", staff.name, staff.role, params)
            found[service] = answer.get("items", [])
        except (ServiceUnavailable, ServiceError) as exc:
            problems[service] = str(exc)
    return found, problems


def grouped(
    client: StaffApiClient, staff: Staff
) -> tuple[list[FailureGroup], list[HourBar], dict[str, str]]:
    """The groups waiting for a decision in every service and the failures per hour, as each
    service's database counts them (``coc_shared.parked_summary``)."""
    groups, per_hour, problems = [], {}, {}
    services = list(client.service_urls)
    calls = [
        {
            "service": s,
            "method": "GET",
            "path": "/v1/staff/parked-summary",
            "staff_name": staff.name,
            "role": staff.role,
        }
        for s in services
    ]
    for service, answer in zip(services, client.call_many(calls), strict=True):
        if isinstance(answer, Exception):
            problems[service] = str(answer)
            continue
        per_hour[service] = answer.get("per_hour", [])
        groups += [
            FailureGroup(
                service,
                g["event_type"],
                g["error_type"],
                g["count"],
                g["first_seen"],
                g["last_seen"],
                (),
            )
            for g in answer.get("groups", [])
        ]
    groups.sort(key=lambda g: (-g.count, g.service, g.event_type, g.error_type))
    return groups, hourly_chart(per_hour), problems


def group_messages(
    client: StaffApiClient, staff: Staff, service: str, event_type: str, error_type: str
) -> tuple[list[dict], dict[str, str]]:
    """The group's messages waiting for a decision, the oldest first (at most 200)."""
    check_service(client, service)
    params = {"event_type": event_type or "?", "error_type": error_type or "?"}
    try:
        answer = client.call(
            service, "GET", "/v1/staff/parked-summary/messages", staff.name, staff.role, params
        )
    except (ServiceUnavailable, ServiceError) as exc:
        return [], {service: str(exc)}
    return answer.get("items", []), {}


def check_service(client: StaffApiClient, service: str) -> None:
    if service not in client.service_urls:
        raise InputError({"service": f"one of {', '.join(client.service_urls)}"})


def message(client: StaffApiClient, staff: Staff, service: str, parked_id: int) -> dict | None:
    """One parked message with its personal part masked (None: no such message)."""
    check_service(client, service)
    found = client.call(
        service, "GET", f"/v1/staff/parked/{parked_id}", staff.name, staff.role, missing_ok=True
    )
    return masked_message(found) if found is not None else None


def reveal(
    runtime, client: StaffApiClient, staff: Staff, service: str, parked_id: int, reason: str
) -> dict | None:
    """The message in clear: admins only, the reason recorded before anything is shown."""
    check_service(client, service)
    allow(staff, MAY_REVEAL, "revealing personal data")
    reason = require_reason(reason)
    audit.record(runtime, staff, "reveal", f"{service}:parked:{parked_id}", reason)
    return client.call(
        service, "GET", f"/v1/staff/parked/{parked_id}", staff.name, staff.role, missing_ok=True
    )


def discard(
    runtime, client: StaffApiClient, staff: Staff, service: str, parked_id: int, reason: str
) -> dict:
    check_service(client, service)
    allow(staff, MAY_DISCARD, "discarding a message")
    reason = require_reason(reason)
    result = client.call(
        service,
        "POST",
        f"/v1/staff/parked/{parked_id}/discard",
        staff.name,
        staff.role,
        json={"reason": reason},
    )
    audit.record(runtime, staff, "discard", f"{service}:parked:{parked_id}", reason)
    return result
