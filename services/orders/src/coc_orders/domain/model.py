"""What the orders service knows, as plain values (no I/O): the order aggregate, its documents,
the milestones of its life that the other services announce (paid, payment failed, sent to the
supplier, rejected by the supplier, certificate received, shipped; refunds are recorded without
being a milestone), and the accounts whose personal data was erased.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from coc_shared.values import aware_datetime

# event type -> the milestone of the order it announces
LIFECYCLE_MILESTONES: dict[str, str] = {
    "payment.confirmed": "paid",
    "payment.failed": "payment_failed",
    "documents.sent_to_supplier": "sent_to_supplier",
    "documents.rejected_by_supplier": "supplier_rejected",
    "certificate.received": "certificate_received",
    "certificate.shipped": "shipped",
}
# event type -> what it announces, recorded in the timeline without moving the order (lifecycle.RECORDED_ONLY)
RECORDED_FACTS: dict[str, str] = {
    "payment.refunded": "payment_refunded",
}
ORDER_EVENT_TYPES = {**LIFECYCLE_MILESTONES, **RECORDED_FACTS}


class InvalidEvent(ValueError):
    """The event cannot be recorded as it is: handling it again cannot succeed."""


@dataclass(frozen=True)
class OrderEvent:
    """One milestone of an order, as announced by the event that carried it."""

    order_id: str
    event_id: str
    event_type: str
    occurred_at: datetime

    @property
    def milestone(self) -> str:
        return ORDER_EVENT_TYPES[self.event_type]

    @property
    def moves_the_order(self) -> bool:
        return self.event_type in LIFECYCLE_MILESTONES

    @classmethod
    def from_message(cls, event_id: str, event_type: str, occurred_at: datetime | str, data: dict) -> "OrderEvent":
        if event_type not in ORDER_EVENT_TYPES:
            raise InvalidEvent(f"{event_type!r} is not an event of an order's life")
        order_id = data.get("order_id")
        if not isinstance(order_id, str) or not order_id:
            raise InvalidEvent(f"{event_type} carries no order_id")
        return cls(order_id=order_id, event_id=event_id, event_type=event_type,
                   occurred_at=aware_datetime(occurred_at, "occurred_at", InvalidEvent))


@dataclass(frozen=True)
class AccountDeactivation:
    """An account whose personal data the gdpr service erased; the orders kept for it are to be
    anonymised (that work comes with the order aggregate)."""

    account_id: str
    event_id: str
    erased_at: datetime

    @classmethod
    def from_message(cls, event_id: str, data: dict) -> "AccountDeactivation":
        account_id = data.get("account_id")
        if not isinstance(account_id, str) or not account_id:
            raise InvalidEvent("account.deactivated carries no account_id")
        return cls(account_id=account_id, event_id=event_id,
                   erased_at=aware_datetime(data.get("erased_at"), "erased_at", InvalidEvent))


@dataclass
class OrderDocument:
    id: str
    order_id: str
    kind: str
    content_type: str
    size: int
    sha256: str
    uploaded_at: datetime
    rejected_at: datetime | None = None  # refused by the supplier: no longer counts

    @property
    def valid(self) -> bool:
        return self.rejected_at is None


def missing_documents(required: list[str] | tuple[str, ...], documents: list[OrderDocument]) -> list[str]:
    """The required kinds of which no valid document (not refused by the supplier) was uploaded yet,
    in the catalogue's order."""
    present = {d.kind for d in documents if d.valid}
    return [kind for kind in required if kind not in present]


def complete_set(required: list[str] | tuple[str, ...], documents: list[OrderDocument]) -> list[str]:
    """Ids of the valid documents of the required kinds (what ``order.documents_completed`` names)."""
    wanted = set(required)
    return [d.id for d in documents if d.valid and d.kind in wanted]


def requested_kinds(requested) -> list[str]:
    """The document kinds a supplier asks for, as the customer can upload them: a kind the upload
    does not know becomes ``other`` (the customer is told by the notification which document)."""
    from .catalogue import DOCUMENT_KINDS
    kinds: list[str] = []
    for kind in requested or ():
        kind = kind if kind in DOCUMENT_KINDS else "other"
        if kind not in kinds:
            kinds.append(kind)
    return kinds


def order_number(seq: int, placed_at: datetime) -> str:
    """The human-readable number of the ``seq``-th order: COC-<year placed>-<six digits at least>."""
    return f"COC-{placed_at.year:04d}-{seq:06d}"


def sniff_content_type(head: bytes) -> str | None:
    """PDF, JPEG or PNG, recognised by their first bytes (never by a name or a declared type)."""
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    return None


@dataclass
class Order:
    """The order aggregate: what was ordered, by whom, for how much, and where it is in its life."""

    id: str
    status: str
    placed_at: datetime
    payment_method: str
    brand: str
    vin: str
    first_registration_date: object  # datetime.date
    vehicle_extra: dict
    total_cents: int
    currency: str
    vat_rate: str
    vat_cents: int
    documents_required: list
    marketing_consent: bool
    customer: dict
    shipping_address: dict
    billing_address: dict | None = None
    company: dict | None = None
    account_id: str | None = None
    access_token_sha256: str | None = None
    documents_completed_at: datetime | None = None
    seq: int | None = None

    @property
    def number(self) -> str:
        return order_number(self.seq or 0, self.placed_at)

    def apply(self, event_type: str):
        """Move the order for ``event_type``; returns the Transition (``applied`` False: ignored)."""
        from .lifecycle import transition
        result = transition(self.status, event_type)
        if result.applied:
            self.status = result.after.value
        return result

    def request_documents_again(self, requested) -> list[str]:
        """The supplier refused the documents of the ``requested`` kinds: the order requires them
        (again, or for the first time) and is no longer complete. Returns the kinds whose documents
        uploaded so far no longer count."""
        kinds = requested_kinds(requested)
        self.documents_required = list(self.documents_required) + [
            k for k in kinds if k not in self.documents_required]
        self.documents_completed_at = None
        return kinds
