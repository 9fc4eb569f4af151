"""Event handlers of the gdpr service: thin, the rules are in ``domain``.

Each runs inside the consumer's transaction; the inbox already drops a redelivered event, a
pending request of the account absorbs a repeated one, and a report is recorded once per request
and service, so a handler has one effect.

The deactivation saga: ``account.deactivation_requested`` opens a request and asks every service
to erase (``account.erasure_requested``); each ``account.erasure_reported.<service>`` is recorded,
and the one that completes the set closes the request and sends the summary
(``account.deactivated``, to the address the request carried, then forgotten).
"""

from __future__ import annotations

from coc_shared.catalogue import (
    ERASING_SERVICES,
    erasure_report_type,
    export_contribution_type,
    purge_report_type,
)
from coc_shared.consumer import Handler, HandlerContext
from coc_shared.envelope import Event, utcnow
from coc_shared.logging import get_logger

from ..adapters.repository import (
    CorrectionRepository,
    DeactivationRequestRepository,
    ErasureReportRepository,
    ExportRepository,
)
from ..domain.model import (
    DeactivationRequest,
    ErasureReport,
    completion,
    request_to_open,
)
from .consents import consent_handlers
from .exports import contribution_recorder, open_export_request
from .purges import record_purge_report

log = get_logger(__name__)


def open_deactivation_request(event: Event, ctx: HandlerContext) -> None:
    request = DeactivationRequest.from_message(event.id, event.data, event.personal)
    requests = DeactivationRequestRepository(ctx)
    to_open = request_to_open(requests.pending_for(request.account_id), request)
    if to_open is None:
        log.info("gdpr.deactivation_joined", account_id=request.account_id, event_id=event.id)
        return
    requests.add(to_open)
    ExportRepository(ctx).forget_subject(to_open.account_id)  # its exports, with it
    CorrectionRepository(ctx).forget_subject(to_open.account_id)
    ctx.emit(
        "account.erasure_requested",
        {
            "request_id": to_open.event_id,
            "account_id": to_open.account_id,
            "requested_at": to_open.requested_at.isoformat(),
            # a guest's order: each service erases it as the account ``account_id``
            "order_ids": [to_open.guest_order_id] if to_open.guest_order_id else [],
        },
        subject=to_open.account_id,
    )
    log.info(
        "gdpr.erasure_requested",
        account_id=to_open.account_id,
        request_id=to_open.event_id,
        reason=to_open.reason,
    )


def record_erasure_report(event: Event, ctx: HandlerContext) -> None:
    report = ErasureReport.from_message(event.data, utcnow())
    requests = DeactivationRequestRepository(ctx)
    request = requests.lock(report.request_id)
    if request is None:
        log.warning("gdpr.report_of_unknown_request", request_id=report.request_id)
        return
    reports = ErasureReportRepository(ctx)
    reports.add(report)
    summary = completion(request, reports.of_request(request.event_id), ERASING_SERVICES)
    if summary is None:
        return
    now = utcnow()
    requests.complete(request, now)
    ctx.emit(
        "account.deactivated",
        {
            "account_id": request.account_id,
            "erased_at": now.isoformat(),
            "erased": summary.erased,
            "retained": summary.retained,
            "reason": request.reason,
        },
        personal=(
            {"email": request.email, "first_name": request.first_name} if request.email else None
        ),
        subject=request.account_id,
    )
    log.info("gdpr.account_deactivated", account_id=request.account_id, request_id=request.event_id)


def handlers(runtime=None) -> dict[str, Handler]:
    """The event types the gdpr service consumes (the catalogue's ``consumers``) and their
    handlers."""
    from ..config import GdprConfig

    config = runtime.config if runtime is not None else GdprConfig.from_env()
    table: dict[str, Handler] = {
        "account.deactivation_requested": open_deactivation_request,
        "account.data_export_requested": open_export_request,
    }
    table.update(consent_handlers(config))
    table.update({erasure_report_type(s): record_erasure_report for s in ERASING_SERVICES})
    table.update({purge_report_type(s): record_purge_report for s in ERASING_SERVICES})
    recorder = contribution_recorder(config)
    table.update({export_contribution_type(s): recorder for s in ERASING_SERVICES})
    return table
