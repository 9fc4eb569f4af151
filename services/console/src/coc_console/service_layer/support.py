"""Customer support from the console, through the services' staff APIs: a support record on an
order (orders keeps it), a GDPR request opened on behalf of the customer who wrote or called (the
gdpr service starts it), and the admins' search of orders by the customer's e-mail address. Each
is recorded in the console's audit log."""

from __future__ import annotations

from ..adapters.services_client import ServiceUnavailable, StaffApiClient
from ..domain.model import Staff, allow
from ..domain.support import (
    MAY_SEARCH_BY_EMAIL,
    email_fingerprint,
    gdpr_request_form,
    support_record_form,
)
from . import audit


def add_support_record(runtime, client: StaffApiClient, staff: Staff, order: dict, form) -> dict:
    body = {"order_id": order["id"], **support_record_form(form)}
    record = client.call(
        "orders", "POST", "/v1/staff/support-records", staff.name, staff.role, json=body
    )
    audit.record(runtime, staff, "support_record", order["id"], None, {"channel": body["channel"]})
    return record


def open_gdpr_request(runtime, client: StaffApiClient, staff: Staff, order: dict, form) -> dict:
    """The request for the order's account (a guest's order: the order itself)."""
    body = gdpr_request_form(form)
    body.update(account_id=order.get("account_id"), order_id=order["id"])
    opened = client.call(
        "gdpr", "POST", "/v1/staff/requests-on-behalf", staff.name, staff.role, json=body
    )
    details = {k: opened.get(k) for k in ("kind", "request_id", "channel", "verified_by", "joined")}
    # how the person was verified (free text) stays in gdpr's request row only
    audit.record(runtime, staff, f"gdpr_{body['kind']}", order["id"], None, details)
    return opened


def orders_by_email(runtime, client: StaffApiClient, staff: Staff, email: str) -> list[dict]:
    """Admins only; the search is recorded (the address's keyed fingerprint, never the
    address)."""
    allow(staff, MAY_SEARCH_BY_EMAIL, "searching orders by e-mail")
    key = runtime.config.audit_key
    if not key:
        raise ServiceUnavailable("the console has no CONSOLE_AUDIT_KEY: searches by e-mail are off")
    found = client.call(  # the address in the body, never in a URL
        "orders", "POST", "/v1/staff/orders/search", staff.name, staff.role, json={"email": email}
    )
    items = found.get("items", [])
    audit.record(
        runtime,
        staff,
        "search_by_email",
        "orders:by-email",
        None,
        {"email_hmac": email_fingerprint(email, key), "found": [o["number"] for o in items]},
    )
    return items
