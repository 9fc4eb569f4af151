"""Deactivation requests, as plain values (no I/O).

A customer's request to deactivate their account must be answered without undue delay and at
the latest within one month of its receipt (GDPR art. 12(3)); the request records that deadline.
While a request of an account is pending, a new request of the same account joins it.

Carrying it out is a saga: the request asks every service that holds account data to erase it
(``account.erasure_requested``); each reports what it erased and what it retains
(``account.erasure_reported.<service>``); once all have reported the request is done and
``account.deactivated`` carries the summary to the customer. A service that has not reported
within ``REPORT_WITHIN`` shows on the staff list of late requests.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from coc_shared.errors import InvalidEvent
from coc_shared.values import aware_datetime

ANSWER_WITHIN = timedelta(days=30)
REPORT_WITHIN = timedelta(hours=1)
CUSTOMER_REQUEST, INACTIVITY = "customer_request", "inactivity"  # why an account is deactivated
PENDING = "pending"  # the services are erasing
DONE = "done"  # every service reported; the customer was sent the summary


@dataclass(frozen=True)
class DeactivationRequest:
    account_id: str
    event_id: str
    requested_at: datetime
    status: str = PENDING
    email: str | None = None  # where the summary goes; kept only until it is sent
    first_name: str | None = None
    completed_at: datetime | None = None
    # a guest's request (the order's access token): its order, whose id is ``account_id``
    guest_order_id: str | None = None
    # the customer's own request, or two years without activity (orders, from a purge run)
    reason: str = CUSTOMER_REQUEST

    @property
    def due_by(self) -> datetime:
        return self.requested_at + ANSWER_WITHIN

    @property
    def pending(self) -> bool:
        return self.status == PENDING

    @classmethod
    def from_message(
        cls, event_id: str, data: dict, personal: dict | None = None
    ) -> DeactivationRequest:
        account_id = data.get("account_id")
        if not isinstance(account_id, str) or not account_id:
            raise InvalidEvent("account.deactivation_requested carries no account_id")
        personal = personal or {}
        return cls(
            account_id=account_id,
            event_id=event_id,
            requested_at=aware_datetime(data.get("requested_at"), "requested_at", InvalidEvent),
            email=personal.get("email") or None,
            first_name=personal.get("first_name") or None,
            guest_order_id=data.get("guest_order_id") or None,
            reason=data.get("reason") or CUSTOMER_REQUEST,
        )


@dataclass(frozen=True)
class ErasureReport:
    """One service's answer to a request: what it erased and what it retains, and why."""

    request_id: str
    service: str
    erased: tuple[dict, ...]  # {"category", "count"}
    retained: tuple[dict, ...]  # {"category", "legal_basis", "until"}
    reported_at: datetime

    @classmethod
    def from_message(cls, data: dict, reported_at: datetime) -> ErasureReport:
        request_id, service = data.get("request_id"), data.get("service")
        if not (isinstance(request_id, str) and request_id and isinstance(service, str)):
            raise InvalidEvent("an erasure report names no request or service")
        return cls(
            request_id=request_id,
            service=service,
            erased=tuple(data.get("erased") or ()),
            retained=tuple(data.get("retained") or ()),
            reported_at=reported_at,
        )


@dataclass(frozen=True)
class Completion:
    """What closes a request: the summary for the customer (``account.deactivated``)."""

    erased: list[dict]  # {"service", "category", "count"}
    retained: list[dict]  # {"category", "legal_basis", "until"}, one per category (latest until)


def completion(
    request: DeactivationRequest, reports: list[ErasureReport], expected: tuple[str, ...]
) -> Completion | None:
    """The summary once every expected service has reported on a pending request, else None."""
    if not request.pending or not set(expected) <= {r.service for r in reports}:
        return None
    erased = [
        {"service": r.service, "category": e["category"], "count": e["count"]}
        for r in sorted(reports, key=lambda r: r.service)
        for e in r.erased
        if e.get("count")
    ]
    retained: dict[str, dict] = {}
    for report in reports:
        for kept in report.retained:
            known = retained.get(kept["category"])
            if known is None or str(kept["until"]) > str(known["until"]):
                retained[kept["category"]] = {**kept, "until": str(kept["until"])}
    return Completion(erased=erased, retained=[retained[c] for c in sorted(retained)])


