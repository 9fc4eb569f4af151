"""Disclosures of personal data to an authority (a court, the police, the tax or customs
administration), as plain values (no I/O).

Each disclosure is recorded by an admin: who asked (the requesting authority), on what legal
basis (a judicial requisition, a right of communication of the tax administration …), which data
categories of the retention schedule were disclosed, when, by which staff member, and the
request's reference. The log is append-only: a disclosure, once recorded, is never changed or
deleted (the service has no such use case, and the table's trigger refuses it).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

MAX_TEXT = {"authority": 300, "legal_basis": 300, "reference": 200, "subject": 200, "note": 2000}


class InvalidDisclosure(ValueError):
    """A disclosure that cannot be recorded: messages per field."""

    def __init__(self, fields: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in sorted(fields.items())))
        self.fields = fields


@dataclass(frozen=True)
class Disclosure:
    id: str
    authority: str
    legal_basis: str
    reference: str
    categories: tuple[str, ...]
    disclosed_on: date
    staff: str
    staff_role: str
    recorded_at: datetime
    subject: str | None = None  # the account or order concerned, when the request names one
    note: str = ""

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "authority": self.authority,
            "legal_basis": self.legal_basis,
            "reference": self.reference,
            "categories": list(self.categories),
            "disclosed_on": self.disclosed_on.isoformat(),
            "staff": self.staff,
            "staff_role": self.staff_role,
            "recorded_at": self.recorded_at.isoformat(),
            "subject": self.subject,
            "note": self.note,
        }


def _text(value, name: str, problems: dict, required: bool = True) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if required and not text:
        problems[name] = ["must not be blank"]
    elif len(text) > MAX_TEXT[name]:
        problems[name] = [f"at most {MAX_TEXT[name]} characters"]
    return text


def new_disclosure(
    fields: dict,
    staff: str,
    staff_role: str,
    known_categories: tuple[str, ...],
    now: datetime,
) -> Disclosure:
    """The disclosure to record from an admin's ``fields`` (authority, legal_basis, reference,
    categories, disclosed_on, subject, note); ``InvalidDisclosure`` names every refused field."""
    problems: dict[str, list[str]] = {}
    authority = _text(fields.get("authority"), "authority", problems)
    legal_basis = _text(fields.get("legal_basis"), "legal_basis", problems)
    reference = _text(fields.get("reference"), "reference", problems)
    subject = _text(fields.get("subject"), "subject", problems, required=False) or None
    note = _text(fields.get("note"), "note", problems, required=False)
    categories = fields.get("categories") or []
    unknown = [c for c in categories if c not in known_categories]
    if not categories:
        problems["categories"] = ["name at least one category of the retention schedule"]
    elif unknown:
        problems["categories"] = [
            f"not a category of the retention schedule: {', '.join(map(str, unknown))} "
            f"(known: {', '.join(known_categories)})"
        ]
    disclosed_on = fields.get("disclosed_on")
    if not isinstance(disclosed_on, date):
        problems["disclosed_on"] = ["a date is required"]
    elif disclosed_on > now.date():
        problems["disclosed_on"] = ["a disclosure is recorded once made: not a future date"]
    if problems:
        raise InvalidDisclosure(problems)
    return Disclosure(
        id=str(uuid.uuid4()),
        authority=authority,
        legal_basis=legal_basis,
        reference=reference,
        categories=tuple(dict.fromkeys(categories)),
        disclosed_on=disclosed_on,
        staff=staff,
        staff_role=staff_role,
        recorded_at=now,
        subject=subject,
        note=note,
    )
