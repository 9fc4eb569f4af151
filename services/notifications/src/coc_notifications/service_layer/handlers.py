"""Event handlers of the notifications service: they only record what is *to send* (the sender
loop sends it), through the handler's unit-of-work API; the rules are in ``domain``.

Each runs inside the consumer's transaction; the inbox already drops a redelivered event, and a
mail is recorded once per (event, template, recipient), so a handler has one effect.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from functools import partial

from coc_shared.consumer import Handler, HandlerContext
from coc_shared.deactivation import (
    AccountDeactivation,
    AccountDeactivationRepository,
    ErasureReport,
    adopt_rows,
    erasure_requested_handler,
)
from coc_shared.envelope import Event, utcnow
from coc_shared.errors import InvalidEvent
from coc_shared.export import export_requested_handler
from coc_shared.retention import purge_requested_handler
from coc_shared.values import aware_datetime

from ..adapters import export, tables
from ..adapters.repository import ContactRepository, MailRepository, RecipientRepository
from ..domain.model import (
    OUR_REFUND_EVENTS,
    STORY_ENDS,
    TEMPLATES,
    Mail,
    OrderRecipient,
    address_hash,
    contact_after_consent,
    contact_after_order,
    provider_refund_is_mailed,
)


def _account_erased(ctx: HandlerContext, account_id: str | None) -> bool:
    return account_id is not None and AccountDeactivationRepository(
        ctx, tables.account_deactivations
    ).recorded(account_id)


def record_mail(event: Event, ctx: HandlerContext, retention_days: int = 30) -> None:
    mail = Mail.for_event(
        event.id, event.type, event.data, event.personal, erased=event.personal_erased
    )
    recipients = RecipientRepository(ctx)
    if mail.order_id is not None and mail.account_id is None:
        known = recipients.get(mail.order_id)
        if known is not None and known.account_id:
            mail = replace(mail, account_id=known.account_id)
    if _account_erased(ctx, mail.account_id):
        # late for an account already erased: recorded as dropped, nothing personal kept
        mail = mail.dropped("the account was deactivated")
    MailRepository(ctx).add(mail)
    if event.type in STORY_ENDS:
        recipients.schedule_erasure(mail.order_id, utcnow() + timedelta(days=retention_days))


def order_placed(event: Event, ctx: HandlerContext, retention_days: int = 30) -> None:
    """The order's recipient and facts are kept for its later mails, the marketing consent goes
    to the contacts, and the order's own mail is recorded. Its personal part erased (the subject's
    key destroyed while it waited): nothing is kept, the mail is recorded as dropped."""
    if event.personal_erased:
        MailRepository(ctx).add(Mail.for_event(event.id, event.type, event.data, erased=True))
        return
    recipient = OrderRecipient.from_placed(event.data, event.personal)
    if _account_erased(ctx, recipient.account_id):
        return
    RecipientRepository(ctx).add(recipient)
    contacts = ContactRepository(ctx)
    contact = contacts.by_address(recipient.email, lock=True)
    updated = contact_after_order(
        contact,
        recipient.email,
        recipient.account_id,
        bool(event.data.get("marketing_consent")),
        event.id,
        event.occurred_at,
    )
    if updated is not None:
        (contacts.add if contact is None else contacts.save)(updated)
    record_mail(event, ctx, retention_days)


def consent_changed(event: Event, ctx: HandlerContext) -> None:
    """The gdpr consent ledger's ``consent.given`` / ``consent.withdrawn``: the marketing contact
    of the address follows it (its personal part erased since: nothing to follow)."""
    email = (event.personal or {}).get("email")
    if getattr(event, "personal_erased", False) or not isinstance(email, str) or not email.strip():
        return
    given = event.type == "consent.given"
    at = aware_datetime(event.data.get("given_at" if given else "withdrawn_at"), "at", InvalidEvent)
    contacts = ContactRepository(ctx)
    contact = contacts.by_address(email, lock=True)
    updated = contact_after_consent(
        contact, email, event.data.get("account_id"), given, event.id, at
    )
    if updated is not None:
        (contacts.add if contact is None else contacts.save)(updated)


def payment_refunded(event: Event, ctx: HandlerContext, retention_days: int = 30) -> None:
    """The provider reports money gone back to the customer: a charge-back is mailed; a refund is
    mailed only when it is not ours (no ``refund.requested`` recorded for the order: ours is told
    by ``refund.completed``). Either way the order's story is over."""
    order_id = event.data.get("order_id")
    ours = bool(order_id) and MailRepository(ctx).recorded_for_order(order_id, OUR_REFUND_EVENTS)
    if provider_refund_is_mailed(event.data.get("kind"), ours):
        record_mail(event, ctx, retention_days)
    elif order_id:
        RecipientRepository(ctx).schedule_erasure(
            order_id, utcnow() + timedelta(days=retention_days)
        )


def erase_account(ctx: HandlerContext, deactivation: AccountDeactivation) -> ErasureReport:
    """``account.erasure_requested``: everything kept for the account is erased: its pending
    mails dropped, its recipients, contacts and the hashes of its sent mails."""
    account_id = deactivation.account_id
    recipients, mails = RecipientRepository(ctx), MailRepository(ctx)
    orders = recipients.orders_of_account(account_id)
    addresses = [o.email for o in orders if o.email]
    mails.erase_for_account(account_id, [o.order_id for o in orders])
    recipients.erase_for_account(account_id, utcnow())
    ContactRepository(ctx).erase_for_account(account_id, sorted(map(address_hash, addresses)))
    return ErasureReport(erased={"order_recipients": len(orders), "contacts": len(set(addresses))})


def account_deactivated(event: Event, ctx: HandlerContext) -> None:
    """The summary of the erasure, to the address the event names (gdpr kept it for this mail
    only): nothing else of the account is left here to mail it to."""
    mail = Mail.for_event(
        event.id, event.type, event.data, event.personal, erased=event.personal_erased
    )
    if mail.to_address is not None or event.personal_erased:
        MailRepository(ctx).add(mail)


def forget_inactive_contacts(ctx, cutoff) -> int:
    return ContactRepository(ctx).forget_inactive(cutoff)


def erase_due_recipients(ctx, _cutoff) -> int:
    """Each order's recipient has its own end (NOTIFICATIONS_RECIPIENT_RETENTION_DAYS after its
    story ended, the schedule's 30 days), which the sender loop applies too; a run applies it
    now."""
    return RecipientRepository(ctx).erase_due(utcnow())


def handlers(runtime=None) -> dict[str, Handler]:
    """The event types the notifications service consumes (the catalogue's ``consumers``) and their
    handlers."""
    days = runtime.config.recipient_retention_days if runtime is not None else 30
    table: dict[str, Handler] = {
        event_type: partial(record_mail, retention_days=days) for event_type in TEMPLATES
    }
    table["order.placed"] = partial(order_placed, retention_days=days)
    table["payment.refunded"] = partial(payment_refunded, retention_days=days)
    table["account.deactivated"] = account_deactivated
    table["account.erasure_requested"] = erasure_requested_handler(
        tables.account_deactivations, erase_account, adopt_rows(tables.order_recipients)
    )
    table["account.export_requested"] = export_requested_handler(export.collect)
    table["consent.given"] = consent_changed
    table["consent.withdrawn"] = consent_changed
    table["retention.purge_requested"] = purge_requested_handler(
        {"marketing_contact": forget_inactive_contacts, "mail_recipients": erase_due_recipients},
        runtime,
    )
    return table
