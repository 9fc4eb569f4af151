"""Notifications to send, as plain values (no I/O).

Every event the service consumes makes one notification, pending until it is sent (sending
comes in a later step). Of the personal data an event carries, a notification keeps only what
sending needs: the recipient's e-mail address, and only ``order.placed`` carries one. When an
account is deactivated, the addresses kept for that account's notifications are erased.
"""
from __future__ import annotations

from dataclasses import dataclass

# event type -> template of the message it causes
TEMPLATES: dict[str, str] = {
    "order.placed": "order_confirmation",
    "payment.confirmed": "payment_received",
    "payment.failed": "payment_failed",
    "payment.duplicate_detected": "duplicate_payment_refund",
    "documents.sent_to_supplier": "documents_sent_to_supplier",
    "certificate.received": "certificate_received",
    "certificate.shipped": "certificate_shipped",
    "account.deactivated": "account_deactivated",
}
ACCOUNT_EVENTS = ("account.deactivated",)
PENDING = "pending"
# columns of a notification that hold personal data: erased with the account
PERSONAL_FIELDS = ("recipient_email",)


class InvalidEvent(ValueError):
    """The event cannot be recorded as it is: handling it again cannot succeed."""


def _text(value) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class Notification:
    event_id: str
    event_type: str
    template: str
    order_id: str | None
    account_id: str | None
    recipient_email: str | None = None
    status: str = PENDING

    @classmethod
    def for_event(cls, event_id: str, event_type: str, data: dict, personal: dict | None = None) -> "Notification":
        template = TEMPLATES.get(event_type)
        if template is None:
            raise InvalidEvent(f"no notification is made for {event_type!r}")
        order_id, account_id = _text(data.get("order_id")), _text(data.get("account_id"))
        if event_type in ACCOUNT_EVENTS:
            if account_id is None:
                raise InvalidEvent(f"{event_type} carries no account_id")
        elif order_id is None:
            raise InvalidEvent(f"{event_type} carries no order_id")
        email = _text((personal or {}).get("email"))  # nothing else of the personal part is kept
        return cls(event_id=event_id, event_type=event_type, template=template, order_id=order_id,
                   account_id=account_id, recipient_email=email)
