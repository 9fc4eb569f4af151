"""A provider's call as the audit log keeps it (plain values, no I/O).

Every call is kept (card numbers masked before it gets here): who called, when, its headers and
raw body (bytes, as received: no text column has to take a NUL or an invalid byte), and what
became of it. A call whose proof is wrong keeps only the first ``REJECTED_BODY_PREFIX`` bytes of
its body: anyone can send one, and the audit log is not a store for them. The record is built as
the call is handled and written once, with its final verdict:

* ``accepted``: verified and applied; ``outcome`` is what it did (``domain.payments`` decisions,
  ``capture_requested``...), ``order_id`` the order it was about;
* ``duplicate``: a notification id seen before (``detail``: ``duplicate_of:<callback id>``);
  nothing applied;
* ``rejected``: its proof is wrong or missing; ``unreadable``: signed, but not what we expect;
  ``unverified``: its proof could not be checked now (the provider delivers it again).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

ACCEPTED, DUPLICATE, REJECTED, UNREADABLE, UNVERIFIED = (
    "accepted",
    "duplicate",
    "rejected",
    "unreadable",
    "unverified",
)
DETAIL_MAX = 2000
REJECTED_BODY_PREFIX = 1024


@dataclass(frozen=True)
class Callback:
    id: int  # known before the row is written: the claim and the confirmation name it
    provider: str
    received_at: datetime
    headers: dict
    body: bytes  # text given is kept as its UTF-8 bytes
    verdict: str = ACCEPTED
    dedupe_key: str | None = None
    order_id: str | None = None
    outcome: str | None = None
    detail: str | None = None

    def __post_init__(self):
        if isinstance(self.body, str):
            object.__setattr__(self, "body", self.body.encode("utf-8", "surrogateescape"))
        if self.detail is not None and len(self.detail) > DETAIL_MAX:
            object.__setattr__(self, "detail", self.detail[:DETAIL_MAX])

    def keyed(self, dedupe_key: str) -> Callback:
        """The provider's notification id, which a repeated delivery carries again."""
        return replace(self, dedupe_key=dedupe_key)

    def rejected(self, why: str) -> Callback:
        """Its proof is wrong or missing: kept with a short prefix of its body."""
        return replace(self, verdict=REJECTED, detail=why, body=self.body[:REJECTED_BODY_PREFIX])

    def unreadable(self, why: str) -> Callback:
        return replace(self, verdict=UNREADABLE, detail=why)

    def unverified(self, why: str) -> Callback:
        return replace(self, verdict=UNVERIFIED, detail=why)

    def duplicate_of(self, earlier_id: int) -> Callback:
        return replace(self, verdict=DUPLICATE, detail=f"duplicate_of:{earlier_id}")

    def concluded(
        self, outcome: str, order_id: str | None = None, detail: str | None = None
    ) -> Callback:
        """Applied: what it did (the verdict stays, ``accepted`` unless it was a duplicate)."""
        return replace(
            self,
            outcome=outcome,
            order_id=order_id,
            detail=detail if detail is not None else self.detail,
        )
