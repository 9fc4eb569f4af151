"""GDPR requests that staff open on behalf of a customer who wrote or called (the privacy
policy's deactivation by e-mail): what is asked (deactivation, export, correction), through which
channel, and who verified that the person is the customer, and how. Plain rules, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

KINDS = ("deactivation", "export", "correction")
CHANNELS = ("email", "chat", "phone", "letter")
MAX_TEXT = {"verification": 500, "correction": 2000, "note": 1000}


@dataclass(frozen=True)
class OnBehalfRequest:
    """One request opened by staff; ``request_id`` is the deactivation's or export's request (the
    saga's), or for a correction the id of its record in the support actions log."""

    kind: str
    account_id: str | None
    order_id: str | None  # a guest's order (no account)
    channel: str
    verified_by: str
    verification: str  # how the person was verified
    opened_by: str
    opened_at: datetime
    request_id: str
    joined: bool = False  # a request of the same subject was already pending: this one joins it
    correction: str = ""
    note: str = ""

    @property
    def subject(self) -> str:
        return self.account_id or self.order_id or ""

    def recorded_details(self) -> dict:
        """What the support actions log keeps of it (the correction's text is personal data:
        only that one was asked)."""
        return {
            "kind": self.kind,
            "request_id": self.request_id,
            "joined": self.joined,
            "account_id": self.account_id,
            "order_id": self.order_id,
            "channel": self.channel,
            "verified_by": self.verified_by,
            "verification": self.verification,
        }
