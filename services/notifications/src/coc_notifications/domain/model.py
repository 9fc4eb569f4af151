"""Notifications to send, as plain values (no I/O).

Every event the service consumes makes one notification, pending until it is sent (sending
comes in a later step). Of the personal data an event carries, a notification keeps only what
sending needs:

* ``order.placed``: the recipient's e-mail address;
* ``account.email_change_requested`` (an account event: its recipient is the *new* address, not
  the account's current one): that address and the confirmation link (it holds a one-time token).

When an account is deactivated, everything personal kept for that account's notifications (the
addresses and the links) is erased.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from coc_shared.errors import InvalidEvent

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
    "payment.refunded": "payment_refunded",
    "order.cancelled": "order_cancelled",
    "documents.rejected_by_supplier": "documents_requested",
    "account.email_change_requested": "email_change_confirmation",
    "certificate.delivered": "certificate_delivered",
    "account.sign_up_attempted": "sign_up_attempted",
}
# events about an account rather than an order
ACCOUNT_EVENTS = (
    "account.deactivated",
    "account.email_change_requested",
    "account.sign_up_attempted",
)
# events whose personal part names the recipient (``personal.email``)
RECIPIENT_EVENTS = ("order.placed", "account.email_change_requested", "account.sign_up_attempted")
# events that carry a link the recipient must follow (``personal.confirmation_url``)
LINK_EVENTS = ("account.email_change_requested",)
PENDING = "pending"
# columns of a notification that hold personal data: erased with the account
PERSONAL_FIELDS = ("recipient_email", "confirmation_url")


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
    confirmation_url: str | None = None

    def without_personal_data(self) -> Notification:
        """The same notification with nothing personal (for an account already erased)."""
        return replace(self, **{f: None for f in PERSONAL_FIELDS})

    @classmethod
    def for_event(
        cls, event_id: str, event_type: str, data: dict, personal: dict | None = None
    ) -> Notification:
        template = TEMPLATES.get(event_type)
        if template is None:
            raise InvalidEvent(f"no notification is made for {event_type!r}")
        order_id, account_id = _text(data.get("order_id")), _text(data.get("account_id"))
        if event_type in ACCOUNT_EVENTS:
            if account_id is None:
                raise InvalidEvent(f"{event_type} carries no account_id")
        elif order_id is None:
            raise InvalidEvent(f"{event_type} carries no order_id")
        personal = personal or {}
        # nothing else of the personal part is kept
        email = _text(personal.get("email")) if event_type in RECIPIENT_EVENTS else None
        link = _text(personal.get("confirmation_url")) if event_type in LINK_EVENTS else None
        if event_type in LINK_EVENTS and (email is None or link is None):
            raise InvalidEvent(f"{event_type} carries no recipient address or no confirmation link")
        return cls(
            event_id=event_id,
            event_type=event_type,
            template=template,
            order_id=order_id,
            account_id=account_id,
            recipient_email=email,
            confirmation_url=link,
        )
