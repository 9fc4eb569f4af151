"""The consent ledger: every choice about marketing mails lands here as a record (when, through
which channel, for which version of the text), and notifications follows the ledger
(``consent.given`` / ``consent.withdrawn``, carrying the address it concerns).

Sources: the order form (``order.placed``'s ``marketing_consent``), the account's sign-up or
settings (``account.marketing_choice_made`` from orders), and the one-click unsubscribe of a
marketing mail (``marketing.unsubscribed`` from notifications, kept as it was: notifications has
already stopped the mails, the ledger records the withdrawal and tells it again, which changes
nothing there). Each event is recorded once (its id is the record's key)."""

from __future__ import annotations

from coc_shared.consumer import HandlerContext
from coc_shared.envelope import Event

from ..adapters.repository import ConsentLedger
from ..domain.model import ConsentRecord, ConsentWithdrawal


def _record(ctx: HandlerContext, record: ConsentRecord | None) -> None:
    if record is None or not ConsentLedger(ctx).add(record):
        return
    if record.email is None:
        return  # nobody to tell notifications about (the address was erased since)
    event_type, data = record.event()
    ctx.emit(
        event_type,
        data,
        personal={"email": record.email},
        subject=record.account_id or record.order_id,
    )


def _erased(event: Event) -> bool:
    return bool(getattr(event, "personal_erased", False))


def consent_handlers(config) -> dict:
    def order_placed(event: Event, ctx: HandlerContext) -> None:
        if _erased(event):
            return
        _record(
            ctx,
            ConsentRecord.from_order(
                event.id, event.data, event.personal, config.consent_text_version, event.occurred_at
            ),
        )

    def marketing_choice_made(event: Event, ctx: HandlerContext) -> None:
        record = ConsentRecord.from_choice(
            event.id,
            event.data,
            None if _erased(event) else event.personal,
            config.consent_text_version,
        )
        _record(ctx, record)

    def marketing_unsubscribed(event: Event, ctx: HandlerContext) -> None:
        personal = None if _erased(event) else event.personal
        withdrawal = ConsentWithdrawal.from_message(event.id, event.data, personal)
        _record(ctx, ConsentRecord.from_withdrawal(withdrawal, (personal or {}).get("email")))

    return {
        "order.placed": order_placed,
        "account.marketing_choice_made": marketing_choice_made,
        "marketing.unsubscribed": marketing_unsubscribed,
    }


def consents_of_account(runtime, account_id: str) -> list[dict]:
    with runtime.unit_of_work() as uow:
        return ConsentLedger(uow).of_account(account_id)
