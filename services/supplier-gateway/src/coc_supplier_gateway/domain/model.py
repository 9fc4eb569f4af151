"""Supplier requests, as plain values and rules (no I/O).

A request to the maker's COC supplier can go once three things are known, in whatever order their
events arrive: the order was placed (its vehicle chooses the supplier), it was paid, and every
document it requires was uploaded. Until then the request is ``pending``. Then the directory
decides: the request is ``ready`` (recorded "to send", with a new request id, for the sender) or,
when no supplier serves the vehicle or the order lacks what its supplier needs, on the staff's
``review`` list with the reason.

Its life with the supplier (``Progress``)::

  ready ─sent─► sent ─accepted─► accepted ─issued─► issued ─shipped─► shipped ─► delivered
                 │                  │       (certificate received) (carrier, tracking)
                 └─────rejected─────┴──► rejected ──(documents completed again)──► ready

A reply that comes after a later one (``accepted`` after ``issued``), twice, or after the request
ended has no effect (``late``, ``duplicate``, ``ignored``); a later reply implies the earlier steps
(``issued`` without ``accepted``; ``shipped`` without ``issued``: a certificate posted on paper).

``order.cancelled`` makes a request not yet sent ``cancelled``, for good: whatever arrives
afterwards is recorded but never makes it ``ready``. The sender takes a request under its row lock,
so a cancellation and a sending never both win.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from coc_shared.errors import InvalidEvent

from .directory import Directory, Supplier

PENDING = "pending"
READY = "ready"
REVIEW = "review"
SENT = "sent"
ACCEPTED = "accepted"
REJECTED = "rejected"
ISSUED = "issued"
SHIPPED = "shipped"
DELIVERED = "delivered"
CANCELLED = "cancelled"
STATUSES = (
    PENDING,
    READY,
    REVIEW,
    SENT,
    ACCEPTED,
    REJECTED,
    ISSUED,
    SHIPPED,
    DELIVERED,
    CANCELLED,
)
CANCELLABLE = (PENDING, READY, REVIEW)  # not handed to the supplier yet
WITH_SUPPLIER = (SENT, ACCEPTED)  # the supplier works on it: due time, overdue, resend
PROGRESS = {SENT: 0, ACCEPTED: 1, ISSUED: 2, SHIPPED: 3, DELIVERED: 4}
REPLY_KINDS = ("accepted", "rejected", "issued", "shipped")


def order_id_of(event_type: str, data: dict) -> str:
    order_id = data.get("order_id")
    if not isinstance(order_id, str) or not order_id:
        raise InvalidEvent(f"{event_type} carries no order_id")
    return order_id


def new_request_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Outcome:
    """What a reply (or a staff action) did to a request: ``applied``, ``late`` (a later step is
    known already), ``duplicate`` (this step is known), ``ignored`` (does not fit the request's
    state); ``events`` the events to emit, in order."""

    result: str
    events: tuple[str, ...] = ()
    implied: tuple[str, ...] = ()  # earlier steps taken as done

    @property
    def applied(self) -> bool:
        return self.result == "applied"


@dataclass
class SupplierRequest:
    order_id: str
    brand: str | None = None
    order_placed: bool = False
    paid: bool = False
    documents_completed: bool = False
    document_ids: tuple[str, ...] = ()
    status: str = PENDING
    # what the order says (order.placed, order.documents_completed)
    order_number: str | None = None
    vin: str | None = None
    maker: str | None = None
    first_registration_date: str | None = None
    vehicle_extra: dict = field(default_factory=dict)
    documents: tuple[dict, ...] = ()  # {"id", "kind", "content_type"}
    account_id: str | None = None
    access_token_sha256: str | None = None
    # personal data, kept only as the supplier or shipping needs it (erased on deactivation)
    customer_name: dict | None = None
    shipping_address: dict | None = None
    personal_erased_at: datetime | None = None
    # the supplier's side
    supplier: str | None = None
    request_id: str | None = None
    round: int = 0
    review_reason: str | None = None
    sent_at: datetime | None = None
    due_at: datetime | None = None
    overdue_at: datetime | None = None
    accepted_at: datetime | None = None
    rejected_at: datetime | None = None
    issued_at: datetime | None = None
    certificate_id: str | None = None
    certificate_storage_key: str | None = None
    certificate_sha256: str | None = None
    certificate_size: int | None = None
    original_posted: bool = False
    shipped_at: datetime | None = None
    shipped_by: str | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None
    next_tracking_at: datetime | None = None
    tracking_status: str | None = None
    delivered_at: datetime | None = None

    # ------------------------------------------------------------------ before the supplier
    @property
    def missing(self) -> list[str]:
        """What the request still waits for."""
        return [
            name
            for name, known in (
                ("order", self.order_placed),
                ("payment", self.paid),
                ("documents", self.documents_completed),
            )
            if not known
        ]

    def order_was_placed(self, data: dict, personal: dict | None, maker: str | None) -> None:
        brand = data.get("brand")
        if not isinstance(brand, str) or not brand.strip():
            raise InvalidEvent("order.placed carries no brand")
        self.brand = brand.strip()
        self.maker = maker
        self.order_number = data.get("order_number")
        self.vin = data.get("vin")
        self.first_registration_date = data.get("first_registration_date")
        extra = data.get("vehicle_extra") or {}
        self.vehicle_extra = {k: v for k, v in extra.items() if isinstance(v, str)}
        self.account_id = data.get("account_id")
        self.access_token_sha256 = data.get("access_token_sha256")
        personal = personal or {}
        self.customer_name = {
            "first_name": personal.get("first_name"),
            "last_name": personal.get("last_name"),
        }
        self.shipping_address = personal.get("shipping_address")
        self.order_placed = True

    def keep_only_needed_personal_data(self, directory: Directory) -> None:
        """The name and the shipping address are kept only when the vehicle's supplier needs them
        or this company ships the certificate (no supplier known yet: kept for the review)."""
        supplier = directory.for_vehicle(self.maker, self.brand)
        if supplier is None:
            return
        ships_ourselves = not supplier.ships_to_customer
        if not (supplier.needs.customer_name or ships_ourselves):
            self.customer_name = None
        if not (supplier.needs.shipping_address or ships_ourselves):
            self.shipping_address = None

    def payment_was_confirmed(self) -> None:
        self.paid = True

    def documents_were_completed(self, data: dict) -> None:
        document_ids = data.get("document_ids")
        if not isinstance(document_ids, list) or not all(
            isinstance(d, str) and d for d in document_ids
        ):
            raise InvalidEvent("order.documents_completed needs a list of document ids")
        self.document_ids = tuple(document_ids)
        kinds = {
            d.get("id"): d
            for d in data.get("documents") or []
            if isinstance(d, dict) and isinstance(d.get("id"), str)
        }
        self.documents = tuple(
            {
                "id": i,
                "kind": (kinds.get(i) or {}).get("kind"),
                "content_type": (kinds.get(i) or {}).get("content_type"),
            }
            for i in document_ids
        )
        self.documents_completed = True

    def order_was_cancelled(self) -> bool:
        """The order was cancelled: the request never goes to the supplier. True when it changed."""
        if self.status in CANCELLABLE:
            self.status = CANCELLED
            return True
        return False

    @property
    def cancelled(self) -> bool:
        return self.status == CANCELLED

    def prepare(self, directory: Directory) -> bool:
        """When everything is known (and the request is waiting for it, first or after the
        supplier rejected documents): ``ready`` with the supplier and a new request id, or on the
        review list with the reason. True when it became ready."""
        if self.status not in (PENDING, REJECTED) or self.missing:
            return False
        supplier = directory.for_vehicle(self.maker, self.brand)
        reason = self._cannot_send_to(supplier)
        self.supplier = supplier.code if supplier else None
        if reason is not None:
            self.status, self.review_reason = REVIEW, reason
            return False
        self.status, self.review_reason = READY, None
        self.round += 1
        self.request_id = new_request_id()
        self.sent_at = self.due_at = self.overdue_at = None
        self.accepted_at = self.rejected_at = None
        return True

    def _cannot_send_to(self, supplier: Supplier | None) -> str | None:
        if supplier is None:
            return f"no supplier serves this vehicle (maker {self.maker!r}, brand {self.brand!r})"
        kinds = {d.get("kind") for d in self.documents}
        missing = [k for k in supplier.needs.documents if k not in kinds]
        if missing:
            return f"{supplier.code} needs documents the order does not have: {', '.join(missing)}"
        extra = [f for f in supplier.needs.extra if not self.vehicle_extra.get(f)]
        if extra:
            return f"{supplier.code} needs vehicle fields the order does not have: {extra}"
        if supplier.needs.customer_name and not (self.customer_name or {}).get("last_name"):
            return f"{supplier.code} needs the customer's name, which is not kept (erased?)"
        if supplier.needs.shipping_address and not self.shipping_address:
            return f"{supplier.code} needs the shipping address, which is not kept (erased?)"
        return None

    def documents_for(self, supplier: Supplier) -> list[dict]:
        """The documents the supplier needs (by kind), in the order's order."""
        return [d for d in self.documents if d.get("kind") in supplier.needs.documents]

    # ------------------------------------------------------------------ with the supplier
    def was_sent(self, now: datetime, supplier: Supplier) -> bool:
        """The request was handed to the supplier (publish confirmed, or HTTP 2xx). True the first
        time for this round (then ``documents.sent_to_supplier``)."""
        if self.status != READY:
            return False
        self.status = SENT
        self.sent_at = now
        self.due_at = now + timedelta(hours=supplier.turnaround_hours)
        return True

    def falls_due(self, now: datetime) -> bool:
        """Past its due time without an answer that ends it, not announced yet: True once."""
        if self.status in WITH_SUPPLIER and self.due_at and self.due_at <= now:
            if self.overdue_at is None:
                self.overdue_at = now
                return True
        return False

    @property
    def overdue(self) -> bool:
        return self.overdue_at is not None and self.status in WITH_SUPPLIER

    def _step(self, target: str) -> str | None:
        """``late``/``duplicate``/``ignored`` when the request cannot move to ``target``."""
        if self.status not in PROGRESS:
            return "ignored"
        if PROGRESS[self.status] == PROGRESS[target]:
            return "duplicate"
        if PROGRESS[self.status] > PROGRESS[target]:
            return "late"
        return None

    def accepted(self, now: datetime) -> Outcome:
        refusal = self._step(ACCEPTED)
        if refusal:
            return Outcome(refusal)
        self.status, self.accepted_at = ACCEPTED, now
        # the order's timeline shows the step (an implied acceptance is told by what implied it)
        return Outcome("applied", ("supplier.request_accepted",))

    def rejected(self, now: datetime) -> Outcome:
        if self.status not in WITH_SUPPLIER:
            return Outcome("duplicate" if self.status == REJECTED else "late")
        self.status, self.rejected_at = REJECTED, now
        # the customer uploads new documents: order.documents_completed comes again
        self.documents_completed = False
        return Outcome("applied", ("documents.rejected_by_supplier",))

    def issued(self, now: datetime, certificate_id: str, original_posted: bool) -> Outcome:
        refusal = self._step(ISSUED)
        if refusal:
            return Outcome(refusal)
        implied = (ACCEPTED,) if self.status == SENT else ()
        self.accepted_at = self.accepted_at or now
        self.status, self.issued_at = ISSUED, now
        self.certificate_id, self.original_posted = certificate_id, original_posted
        return Outcome("applied", ("certificate.received",), implied)

    def shipped(
        self,
        now: datetime,
        by: str,
        carrier: str,
        tracking_number: str,
        tracking_url: str | None,
        certificate_id: str,
    ) -> Outcome:
        refusal = self._step(SHIPPED)
        if refusal:
            return Outcome(refusal)
        events: tuple[str, ...] = ("certificate.shipped",)
        implied: tuple[str, ...] = ()
        if self.status in WITH_SUPPLIER:  # shipped on paper without an "issued" first
            implied = (ACCEPTED, ISSUED) if self.status == SENT else (ISSUED,)
            self.accepted_at = self.accepted_at or now
            self.issued_at = now
            self.certificate_id, self.original_posted = certificate_id, True
            events = ("certificate.received", "certificate.shipped")
        self.status, self.shipped_at, self.shipped_by = SHIPPED, now, by
        self.carrier, self.tracking_number, self.tracking_url = (
            carrier,
            tracking_number,
            tracking_url,
        )
        self.next_tracking_at = now
        return Outcome("applied", events, implied)

    def delivered(self, at: datetime) -> Outcome:
        refusal = self._step(DELIVERED)
        if refusal:
            return Outcome(refusal)
        self.status, self.delivered_at, self.next_tracking_at = DELIVERED, at, None
        # shipping needs the name and the address no more
        self.customer_name = self.shipping_address = None
        return Outcome("applied", ("certificate.delivered",))

    def erase_personal_data(self, now: datetime) -> None:
        self.customer_name = self.shipping_address = None
        self.personal_erased_at = now

    @property
    def to_ship_by_company(self) -> bool:
        return self.status == ISSUED and self.shipped_at is None
