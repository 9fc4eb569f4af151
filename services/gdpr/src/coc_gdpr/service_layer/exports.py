"""Exports of a subject's personal data (GDPR 15 and 20): the gdpr side of the saga and the
download.

``account.data_export_requested`` (from orders) opens a request and asks every service
(``account.export_requested``); each ``account.export_contributed.<service>`` is recorded once, and
the one that completes the set assembles the document (domain ``assemble``), stores it encrypted
(``coc_shared.documents.Cipher``, GDPR_EXPORT_KEY, the request id as associated data), sets a link
token (kept as SHA-256) expiring after GDPR_EXPORT_LINK_HOURS, forgets the address and the
contributions' data, and mails the link (``account.data_export_ready``). The customer's page opens
it with the token (``download``); each download is recorded.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from datetime import timedelta

from coc_shared.catalogue import ERASING_SERVICES
from coc_shared.consumer import HandlerContext
from coc_shared.documents import Cipher
from coc_shared.envelope import Event, utcnow
from coc_shared.errors import InvalidEvent
from coc_shared.export import jsonable
from coc_shared.logging import get_logger

from ..adapters.repository import ConsentLedger, CorrectionRepository, ExportRepository
from ..domain.export import (
    ExportRequest,
    LinkRefused,
    address_on_file,
    assemble,
    check_link,
    complete,
    readable_summary,
    request_to_open,
    token_sha256,
)
from ..retention_doc import internal_recipients

log = get_logger(__name__)


class ExportNotConfigured(Exception):
    """GDPR_EXPORT_KEY is not set: the export cannot be stored (retried, then parked)."""


def open_export_request(event: Event, ctx: HandlerContext) -> None:
    request = ExportRequest.from_message(event.id, event.data, event.personal)
    exports = ExportRepository(ctx)
    to_open = request_to_open(exports.pending_for(request.subject), request)
    if to_open is None:
        log.info("gdpr.export_joined", subject=request.subject, event_id=event.id)
        return
    exports.add(to_open)
    ctx.emit(
        "account.export_requested",
        {
            "request_id": to_open.request_id,
            "account_id": to_open.account_id,
            "order_ids": list(to_open.order_ids),
            "requested_at": to_open.requested_at.isoformat(),
        },
        subject=to_open.subject,
    )
    log.info("gdpr.export_requested", subject=to_open.subject, request_id=to_open.request_id)


def contribution_recorder(config):
    def record_export_contribution(event: Event, ctx: HandlerContext) -> None:
        request_id, service = event.data.get("request_id"), event.data.get("service")
        if not (isinstance(request_id, str) and isinstance(service, str)):
            raise InvalidEvent("an export contribution names no request or service")
        data = (event.personal or {}).get("data")
        if not isinstance(data, dict):
            data = {}  # the personal part was erased since: nothing of it to export
        exports = ExportRepository(ctx)
        request = exports.get(request_id, lock=True)
        if request is None:
            log.warning("gdpr.contribution_of_unknown_request", request_id=request_id)
            return
        exports.add_contribution(
            request_id, service, event.data.get("categories") or [], data, utcnow()
        )
        if request.pending and complete(exports.contributed_services(request_id), ERASING_SERVICES):
            _deliver(ctx, exports, request, config)

    return record_export_contribution


def _deliver(ctx, exports: ExportRepository, request: ExportRequest, config) -> None:
    if config.export_key is None:
        raise ExportNotConfigured("GDPR_EXPORT_KEY is not set: the export cannot be stored")
    now = utcnow()
    schedule = config.schedule
    recipients = {c.category: internal_recipients(c) for c in schedule.categories}
    contributions = exports.contributions(request.request_id)
    # gdpr's own: the subject's consent ledger and correction requests
    contributions["gdpr"] = {
        "marketing_contact": jsonable(
            ConsentLedger(ctx).of_subject(request.account_id, request.order_ids)
        ),
        "correction_requests": jsonable(
            [asdict(r) for r in CorrectionRepository(ctx).of_subject(request.subject)]
        ),
    }
    document = assemble(request, contributions, schedule, recipients, now)
    stored = {"document": document, "summary": readable_summary(document)}
    blob = Cipher(config.export_key).encrypt(
        json.dumps(stored, ensure_ascii=False).encode(), request.request_id
    )
    token = secrets.token_urlsafe(32)
    expires_at = now + timedelta(hours=config.export_link_hours)
    held = [c["category"] for c in document["categories"] if c["held"]]
    exports.ready(request.request_id, blob, held, token_sha256(token), now, expires_at)
    # the address the request carried (the customer's own, or an admin's), else the one on file
    email = request.email or address_on_file(request, contributions.get("orders") or {})
    if email:
        ctx.emit(
            "account.data_export_ready",
            {
                "account_id": request.account_id,
                "order_id": request.order_id,
                "expires_at": expires_at.isoformat(),
            },
            personal={
                "email": email,
                "download_url": f"{config.export_page_url}#export={request.request_id}"
                f"&token={token}",
            },
            subject=request.subject,
        )
    log.info("gdpr.export_ready", subject=request.subject, request_id=request.request_id)


@dataclass(frozen=True)
class Download:
    filename: str
    content_type: str
    body: bytes


def download(runtime, request_id: str, token: str | None, part: str = "document") -> Download:
    """The export's JSON document (or its readable summary) for the holder of the link's token;
    ``LinkRefused`` (403, 404, 410) otherwise. Each download is recorded."""
    key = runtime.config.export_key
    now = utcnow()
    with runtime.unit_of_work(correlation_id=request_id) as uow:
        exports = ExportRepository(uow)
        request = check_link(exports.get(request_id), token, now)
        if key is None:  # (no export is ever ready without one: only a key removed since)
            raise LinkRefused("exports are not configured", 503)
        blob = exports.document(request.request_id)
        if blob is None:
            raise LinkRefused("this link has expired: ask for a new export", 410)
        exports.record_download(request.request_id, part, now)
        uow.commit()
    stored = json.loads(Cipher(key).decrypt(blob, request.request_id))
    if part == "summary":
        return Download(
            "export-summary.txt", "text/plain; charset=utf-8", stored["summary"].encode()
        )
    body = json.dumps(stored["document"], ensure_ascii=False, indent=2).encode()
    return Download("export.json", "application/json", body)


def exports_of_subject(runtime, subject: str) -> list[dict]:
    """Staff: a subject's export requests, their deadline, state and downloads."""
    with runtime.unit_of_work() as uow:
        exports = ExportRepository(uow)
        return [
            {
                "request_id": r.request_id,
                "account_id": r.account_id,
                "order_id": r.order_id,
                "requested_at": r.requested_at.isoformat(),
                "due_by": r.due_by.isoformat(),
                "status": r.status,
                "ready_at": r.ready_at.isoformat() if r.ready_at else None,
                "expires_at": r.expires_at.isoformat() if r.expires_at else None,
                "waiting_for": sorted(
                    set(ERASING_SERVICES) - exports.contributed_services(r.request_id)
                )
                if r.pending
                else [],
                "downloads": [
                    {"part": d["part"], "downloaded_at": d["downloaded_at"].isoformat()}
                    for d in exports.downloads(r.request_id)
                ],
            }
            for r in exports.of_subject(subject)
        ]
