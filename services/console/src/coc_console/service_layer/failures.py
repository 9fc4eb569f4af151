"""Failed (parked) messages of every service, through their staff APIs: grouped, one message
masked or revealed (admins, with a reason in the audit log), discarded with a reason."""

from __future__ import annotations

from ..adapters.services_client import ServiceError, ServiceUnavailable, StaffApiClient
from ..domain.model import (
    MAY_DISCARD,
    MAY_REVEAL,
    FailureGroup,
    InputError,
    Staff,
    allow,
    group_parked,
    masked_message,
    require_reason,
)
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


def grouped(client: StaffApiClient, staff: Staff) -> tuple[list[FailureGroup], dict[str, str]]:
    found, problems = parked_by_service(client, staff)
    return group_parked(found), problems


def group_messages(
    client: StaffApiClient, staff: Staff, service: str, event_type: str, error_type: str
) -> tuple[list[dict], dict[str, str]]:
    check_service(client, service)
    found, problems = parked_by_service(client, staff, [service], event_type=event_type)
    items = [i for i in found.get(service, []) if (i.get("error_type") or "?") == error_type]
    return items, problems


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
