"""Supplier requests, as plain values and rules (no I/O).

A request to the supplier can go once three things are known, in whatever order their events
arrive: the order was placed (its vehicle's brand chooses the supplier), it was paid, and every
document it requires was uploaded. Until then the request is ``pending``; then it is ``ready``
(sending it to the supplier comes in a later step).

``order.cancelled`` makes the request ``cancelled``, for good: whatever arrives afterwards (a late
payment, the documents) is recorded but never makes it ``ready``. The orders service cancels only
orders not yet sent to the supplier; a ``ready`` request is not sent yet either (no step sends
anything so far), so it is cancelled as well. The step that will send ready requests must take
them under the row lock, so that a cancellation and a sending cannot both win.
"""

from __future__ import annotations

from dataclasses import dataclass

from coc_shared.errors import InvalidEvent

PENDING = "pending"
READY = "ready"
CANCELLED = "cancelled"
CANCELLABLE = (PENDING, READY)  # not handed to the supplier yet


def order_id_of(event_type: str, data: dict) -> str:
    order_id = data.get("order_id")
    if not isinstance(order_id, str) or not order_id:
        raise InvalidEvent(f"{event_type} carries no order_id")
    return order_id


@dataclass
class SupplierRequest:
    order_id: str
    brand: str | None = None
    order_placed: bool = False
    paid: bool = False
    documents_completed: bool = False
    document_ids: tuple[str, ...] = ()
    status: str = PENDING

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

    def order_was_placed(self, data: dict) -> None:
        brand = data.get("brand")
        if not isinstance(brand, str) or not brand.strip():
            raise InvalidEvent("order.placed carries no brand")
        self.brand = brand.strip()
        self.order_placed = True
        self._advance()

    def payment_was_confirmed(self) -> None:
        self.paid = True
        self._advance()

    def documents_were_completed(self, data: dict) -> None:
        document_ids = data.get("document_ids")
        if not isinstance(document_ids, list) or not all(
            isinstance(d, str) and d for d in document_ids
        ):
            raise InvalidEvent("order.documents_completed needs a list of document ids")
        self.document_ids = tuple(document_ids)
        self.documents_completed = True
        self._advance()

    def order_was_cancelled(self) -> bool:
        """The order was cancelled: the request never goes to the supplier. True when it changed."""
        if self.status in CANCELLABLE:
            self.status = CANCELLED
            return True
        return False

    @property
    def cancelled(self) -> bool:
        return self.status == CANCELLED

    def _advance(self) -> None:
        if self.status == PENDING and not self.missing:
            self.status = READY
