"""Deactivation requests, as plain values (no I/O).

A customer's request to deactivate their account must be answered without undue delay and at
the latest within one month of its receipt (GDPR art. 12(3)); the request records that deadline.
While a request of an account is pending, a new request of the same account joins it.
Carrying the erasure out (and emitting ``account.deactivated``) comes in a later step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from coc_shared.errors import InvalidEvent
from coc_shared.values import aware_datetime

ANSWER_WITHIN = timedelta(days=30)
PENDING = "pending"


@dataclass(frozen=True)
class DeactivationRequest:
    account_id: str
    event_id: str
    requested_at: datetime
    status: str = PENDING

    @property
    def due_by(self) -> datetime:
        return self.requested_at + ANSWER_WITHIN

    @property
    def pending(self) -> bool:
        return self.status == PENDING

    @classmethod
    def from_message(cls, event_id: str, data: dict) -> DeactivationRequest:
        account_id = data.get("account_id")
        if not isinstance(account_id, str) or not account_id:
            raise InvalidEvent("account.deactivation_requested carries no account_id")
        return cls(
            account_id=account_id,
            event_id=event_id,
            requested_at=aware_datetime(data.get("requested_at"), "requested_at", InvalidEvent),
        )


def request_to_open(
    pending: DeactivationRequest | None, new: DeactivationRequest
) -> DeactivationRequest | None:
    """The request to record for ``new``: itself, or None when the account has a pending one."""
    if pending is not None and pending.pending and pending.account_id == new.account_id:
        return None
    return new


WITHDRAWN = "withdrawn"


@dataclass(frozen=True)
class ConsentWithdrawal:
    """A withdrawal of consent to marketing (``marketing.unsubscribed``): the account, or for a
    guest the SHA-256 of the address (never the address itself), the purpose and when."""

    event_id: str
    account_id: str | None
    address_sha256: str | None
    purpose: str
    changed_at: datetime
    source: str

    @classmethod
    def from_message(cls, event_id: str, data: dict, personal: dict | None) -> ConsentWithdrawal:
        import hashlib

        email = (personal or {}).get("email")
        account_id = data.get("account_id") or None
        if not account_id and not (isinstance(email, str) and email.strip()):
            raise InvalidEvent("marketing.unsubscribed names neither an account nor an address")
        digest = (
            hashlib.sha256(email.strip().lower().encode()).hexdigest()
            if isinstance(email, str) and email.strip()
            else None
        )
        return cls(
            event_id=event_id,
            account_id=account_id,
            address_sha256=digest,
            purpose=data.get("purpose") or "marketing_email",
            changed_at=aware_datetime(data.get("withdrawn_at"), "withdrawn_at", InvalidEvent),
            source=data.get("source") or "one_click",
        )
