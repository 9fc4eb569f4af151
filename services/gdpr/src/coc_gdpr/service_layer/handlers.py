"""Event handlers of the gdpr service: thin, the rules are in ``domain``.

Each runs inside the consumer's transaction (``ctx.conn``); the inbox already drops a redelivered
event, and a pending request of the account absorbs a repeated one, so a handler has one effect.
"""

from __future__ import annotations

from coc_shared.consumer import Handler, HandlerContext
from coc_shared.envelope import Event

from ..adapters.repository import ConsentRepository, DeactivationRequestRepository
from ..domain.model import ConsentWithdrawal, DeactivationRequest, request_to_open


def record_deactivation_request(event: Event, ctx: HandlerContext) -> None:
    request = DeactivationRequest.from_message(event.id, event.data)
    requests = DeactivationRequestRepository(ctx)
    to_open = request_to_open(requests.pending_for(request.account_id), request)
    if to_open is not None:
        requests.add(to_open)


def record_marketing_unsubscribed(event: Event, ctx: HandlerContext) -> None:
    """A withdrawal of consent to marketing mails, recorded (the inbox makes it once per event)."""
    withdrawal = ConsentWithdrawal.from_message(event.id, event.data, event.personal)
    ConsentRepository(ctx).add_withdrawal(withdrawal)


def handlers(_runtime=None) -> dict[str, Handler]:
    """The event types the gdpr service consumes (the catalogue's ``consumers``) and their
    handlers."""
    return {
        "account.deactivation_requested": record_deactivation_request,
        "marketing.unsubscribed": record_marketing_unsubscribed,
    }