def late_services(
    request: DeactivationRequest, reported: set[str], expected: tuple[str, ...], now: datetime
) -> list[str]:
    """The services that have not reported on a pending request within REPORT_WITHIN."""
    if not request.pending or now - request.requested_at < REPORT_WITHIN:
        return []
    return sorted(set(expected) - reported)


def request_to_open(
    pending: DeactivationRequest | None, new: DeactivationRequest
) -> DeactivationRequest | None:
    """The request to record for ``new``: itself, or None when the account has a pending one."""
    if pending is not None and pending.pending and pending.account_id == new.account_id:
        return None
    return new


WITHDRAWN = "withdrawn"
GIVEN = "given"


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


def address_sha256(email) -> str | None:
    """What the ledger keeps of an address: its SHA-256 (normalised), never the address."""
    import hashlib

    if not (isinstance(email, str) and email.strip()):
        return None
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


@dataclass(frozen=True)
class ConsentRecord:
    """One entry of the consent ledger: a consent given or withdrawn, by whom (the account, the
    order, the address's hash), for what purpose, when, through which channel (the order form,
    the account's sign-up or settings, the one-click unsubscribe) and for which version of the
    consent text. The address itself travels on to notifications (``consent.given`` /
    ``consent.withdrawn``) and is not kept here."""

    consent_id: str
    event_id: str  # the event it was recorded from (once per event)
    status: str  # given | withdrawn
    account_id: str | None
    order_id: str | None
    address_sha256: str | None
    email: str | None  # passed on, never stored
    purpose: str
    channel: str
    text_version: str | None
    at: datetime

    @classmethod
    def from_order(cls, event_id: str, data: dict, personal, text_version: str, at: datetime):
        """The consent given on the order form (``order.placed``), or None without one."""
        email = (personal or {}).get("email")
        if not data.get("marketing_consent") or address_sha256(email) is None:
            return None
        return cls(
            consent_id=str(uuid.uuid4()),
            event_id=event_id,
            status=GIVEN,
            account_id=data.get("account_id") or None,
            order_id=data.get("order_id") or None,
            address_sha256=address_sha256(email),
            email=email.strip(),
            purpose="marketing_email",
            channel="order_form",
            text_version=data.get("marketing_consent_text_version") or text_version,
            at=at,
        )

    @classmethod
    def from_choice(cls, event_id: str, data: dict, personal, text_version: str):
        """An account's choice (``account.marketing_choice_made``)."""
        email = (personal or {}).get("email")
        account_id = data.get("account_id")
        if not account_id:
            raise InvalidEvent("account.marketing_choice_made carries no account_id")
        given = bool(data.get("given"))
        return cls(
            consent_id=str(uuid.uuid4()),
            event_id=event_id,
            status=GIVEN if given else WITHDRAWN,
            account_id=account_id,
            order_id=None,
            address_sha256=address_sha256(email),
            email=email.strip() if address_sha256(email) else None,
            purpose=data.get("purpose") or "marketing_email",
            channel=data.get("channel") or "account_settings",
            text_version=(data.get("text_version") or text_version) if given else None,
            at=aware_datetime(data.get("at"), "at", InvalidEvent),
        )

    @classmethod
    def from_withdrawal(cls, withdrawal: ConsentWithdrawal, email) -> ConsentRecord:
        return cls(
            consent_id=str(uuid.uuid4()),
            event_id=withdrawal.event_id,
            status=WITHDRAWN,
            account_id=withdrawal.account_id,
            order_id=None,
            address_sha256=withdrawal.address_sha256,
            email=email.strip() if address_sha256(email) else None,
            purpose=withdrawal.purpose,
            channel=withdrawal.source,
            text_version=None,
            at=withdrawal.changed_at,
        )

    def event(self) -> tuple[str, dict]:
        """The event that tells notifications (type, data)."""
        if self.status == GIVEN:
            return "consent.given", {
                "consent_id": self.consent_id,
                "account_id": self.account_id,
                "order_id": self.order_id,
                "purpose": self.purpose,
                "channel": self.channel,
                "text_version": self.text_version or "",
                "given_at": self.at.isoformat(),
            }
        return "consent.withdrawn", {
            "consent_id": self.consent_id,
            "account_id": self.account_id,
            "purpose": self.purpose,
            "channel": self.channel,
            "withdrawn_at": self.at.isoformat(),
        }
