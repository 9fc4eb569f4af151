"""Reads of the HTTP API that change nothing (besides ``staff.list_mails``): an order's mails as
support staff see them, and whether an unsubscribe link is one we mailed."""

from __future__ import annotations

from dataclasses import dataclass

from ..adapters.repository import MailRepository
from ..domain.model import PENDING
from ..domain.unsubscribe import InvalidUnsubscribeToken, contact_of_token


@dataclass(frozen=True)
class OrderMail:
    event_id: str
    event_type: str
    template: str
    status: str
    has_recipient: bool  # an address is known (kept in a hash), or will be at sending


def order_mails(runtime, order_id: str) -> list[OrderMail]:
    """The mails of an order, oldest first (no bodies, no addresses)."""
    with runtime.unit_of_work() as uow:
        mails = MailRepository(uow).for_order(order_id)
    return [
        OrderMail(
            event_id=m.source_id,
            event_type=m.event_type,
            template=m.template,
            status=m.status,
            has_recipient=m.address_hash is not None or m.status == PENDING,
        )
        for m in mails
    ]


def check_unsubscribe_link(runtime, token: str) -> None:
    """``InvalidUnsubscribeToken`` unless ``token`` is one of our links (every link is refused
    while NOTIFICATIONS_UNSUBSCRIBE_SECRET is not set)."""
    contact_of_token(runtime.config.unsubscribe_secret or "", token)


__all__ = ["InvalidUnsubscribeToken", "OrderMail", "check_unsubscribe_link", "order_mails"]
