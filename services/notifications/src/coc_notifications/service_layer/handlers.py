"""Event handlers of the notifications service: thin, the rules are in ``domain``.

Each runs inside the consumer's transaction (``ctx.conn``); the inbox already drops a redelivered
event, and the repository records one notification per event, so a handler has one effect.
"""

from __future__ import annotations

from coc_shared.consumer import Handler, HandlerContext
from coc_shared.envelope import Event

from ..adapters.repository import NotificationRepository
from ..domain.model import TEMPLATES, Notification


def record_notification(event: Event, ctx: HandlerContext) -> None:
    notification = Notification.for_event(event.id, event.type, event.data, event.personal)
    notifications = NotificationRepository(ctx)
    if notifications.exists(event.id):
        return
    if notification.account_id and notifications.account_deactivated(notification.account_id):
        # Late for an account already erased (a retried delivery): nothing personal is kept.
        notification = notification.without_personal_data()
    notifications.add(notification)


def record_account_deactivated(event: Event, ctx: HandlerContext) -> None:
    notification = Notification.for_event(event.id, event.type, event.data, event.personal)
    notifications = NotificationRepository(ctx)
    notifications.erase_personal_data(notification.account_id)
    if not notifications.exists(event.id):
        notifications.add(notification)


def handlers(_runtime=None) -> dict[str, Handler]:
    """The event types the notifications service consumes (the catalogue's ``consumers``) and their
    handlers."""
    table: dict[str, Handler] = {event_type: record_notification for event_type in TEMPLATES}
    table["account.deactivated"] = record_account_deactivated
    return table
