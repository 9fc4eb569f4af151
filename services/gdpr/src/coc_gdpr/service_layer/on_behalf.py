"""Staff open a GDPR request on behalf of a customer who wrote or called: a deactivation or an
export starts the same saga as the customer's own request (``account.erasure_requested``,
``account.export_requested``; a pending request of the same subject absorbs it), a correction is
recorded for staff to carry out; each is written to the support actions log with the channel and
who verified the person, and how."""

from __future__ import annotations

import uuid

from coc_shared.envelope import utcnow

from ..adapters.repository import DeactivationRequestRepository, ExportRepository
from ..domain import export as export_domain
from ..domain.model import DeactivationRequest, request_to_open
from ..domain.on_behalf import OnBehalfRequest


def open_on_behalf(runtime, actor, fields: dict) -> OnBehalfRequest:
    """``fields``: kind, account_id or order_id, channel, verified_by, verification, and the
    address (email, first_name) the summary or the link goes to; correction, note."""
    now = utcnow()
    kind = fields["kind"]
    request_id, joined = str(uuid.uuid4()), False
    if kind == "deactivation":
        request_id, joined = _deactivation(runtime, request_id, fields, now)
    elif kind == "export":
        request_id, joined = _export(runtime, request_id, fields, now)
    opened = OnBehalfRequest(
        kind=kind,
        account_id=fields.get("account_id"),
        order_id=None if fields.get("account_id") else fields.get("order_id"),
        channel=fields["channel"],
        verified_by=fields.get("verified_by") or actor.name,
        verification=fields["verification"],
        opened_by=actor.name,
        opened_at=now,
        request_id=request_id,
        joined=joined,
        correction=fields.get("correction") or "",
        note=fields.get("note") or "",
    )
    runtime.parking.record_action(
        actor,
        f"gdpr_{kind}_on_behalf",
        opened.subject,
        opened.note or None,
        {"service": runtime.settings.service, **opened.recorded_details()},
    )
    return opened


def _personal(fields: dict) -> dict:
    return {"email": fields.get("email"), "first_name": fields.get("first_name")}


def _deactivation(runtime, request_id: str, fields: dict, now) -> tuple[str, bool]:
    account_id, order_id = fields.get("account_id"), fields.get("order_id")
    data = {"account_id": account_id or order_id, "requested_at": now.isoformat()}
    if not account_id:
        data["guest_order_id"] = order_id
    request = DeactivationRequest.from_message(request_id, data, _personal(fields))
    with runtime.unit_of_work(correlation_id=request.account_id) as uow:
        requests = DeactivationRequestRepository(uow)
        pending = requests.pending_for(request.account_id)
        to_open = request_to_open(pending, request)
        if to_open is None:
            return pending.event_id, True
        requests.add(to_open)
        ExportRepository(uow).forget_subject(to_open.account_id)  # its exports, with it
        uow.emit(
            "account.erasure_requested",
            {
                "request_id": to_open.event_id,
                "account_id": to_open.account_id,
                "requested_at": to_open.requested_at.isoformat(),
                "order_ids": [to_open.guest_order_id] if to_open.guest_order_id else [],
            },
            subject=to_open.account_id,
        )
        uow.commit()
    return request_id, False


def _export(runtime, request_id: str, fields: dict, now) -> tuple[str, bool]:
    account_id, order_id = fields.get("account_id"), fields.get("order_id")
    data = {
        "account_id": account_id,
        "order_id": None if account_id else order_id,
        # the order the customer wrote about: its services' data by order id (an account's other
        # orders are found by the account)
        "order_ids": [order_id] if order_id else [],
        "requested_at": now.isoformat(),
    }
    request = export_domain.ExportRequest.from_message(request_id, data, _personal(fields))
    with runtime.unit_of_work(correlation_id=request.subject) as uow:
        exports = ExportRepository(uow)
        pending = exports.pending_for(request.subject)
        to_open = export_domain.request_to_open(pending, request)
        if to_open is None:
            return pending.request_id, True
        exports.add(to_open)
        uow.emit(
            "account.export_requested",
            {
                "request_id": to_open.request_id,
                "account_id": to_open.account_id,
                "order_ids": list(to_open.order_ids),
                "requested_at": to_open.requested_at.isoformat(),
            },
            subject=to_open.subject,
        )
        uow.commit()
    return request_id, False
