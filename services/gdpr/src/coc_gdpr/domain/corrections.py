"""Requests to correct personal data (GDPR 16), opened by staff on behalf of the customer: what is
to be corrected, answered within one month (GDPR 12(3)), then marked done by the staff member who
made the change, saying what was changed. Plain rules, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

ANSWER_WITHIN = timedelta(days=30)
OPEN, DONE = "open", "done"
MAX_DONE_TEXT = 2000


class CorrectionRefused(Exception):
    """A correction request that cannot be marked done: ``status`` 404 or 409."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class CorrectionRequest:
    request_id: str
    account_id: str | None
    order_id: str | None  # a guest's order (no account), or the order written about
    channel: str
    verified_by: str
    verification: str
    correction: str  # what the customer asked to correct
    note: str
    opened_by: str
    requested_at: datetime
    status: str = OPEN
    done_at: datetime | None = None
    done_by: str | None = None
    changed: str | None = None  # what was changed, by ``done_by``

    @property
    def subject(self) -> str:
        return self.account_id or self.order_id or ""

    @property
    def due_by(self) -> datetime:
        return self.requested_at + ANSWER_WITHIN

    def late(self, now: datetime) -> bool:
        """Still open after its deadline (or done after it)."""
        return (self.done_at or now) > self.due_by

    def done(self, by: str, changed: str, at: datetime) -> CorrectionRequest:
        if self.status == DONE:
            raise CorrectionRefused(f"done already, by {self.done_by}", 409)
        return replace(self, status=DONE, done_at=at, done_by=by, changed=changed.strip())
