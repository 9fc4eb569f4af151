"""GDPR requests that staff open on behalf of a customer who wrote or called (the privacy
policy's deactivation by e-mail): what is asked (deactivation, export, correction), through which
channel, and who verified that the person is the customer, and how. Plain rules, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

KINDS = ("deactivation", "export", "correction")
CHANNELS = ("email", "chat", "phone", "letter")
MAX_TEXT = {"verification": 500, "correction": 2000, "note": 1000, "address_reason": 500}
ADMIN = "admin"
# where an export's link goes: the address on file (the account's, or a guest order's), or one an
# admin gave with a reason
ON_FILE, GIVEN_BY_ADMIN = "on_file", "given_by_admin"


class OnBehalfRefused(Exception):
    """A request staff may not open as asked: ``status`` (403, 422) and the field at fault."""

    def __init__(self, message: str, status: int, field: str):
        super().__init__(message)
        self.status = status
        self.fields = {field: [message]}


def export_address(role: str, email: str | None, reason: str | None) -> str:
    """Where an export opened by staff is mailed (``ON_FILE`` or ``GIVEN_BY_ADMIN``): the link
    gives the customer's whole data, so only an admin may send it elsewhere, and says why."""
    if not email:
        return ON_FILE
    if role != ADMIN:
        raise OnBehalfRefused(
            "the link goes to the address on file: only an admin may give another", 403, "email"
        )
    if not (reason or "").strip():
        raise OnBehalfRefused(
            "why the link goes to another address than the one on file", 422, "address_reason"
        )
    return GIVEN_BY_ADMIN


@dataclass(frozen=True)
class OnBehalfRequest:
    """One request opened by staff; ``request_id`` is the deactivation's or export's request (the
    saga's), or the correction request's."""

    kind: str
    account_id: str | None
    order_id: str | None  # a guest's order (no account)
    channel: str
    verified_by: str
    verification: str  # how the person was verified (kept in gdpr's request row only)
    opened_by: str
    opened_at: datetime
    request_id: str
    joined: bool = False  # a request of the same subject was already pending: this one joins it
    correction: str = ""
    note: str = ""
    address: str | None = None  # an export's: ON_FILE or GIVEN_BY_ADMIN
    address_reason: str = ""

    @property
    def subject(self) -> str:
        return self.account_id or self.order_id or ""

    def recorded_details(self) -> dict:
        """What the support actions log keeps of it: the channel, who verified the person and
        that they did; how (free text, personal data) and a correction's text stay in gdpr's
        request row, under the retention schedule and erased with the subject."""
        details = {
            "kind": self.kind,
            "request_id": self.request_id,
            "joined": self.joined,
            "account_id": self.account_id,
            "order_id": self.order_id,
            "channel": self.channel,
            "verified_by": self.verified_by,
            "verified": True,
        }
        if self.address is not None:
            details["address"] = self.address
        if self.address == GIVEN_BY_ADMIN:
            details["address_reason"] = self.address_reason
        return details
