"""Mails to send, the recipients of orders and the marketing contacts, as plain values (no I/O).

Every event the service consumes becomes one *mail to send* (``Mail``) per (event, template,
recipient), recorded by its handler; the sender loop renders and sends it later. Of the personal
data an event carries, only what sending needs is kept, and only until it is no longer needed:

* ``order.placed`` gives the order's recipient (address and first name, ``OrderRecipient``), the
  only place later mails of the order can learn it from; it is erased when the account is
  deactivated, or ``NOTIFICATIONS_RECIPIENT_RETENTION_DAYS`` after the order's story ends;
* account events (``account.*``) carry their recipient: it is kept on the mail until it is sent;
* once a mail is sent, it keeps the event id, template, a hash of the address, a masked form of it
  for staff, its status, the server's answer and its Message-ID: never the address nor the body.

A marketing mail goes only to a contact whose consent was given and never withdrawn; a withdrawal
(the one-click unsubscribe) is final for this projection.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from coc_shared.errors import InvalidEvent

# event type -> template of the mail it causes
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
    "account.data_export_ready": "data_export_ready",
    "account.inactivity_warning": "inactivity_warning",
    "invoice.issued": "invoice_issued",
    "refund.requested": "refund_requested",
    "refund.completed": "refund_completed",
    "refund.failed": "refund_delayed",
}
# account.email_change_requested to an address that has an account already: no link, a warning
ADDRESS_IN_USE_TEMPLATE = "email_address_in_use"
# templates of marketing mails (campaigns): never caused by an event
MARKETING_TEMPLATES = ("newsletter",)
TRANSACTIONAL_TEMPLATES = tuple(sorted({*TEMPLATES.values(), ADDRESS_IN_USE_TEMPLATE}))
TRANSACTIONAL, MARKETING = "transactional", "marketing"

# events about an account rather than an order; they carry their recipient in ``personal``
ACCOUNT_EVENTS = (
    "account.deactivated",
    "account.email_change_requested",
    "account.sign_up_attempted",
    "account.data_export_ready",
    "account.inactivity_warning",
)
# account events that may be about a guest's order instead (no account)
GUEST_ACCOUNT_EVENTS = ("account.data_export_ready",)
# the link of an account event's mail is personal (it holds a one-time token)
LINK_FIELDS = {
    "account.email_change_requested": "confirmation_url",
    "account.data_export_ready": "download_url",
}
# events after which an order's story is over: its recipient is erased after the retention
STORY_ENDS = ("certificate.delivered", "order.cancelled", "payment.refunded")
# the refunds we make (approved by staff, sent through the provider): refund.completed tells the
# customer; the provider's own report of such a refund (payment.refunded) is not mailed again
OUR_REFUND_EVENTS = ("refund.requested", "refund.completed", "refund.failed")

PENDING, SENT, FAILED, DROPPED = "pending", "sent", "failed", "dropped"
STATUSES = (PENDING, SENT, FAILED, DROPPED)
DEFAULT_LOCALE = "fr"


def _text(value) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def normalise_address(address: str) -> str:
    return address.strip().lower()


def address_hash(address: str) -> str:
    """SHA-256 of the normalised address: what is kept of a recipient after sending."""
    return hashlib.sha256(normalise_address(address).encode()).hexdigest()


def mask_address(address: str) -> str:
    """``e***@e***.org``: enough for staff to tell two recipients apart, not to write to them."""
    local, _, domain = normalise_address(address).partition("@")
    host, _, tld = domain.rpartition(".")
    return f"{local[:1]}***@{host[:1]}***.{tld}" if host else f"{local[:1]}***@***"


def message_id(source_id: str, template: str, recipient_key: str, domain: str) -> str:
    """The Message-ID of a mail, derived from the event (or campaign) that caused it: the same
    mail sent again after a crash is the same message, which a server or client de-duplicates."""
    digest = hashlib.sha256(recipient_key.encode()).hexdigest()[:12]
    return f"<{source_id}.{template}.{digest}@{domain}>"


def provider_refund_is_mailed(kind: str | None, our_refund_known: bool) -> bool:
    """Whether ``payment.refunded`` gets a mail of its own: a charge-back (``reversed``: the
    customer's bank took the money back) always; a refund (``refunded``) only when it is not the
    provider's report of a refund of ours for the order (``refund.requested`` came first), which
    ``refund.completed`` announces: one mail per refund. A refund made at the provider itself
    (staff in its back office) is mailed."""
    return kind == "reversed" or not our_refund_known


def template_for(event_type: str, data: dict) -> str:
    template = TEMPLATES.get(event_type)
    if template is None:
        raise InvalidEvent(f"no mail is made for {event_type!r}")
    if event_type == "account.email_change_requested" and data.get("address_in_use") is True:
        return ADDRESS_IN_USE_TEMPLATE
    return template


@dataclass(frozen=True)
class Mail:
    """One mail to send: to one recipient, for one event (or campaign), with one template."""

    source_id: str  # the event id (or the campaign id)
    event_type: str
    template: str
    recipient_key: str  # who, as known when recorded: order:<id>, address:<hash>, contact:<id>
    kind: str = TRANSACTIONAL
    locale: str = DEFAULT_LOCALE
    order_id: str | None = None
    account_id: str | None = None
    campaign_id: str | None = None
    contact_id: str | None = None
    to_address: str | None = None  # personal: account events only, until sent
    to_name: str | None = None  # personal: until sent
    secret_url: str | None = None  # personal (a link holding a token): until sent
    data: dict | None = field(default=None)  # the event's data (no personal data), until sent
    status: str = PENDING
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_answer: str | None = None
    message_id: str | None = None
    address_hash: str | None = None
    address_masked: str | None = None
    id: int | None = None

    @classmethod
    def for_event(
        cls,
        event_id: str,
        event_type: str,
        data: dict,
        personal: dict | None = None,
        erased: bool = False,
    ) -> Mail:
        """The mail an event asks for; ``erased``: its personal part was crypto-shredded (the
        recipient erased) before it was handled, so it is recorded as dropped, never sent."""
        template = template_for(event_type, data)
        order_id, account_id = _text(data.get("order_id")), _text(data.get("account_id"))
        personal = personal or {}
        if erased:
            if account_id is None and order_id is None:
                raise InvalidEvent(f"{event_type} names neither an account nor an order")
            return cls(
                source_id=event_id,
                event_type=event_type,
                template=template,
                recipient_key=f"account:{account_id}"
                if event_type in ACCOUNT_EVENTS or order_id is None
                else f"order:{order_id}",
                order_id=order_id,
                account_id=account_id,
            ).dropped("the recipient's personal data was erased")
        if event_type in ACCOUNT_EVENTS:
            # a guest's data export names its order instead of an account
            guest = event_type in GUEST_ACCOUNT_EVENTS and account_id is None and order_id
            if account_id is None and not guest:
                raise InvalidEvent(f"{event_type} carries no account_id")
            address = _text(personal.get("email"))
            link_field = LINK_FIELDS.get(event_type)
            link = _text(personal.get(link_field)) if link_field else None
            if template == ADDRESS_IN_USE_TEMPLATE:
                link = None  # the owner of the address is warned, and asked to confirm nothing
            elif link_field and (address is None or link is None):
                raise InvalidEvent(f"{event_type} carries no recipient address or no link")
            if address is None and event_type != "account.deactivated":
                raise InvalidEvent(f"{event_type} carries no recipient address")
            return cls(
                source_id=event_id,
                event_type=event_type,
                template=template,
                recipient_key=f"order:{order_id}" if guest else f"account:{account_id}",
                account_id=account_id,
                order_id=order_id if guest else None,
                to_address=address,
                to_name=_text(personal.get("first_name")),
                secret_url=link,
                data=dict(data),
            )
        if order_id is None:
            raise InvalidEvent(f"{event_type} carries no order_id")
        return cls(
            source_id=event_id,
            event_type=event_type,
            template=template,
            recipient_key=f"order:{order_id}",
            order_id=order_id,
            account_id=account_id,
            data=dict(data),
        )

    @property
    def marketing(self) -> bool:
        return self.kind == MARKETING

    def message_id_for(self, domain: str) -> str:
        return message_id(self.source_id, self.template, self.recipient_key, domain)

    # what the sender decides (the repository writes the result)
    def sent(self, answer: str, message_id: str, address: str) -> Mail:
        """Sent: nothing of the recipient is kept but a hash and a masked form; no body."""
        return replace(
            self,
            status=SENT,
            attempts=self.attempts + 1,
            last_answer=answer,
            message_id=message_id,
            address_hash=address_hash(address),
            address_masked=mask_address(address),
            to_address=None,
            to_name=None,
            secret_url=None,
            data=None,
            next_attempt_at=None,
        )

    def deferred(
        self, answer: str, now: datetime, delays: tuple[float, ...], counts: bool = True
    ) -> Mail:
        """A temporary failure (4xx, or the recipient not known yet): tried again after the next
        delay; past the last delay, failed. ``counts=False`` (the server could not be reached):
        waits the first delay, and never fails for it."""
        attempts = self.attempts + 1
        if counts and attempts > len(delays):
            return self.failed(f"gave up after {attempts} attempts: {answer}")
        # an unreachable server: the first delay (the loop itself backs off meanwhile)
        delay = delays[min(attempts, len(delays)) - 1] if counts else delays[0]
        return replace(
            self,
            attempts=attempts if counts else self.attempts,
            last_answer=answer,
            next_attempt_at=now + timedelta(seconds=delay),
        )

    def failed(self, answer: str) -> Mail:
        """A permanent failure (5xx): kept, with what sending needs, for staff to resend."""
        return replace(self, status=FAILED, attempts=self.attempts + 1, last_answer=answer)

    def dropped(self, reason: str) -> Mail:
        """Not to be sent (consent withdrawn, account erased): nothing personal is kept."""
        return replace(
            self,
            status=DROPPED,
            last_answer=reason,
            to_address=None,
            to_name=None,
            secret_url=None,
            data=None,
        )

    def resent(self, now: datetime) -> Mail:
        if self.status != FAILED:
            raise NotResendable(f"only a failed mail can be resent (this one is {self.status})")
        return replace(self, status=PENDING, attempts=0, next_attempt_at=now)


class NotResendable(Exception):
    """A staff member asked to resend a mail that is not failed."""


@dataclass(frozen=True)
class OrderRecipient:
    """What later mails of an order need (from ``order.placed``): its recipient (personal, erased
    with the account or after the retention) and a few facts of the order (not personal)."""

    order_id: str
    order_number: str | None
    account_id: str | None
    payment_method: str | None
    total_cents: int | None
    currency: str | None
    documents_required: list[str] = field(default_factory=list)
    email: str | None = None
    first_name: str | None = None
    erase_after: datetime | None = None
    erased: bool = False

    @classmethod
    def from_placed(cls, data: dict, personal: dict | None) -> OrderRecipient:
        personal = personal or {}
        email = _text(personal.get("email"))
        if _text(data.get("order_id")) is None or email is None:
            raise InvalidEvent("order.placed carries no order_id or no recipient address")
        total = data.get("total") or {}
        return cls(
            order_id=data["order_id"],
            order_number=_text(data.get("order_number")),
            account_id=_text(data.get("account_id")),
            payment_method=_text(data.get("payment_method")),
            total_cents=total.get("amount_cents"),
            currency=total.get("currency"),
            documents_required=[d for d in data.get("documents_required") or [] if _text(d)],
            email=email,
            first_name=_text(personal.get("first_name")),
        )


@dataclass(frozen=True)
class Contact:
    """A marketing contact: an address whose owner consented (projection of consent events; until
    the GDPR consent ledger exists, of ``order.placed``'s ``marketing_consent``)."""

    id: str
    address_hash: str
    email: str | None
    account_id: str | None
    consented_at: datetime | None
    withdrawn_at: datetime | None = None
    source_event_id: str | None = None

    @property
    def may_receive_marketing(self) -> bool:
        return (
            self.consented_at is not None and self.withdrawn_at is None and self.email is not None
        )

    def withdrawn(self, at: datetime) -> Contact:
        """Withdrawn for good: the address itself is no longer needed (the hash stays, so that a
        later consent event of the same address cannot revive it)."""
        return replace(self, withdrawn_at=self.withdrawn_at or at, email=None)


def contact_after_order(
    existing: Contact | None,
    email: str,
    account_id: str | None,
    consent: bool,
    event_id: str,
    at: datetime,
) -> Contact | None:
    """The contact to write after an order (None: nothing to write). Consent given: a new contact,
    or the known one completed; a withdrawn contact stays withdrawn (the withdrawal is final until
    the consent ledger records a new, explicit consent). No consent on an order withdraws nothing
    and creates nothing."""
    if not consent:
        return None
    if existing is None:
        return Contact(
            id=str(uuid.uuid4()),
            address_hash=address_hash(email),
            email=normalise_address(email),
            account_id=account_id,
            consented_at=at,
            source_event_id=event_id,
        )
    if existing.withdrawn_at is not None:
        return None
    if existing.account_id is None and account_id is not None:
        return replace(existing, account_id=account_id)
    return None


def contact_after_consent(
    existing: Contact | None,
    email: str,
    account_id: str | None,
    given: bool,
    event_id: str,
    at: datetime,
) -> Contact | None:
    """The contact to write after the gdpr consent ledger's ``consent.given`` (``given``) or
    ``consent.withdrawn`` (None: nothing to write). A consent makes a contact, or completes it, or
    revives a withdrawn one when it was given after the withdrawal (a new, explicit consent
    recorded by the ledger); a withdrawal is final for the contact (its address forgotten, the
    hash kept so that an older consent arriving late cannot revive it)."""
    if not given:
        if existing is None:
            return Contact(
                id=str(uuid.uuid4()),
                address_hash=address_hash(email),
                email=None,
                account_id=account_id,
                consented_at=None,
                withdrawn_at=at,
                source_event_id=event_id,
            )
        return None if existing.withdrawn_at is not None else existing.withdrawn(at)
    if existing is None:
        return contact_after_order(None, email, account_id, True, event_id, at)
    if existing.withdrawn_at is not None:
        if at <= existing.withdrawn_at:
            return None
        return replace(
            existing,
            email=normalise_address(email),
            consented_at=at,
            withdrawn_at=None,
            account_id=existing.account_id or account_id,
            source_event_id=event_id,
        )
    if existing.account_id is None and account_id is not None:
        return replace(existing, account_id=account_id)
    return None


def campaign_schedule(start: datetime, count: int, per_second: float) -> list[datetime]:
    """When each of ``count`` campaign mails may leave: ``per_second`` at most."""
    if per_second <= 0:
        raise ValueError("the rate of a campaign must be positive")
    return [start + timedelta(seconds=i / per_second) for i in range(count)]
