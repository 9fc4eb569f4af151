"""The console's rules for customer support (no I/O): the support record and GDPR request forms,
who may search orders by e-mail, and the chart of failures per hour."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from .model import InputError

RECORD_CHANNELS = ("email", "chat", "phone")
REQUEST_CHANNELS = ("email", "chat", "phone", "letter")
REQUEST_KINDS = ("deactivation", "export", "correction")
# The search of an order by the customer's e-mail address: admins only, each search recorded.
MAY_SEARCH_BY_EMAIL = ("admin",)


def _text(form: dict, name: str, problems: dict, limit: int, required: bool = True) -> str:
    value = (form.get(name) or "").strip()
    if required and not value:
        problems[name] = "required"
    elif len(value) > limit:
        problems[name] = f"at most {limit} characters"
    return value


def support_record_form(form: dict) -> dict:
    """The orders service's body of a support record from the story page's form."""
    problems: dict[str, str] = {}
    channel = form.get("channel")
    if channel not in RECORD_CHANNELS:
        problems["channel"] = f"one of {', '.join(RECORD_CHANNELS)}"
    summary = _text(form, "summary", problems, 2000)
    if problems:
        raise InputError(problems)
    return {"channel": channel, "summary": summary}


def gdpr_request_form(form: dict) -> dict:
    """The gdpr service's body of a request on behalf of a customer, from the story's form."""
    problems: dict[str, str] = {}
    kind, channel = form.get("kind"), form.get("channel")
    if kind not in REQUEST_KINDS:
        problems["kind"] = f"one of {', '.join(REQUEST_KINDS)}"
    if channel not in REQUEST_CHANNELS:
        problems["channel"] = f"one of {', '.join(REQUEST_CHANNELS)}"
    body = {
        "kind": kind,
        "channel": channel,
        "verified_by": _text(form, "verified_by", problems, 200, required=False) or None,
        "verification": _text(form, "verification", problems, 500),
        # an export's link goes to the address on file: another only from an admin, with a reason
        "email": _text(form, "email", problems, 320, required=False) or None,
        "first_name": _text(form, "first_name", problems, 200, required=False) or None,
        "address_reason": _text(form, "address_reason", problems, 500, required=False),
        "correction": _text(form, "correction", problems, 2000, required=kind == "correction"),
    }
    if problems:
        raise InputError(problems)
    return body


def email_fingerprint(email: str, key: str) -> str:
    """What the audit log keeps of a searched address: its HMAC-SHA-256 under the console's
    secret (normalised), never the address, so that a search can be shown to be about a known
    address, but no one without the secret can find the address from a list of candidates."""
    normalised = email.strip().lower().encode()
    return hmac.new(key.encode(), normalised, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class HourBar:
    hour: str  # ISO 8601, the hour's start (UTC)
    count: int
    height: int  # 0-100, relative to the busiest hour


def hourly_chart(per_service: dict[str, list[dict]]) -> list[HourBar]:
    """Failures per hour of every service together ({hour, count} lists), oldest first."""
    totals: dict[str, int] = {}
    for hours in per_service.values():
        for h in hours:
            totals[h["hour"]] = totals.get(h["hour"], 0) + int(h["count"])
    top = max(totals.values(), default=0)
    return [
        HourBar(hour, count, round(100 * count / top) if top else 0)
        for hour, count in sorted(totals.items())
    ]
