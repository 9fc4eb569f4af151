"""Marketing: a campaign to the contacts who consented, at a limited rate, and the one-click
unsubscribe (RFC 8058) that withdraws a consent at once and for good.

A campaign records one marketing mail per consenting contact, each due at its slot of the rate
(``per_second``), so that any number of senders together never exceed it; the sender checks the
contact's consent again when a mail's turn comes, and drops it if the consent was withdrawn in
between. An unsubscribe withdraws the contact's consent, drops its pending marketing mails and
emits ``marketing.unsubscribed`` (the gdpr service records the withdrawal) in one unit of work.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from coc_shared.envelope import utcnow
from coc_shared.logging import get_logger

from ..adapters import tables
from ..adapters.repository import CampaignRepository, ContactRepository, MailRepository
from ..domain.model import (
    MARKETING,
    MARKETING_TEMPLATES,
    PENDING,
    Mail,
    campaign_schedule,
)
from ..domain.unsubscribe import InvalidUnsubscribeToken, contact_of_token

log = get_logger(__name__)


class CampaignRefused(Exception):
    """The campaign cannot be sent as asked (unknown template, no secret, bad rate)."""


class UnsubscribeUnavailable(Exception):
    """The unsubscribe links cannot be checked (no NOTIFICATIONS_UNSUBSCRIBE_SECRET)."""


@dataclass(frozen=True)
class Campaign:
    id: str
    template: str
    per_second: float
    recipients: int


def start_campaign(runtime, template: str, per_second: float, staff: str) -> Campaign:
    if template not in MARKETING_TEMPLATES:
        raise CampaignRefused(
            f"{template!r} is not a marketing template ({', '.join(MARKETING_TEMPLATES)})"
        )
    if not runtime.config.unsubscribe_secret:
        raise CampaignRefused("NOTIFICATIONS_UNSUBSCRIBE_SECRET is not set: no unsubscribe link")
    if not 0 < per_second <= 100:
        raise CampaignRefused("the rate must be more than 0 and at most 100 mails per second")
    campaign_id = str(uuid.uuid4())
    now = utcnow()
    with runtime.unit_of_work(correlation_id=campaign_id) as uow:
        contacts = ContactRepository(uow).consenting()
        slots = campaign_schedule(now, len(contacts), per_second)
        MailRepository(uow).add_many(
            [
                Mail(
                    source_id=campaign_id,
                    event_type="campaign",
                    template=template,
                    recipient_key=f"contact:{contact.id}",
                    kind=MARKETING,
                    campaign_id=campaign_id,
                    contact_id=contact.id,
                    next_attempt_at=slot,
                )
                for contact, slot in zip(contacts, slots, strict=True)
            ],
            now,
        )
        CampaignRepository(uow).add(campaign_id, template, per_second, len(contacts), staff, now)
        uow.commit()
    log.info(
        "campaign.started",
        campaign_id=campaign_id,
        template=template,
        recipients=len(contacts),
        per_second=per_second,
    )
    return Campaign(campaign_id, template, per_second, len(contacts))


def unsubscribe(runtime, token: str) -> bool:
    """Withdraw the consent a token names; True when it was withdrawn now, False when it was
    already (or the contact is gone). ``InvalidUnsubscribeToken`` for a tampered token."""
    secret = runtime.config.unsubscribe_secret
    if not secret:
        raise UnsubscribeUnavailable("NOTIFICATIONS_UNSUBSCRIBE_SECRET is not set")
    contact_id = contact_of_token(secret, token)
    now = utcnow()
    with runtime.unit_of_work(correlation_id=contact_id) as uow:
        contacts = ContactRepository(uow)
        contact = contacts.get(contact_id, lock=True)
        if contact is None or contact.withdrawn_at is not None:
            return False
        email = contact.email
        withdrawn = contact.withdrawn(now)
        contacts.save(withdrawn)
        t = tables.mails
        uow.change(
            t,
            {"status": "dropped", "last_answer": "consent withdrawn", "to_address": None},
            t.c.contact_id == contact_id,
            t.c.status == PENDING,
        )
        uow.emit(
            "marketing.unsubscribed",
            {
                "contact_id": contact_id,
                "account_id": contact.account_id,
                "purpose": "marketing_email",
                "withdrawn_at": now.isoformat(),
                "source": "one_click",
            },
            subject=contact_id,
            personal={"email": email} if email else None,
        )
        uow.commit()
    log.info("marketing.unsubscribed", contact_id=contact_id)
    return True


__all__ = [
    "Campaign",
    "CampaignRefused",
    "InvalidUnsubscribeToken",
    "UnsubscribeUnavailable",
    "start_campaign",
    "unsubscribe",
]
