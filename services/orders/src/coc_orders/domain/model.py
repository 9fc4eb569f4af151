"""What the orders service knows, as plain values (no I/O): the order aggregate, its documents,
the milestones of its life that the other services announce (paid, payment failed, sent to the
supplier, rejected by the supplier, certificate received, shipped, delivered, refunded; other
facts are recorded without being a milestone), and the refunds payments makes of it. Accounts whose
personal data was erased are ``coc_shared.deactivation``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from coc_shared.errors import InvalidEvent
from coc_shared.tokens import access_token_matches
from coc_shared.values import aware_datetime

from .errors import NotAllowedNow, TooManyDocuments
from .lifecycle import accepts_documents, transition, why_not_cancellable
from .vat import STANDARD, Pricing, price

# event type -> the milestone of the order it announces
LIFECYCLE_MILESTONES: dict[str, str] = {
    "payment.confirmed": "paid",
    "payment.failed": "payment_failed",
    "documents.sent_to_supplier": "sent_to_supplier",
    "documents.rejected_by_supplier": "supplier_rejected",
    "certificate.received": "certificate_received",
    "certificate.shipped": "shipped",
    "certificate.delivered": "delivered",
    "refund.completed": "refunded",  # when it gives the sale back (Order.refund_settled)
}
# event type -> what it announces, recorded in the timeline without moving the order
# (lifecycle.RECORDED_ONLY)
RECORDED_FACTS: dict[str, str] = {
    "payment.refunded": "payment_refunded",
    "supplier.request_overdue": "supplier_overdue",
    "supplier.request_accepted": "supplier_accepted",
    "invoice.issued": "invoice_issued",
    "refund.failed": "refund_failed",
    "order.stuck": "stuck",  # its own event: the detector found it past a deadline (domain.stuck)
}
# event types that tell one of the order's refunds (Refund, by refund id): its reason, its
# completion (a failure, tried again by staff, is only recorded: RECORDED_FACTS)
REFUND_EVENTS: dict[str, str] = {
    "refund.requested": "refund_requested",
    "refund.completed": "refunded",
}
ORDER_EVENT_TYPES = {**REFUND_EVENTS, **LIFECYCLE_MILESTONES, **RECORDED_FACTS}
# the refund reasons (refund.requested) that give the sale back; a duplicate payment's refund
# leaves the sale as it was
SALE_ENDING_REFUNDS = frozenset({"cancelled_after_payment", "supplier_unable"})
# documents an order takes (those the supplier refused do not count): enough for every kind and a
# few attempts, not a file store
MAX_DOCUMENTS_PER_ORDER = 8
MAX_DOCUMENTS_PER_KIND = 3
# the timeline's outcome of a payment.confirmed whose amount or currency is not the order's total:
# not applied (the order is not paid), logged as an error for staff to look into
AMOUNT_MISMATCH = "amount_mismatch"


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
    def from_message(
        cls, event_id: str, event_type: str, occurred_at: datetime | str, data: dict
    ) -> OrderEvent:
        if event_type not in ORDER_EVENT_TYPES:
            raise InvalidEvent(f"{event_type!r} is not an event of an order's life")
        order_id = data.get("order_id")
        if not isinstance(order_id, str) or not order_id:
            raise InvalidEvent(f"{event_type} carries no order_id")
        return cls(
            order_id=order_id,
            event_id=event_id,
            event_type=event_type,
            occurred_at=aware_datetime(occurred_at, "occurred_at", InvalidEvent),
        )


@dataclass
class Refund:
    """One refund of the order's money, as payments announces it: ``refund.requested`` (the
    reason, the credit note) and ``refund.completed``, in whatever order they are handled."""

    refund_id: str
    order_id: str
    amount_cents: int
    currency: str
    reason: str | None = None  # known once refund.requested was handled
    credit_note_number: str | None = None
    status: str = "requested"  # requested | completed
    requested_at: datetime | None = None
    completed_at: datetime | None = None

    @classmethod
    def learn(
        cls, known: Refund | None, event_type: str, data: dict, occurred_at: datetime
    ) -> Refund:
        """``known`` (None: the first event of this refund) with what ``event_type`` tells."""
        refund_id, amount = data.get("refund_id"), data.get("amount")
        if not isinstance(refund_id, str) or not refund_id:
            raise InvalidEvent(f"{event_type} carries no refund_id")
        if not isinstance(amount, dict) or type(amount.get("amount_cents")) is not int:
            raise InvalidEvent(f"{event_type} carries no amount")
        refund = known or cls(
            refund_id=refund_id,
            order_id=data["order_id"],
            amount_cents=amount["amount_cents"],
            currency=str(amount.get("currency") or ""),
        )
        if refund.order_id != data["order_id"]:
            raise InvalidEvent(f"{event_type}: refund {refund_id} is another order's")
        if event_type == "refund.requested":
            refund.reason = data.get("reason")
            refund.credit_note_number = data.get("credit_note_number")
            refund.requested_at = occurred_at
        elif event_type == "refund.completed":
            refund.status, refund.completed_at = "completed", occurred_at
        else:
            raise InvalidEvent(f"{event_type} does not tell a refund")
        return refund

    @property
    def ends_the_sale(self) -> bool:
        """Completed, for a reason that gives the sale back (not a duplicate payment's)."""
        return self.status == "completed" and self.reason in SALE_ENDING_REFUNDS


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


def missing_documents(
    required: list[str] | tuple[str, ...], documents: list[OrderDocument]
) -> list[str]:
    """The required kinds of which no valid document (not refused by the supplier) was uploaded yet,
    in the order the brand lists them."""
    present = {d.kind for d in documents if d.valid}
    return [kind for kind in required if kind not in present]


def complete_set(
    required: list[str] | tuple[str, ...], documents: list[OrderDocument]
) -> list[str]:
    """Ids of the valid documents of the required kinds (what ``order.documents_completed``
    names)."""
    wanted = set(required)
    return [d.id for d in documents if d.valid and d.kind in wanted]


def requested_kinds(requested) -> list[str]:
    """The document kinds a supplier asks for, as the customer can upload them: a kind the upload
    does not know becomes ``other`` (the customer is told by the notification which document)."""
    from .brands import DOCUMENT_KINDS

    kinds: list[str] = []
    for kind in requested or ():
        kind = kind if kind in DOCUMENT_KINDS else "other"
        if kind not in kinds:
            kinds.append(kind)
    return kinds


def order_number(seq: int, placed_at: datetime) -> str:
    """The human-readable number of the ``seq``-th order: COC-<year placed>-<six digits at
    least>."""
    return f"COC-{placed_at.year:04d}-{seq:06d}"


def sniff_content_type(head: bytes) -> str | None:
    """PDF, JPEG or PNG, recognised by their first bytes (never by a name or a declared type); what
    they really are is then checked by their parsers (``adapters.documents``)."""
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
    vat_regime: str = STANDARD  # domain.vat: standard | reverse_charge
    vat_check: str | None = None  # VIES's answer at order time (valid | unavailable), if asked

    @classmethod
    def place(
        cls,
        *,
        id: str,
        seq: int,
        placed_at: datetime,
        brand,
        values: dict,
        account_id: str | None,
        access_token_sha256: str | None,
        pricing: Pricing | None = None,
    ) -> Order:
        """A new order of ``brand`` (a ``brands.Brand``: its price, VAT and documents, never the
        client's), with the checked ``values`` of ``validation.check_order`` (brand excluded),
        priced under its VAT regime (``vat.price``; without ``pricing``: French VAT included)."""
        pricing = pricing or price(brand, None)
        return cls(
            id=id,
            seq=seq,
            status="placed",
            placed_at=placed_at,
            brand=brand.brand,
            total_cents=pricing.total_cents,
            currency=pricing.currency,
            vat_rate=pricing.vat_rate,
            vat_cents=pricing.vat_cents,
            vat_regime=pricing.regime,
            vat_check=pricing.vat_check,
            documents_required=list(brand.documents_required),
            account_id=account_id,
            access_token_sha256=access_token_sha256,
            **values,
        )

    @property
    def number(self) -> str:
        return order_number(self.seq or 0, self.placed_at)

    def opened_by(self, account_id: str | None, access_token: str | None) -> bool:
        """Whether a request may see and act on the order: its owner's account, or (an order
        placed without an account) its access token."""
        if account_id is not None and self.account_id == account_id:
            return True
        return bool(access_token) and access_token_matches(access_token, self.access_token_sha256)

    def payment_refusal(self, amount) -> str | None:
        """Why a confirmed payment of ``amount`` (``{"amount_cents", "currency"}``, as
        ``payment.confirmed`` carries it) does not pay this order, or None when it does: only the
        order's total, in its currency, pays it."""
        if not isinstance(amount, dict):
            return AMOUNT_MISMATCH
        cents, currency = amount.get("amount_cents"), amount.get("currency")
        if type(cents) is not int or cents != self.total_cents or currency != self.currency:
            return AMOUNT_MISMATCH
        return None

    def refund_settled(self, refund: Refund):
        """The order is ``refunded`` when ``refund`` gave the whole sale back: completed, for a
        reason that ends the sale, of the order's total in its currency. Returns the Transition
        (``applied`` False: its state does not allow it, e.g. the certificate was delivered), or
        None when the refund leaves the order as it is (not completed yet, the reason not known
        yet, a duplicate payment's, a part of the total)."""
        if not refund.ends_the_sale:
            return None
        if refund.amount_cents != self.total_cents or refund.currency != self.currency:
            return None
        return self.apply("refund.completed")

    def apply(self, event_type: str):
        """Move the order for ``event_type``; returns the Transition (``applied`` False:
        ignored)."""
        result = transition(self.status, event_type)
        if result.applied:
            self.status = result.after.value
        return result

    def cancel(self) -> None:
        """Cancelled, if its state allows it (only before it was sent to the supplier); raises
        NotAllowedNow, with the reason told to the customer, otherwise."""
        refusal = why_not_cancellable(self.status)
        if refusal is not None:
            raise NotAllowedNow(refusal, self.status)
        self.apply("order.cancelled")

    def check_accepts_documents(self) -> None:
        """Documents are taken until the order's life is over; NotAllowedNow after."""
        if not accepts_documents(self.status):
            raise NotAllowedNow(
                f"this order is {self.status}: it takes no more documents", self.status
            )

    def check_room_for(self, kind: str, documents: list[OrderDocument]) -> None:
        """Whether one more document of ``kind`` may join ``documents`` (the order's, refused ones
        included); TooManyDocuments otherwise."""
        valid = [d for d in documents if d.valid]
        if len(valid) >= MAX_DOCUMENTS_PER_ORDER:
            raise TooManyDocuments(
                f"this order already has {MAX_DOCUMENTS_PER_ORDER} documents: it takes no more"
            )
        if sum(d.kind == kind for d in valid) >= MAX_DOCUMENTS_PER_KIND:
            raise TooManyDocuments(
                f"this order already has {MAX_DOCUMENTS_PER_KIND} documents of the kind {kind}: "
                "it takes no more of them"
            )

    def complete_documents(self, documents: list[OrderDocument], now: datetime) -> list[str] | None:
        """With ``documents`` (all of the order's, the new one included), is the order's set
        complete for the first time (or again, after the supplier refused some)? Then it is marked
        complete and the ids of the complete set (what ``order.documents_completed`` names) are
        returned."""
        if self.documents_completed_at is not None or missing_documents(
            self.documents_required, documents
        ):
            return None
        self.documents_completed_at = now
        return complete_set(self.documents_required, documents)

    def request_documents_again(self, requested) -> list[str]:
        """The supplier refused the documents of the ``requested`` kinds: the order requires them
        (again, or for the first time) and is no longer complete. Returns the kinds whose documents
        uploaded so far no longer count."""
        kinds = requested_kinds(requested)
        self.documents_required = list(self.documents_required) + [
            k for k in kinds if k not in self.documents_required
        ]
        self.documents_completed_at = None
        return kinds
