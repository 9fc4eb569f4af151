"""Customer support records (pure rules): the internal record of the assistance a customer
received by e-mail, chat or phone, that the privacy policy promises. Staff attach one to an order
or to an account; it is personal data (retention category ``support_records``), erased with the
account and deleted at the end of its retention period."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from .errors import ValidationFailed

CHANNELS = ("email", "chat", "phone")
MAX_SUMMARY = 2000
SUPPORT_RECORDS = "support_records"  # the retention schedule's category


@dataclass(frozen=True)
class SupportRecord:
    id: str
    order_id: str | None
    account_id: str | None
    channel: str
    summary: str
    staff: str
    staff_role: str
    contacted_at: datetime  # when the customer wrote or called
    recorded_at: datetime

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "order_id": self.order_id,
            "account_id": self.account_id,
            "channel": self.channel,
            "summary": self.summary,
            "staff": self.staff,
            "staff_role": self.staff_role,
            "contacted_at": self.contacted_at.isoformat(),
            "recorded_at": self.recorded_at.isoformat(),
        }


def new_support_record(fields: dict, staff: str, staff_role: str, now: datetime) -> SupportRecord:
    """The record ``fields`` describe (order_id or account_id, channel, summary, contacted_at:
    default now, not in the future); ``ValidationFailed`` names every refused field. Whether the
    order or account exists is the use case's question."""
    problems: dict[str, list[str]] = {}
    order_id = _reference(fields.get("order_id"), "order_id", problems)
    account_id = _reference(fields.get("account_id"), "account_id", problems)
    if not order_id and not account_id and not problems:
        problems["order_id"] = ["name the order or the account (account_id) the record is about"]
    channel = fields.get("channel")
    if channel not in CHANNELS:
        problems["channel"] = [f"one of {', '.join(CHANNELS)}"]
    summary = fields.get("summary").strip() if isinstance(fields.get("summary"), str) else ""
    if not summary:
        problems["summary"] = ["what the customer asked and what was done: must not be blank"]
    elif len(summary) > MAX_SUMMARY:
        problems["summary"] = [f"at most {MAX_SUMMARY} characters"]
    contacted_at = fields.get("contacted_at") or now
    if not isinstance(contacted_at, datetime) or contacted_at.tzinfo is None:
        problems["contacted_at"] = ["a date and time with its offset"]
    elif contacted_at > now + timedelta(minutes=5):
        problems["contacted_at"] = ["the contact happened already: not a future time"]
    if problems:
        raise ValidationFailed(problems, "the support record is not valid")
    return SupportRecord(
        id=str(uuid.uuid4()),
        order_id=order_id,
        account_id=account_id,
        channel=channel,
        summary=summary,
        staff=staff,
        staff_role=staff_role,
        contacted_at=contacted_at,
        recorded_at=now,
    )


def _reference(value, name: str, problems: dict) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or len(value.strip()) > 36 or "\x00" in value:
        problems[name] = ["an id of at most 36 characters"]
        return None
    return value.strip()
