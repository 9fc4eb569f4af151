"""Staff open a GDPR request on behalf of a customer who wrote or called, one use case per kind:
a deactivation or an export starts the same saga as the customer's own request
(``account.erasure_requested``, ``account.export_requested``; a pending request of the same
subject absorbs it), a correction is recorded for staff to carry out within one month
(``corrections``). Each writes its support action (the channel, who verified the person, that
they did) in the same unit of work as the request: both are kept, or neither. How the person was
verified is kept only in gdpr's request row.

An export's link goes to the address on file: orders' contribution supplies it (the account's
address, or a guest order's), as it does the customer's own request; only an admin may give
another address, with a reason recorded in the support action."""

from __future__ import annotations

import uuid

from coc_shared.envelope import utcnow

from ..adapters.repository import (
    CorrectionRepository,
    DeactivationRequestRepository,
    ExportRepository,
)
from ..adapters.support_log import SupportActionLog
from ..domain import export as export_domain
from ..domain.corrections import CorrectionRequest
from ..domain.model import DeactivationRequest, request_to_open
from ..domain.on_behalf import OnBehalfRequest, export_address


def _opened(actor, fields: dict, now, request_id: str, joined: bool, **extra) -> OnBehalfRequest:
    return OnBehalfRequest(
        kind=fields["kind"],
        account_id=fields.get("account_id"),
        order_id=None if fields.get("account_id") else fields.get("order_id"),
        channel=fields["channel"],
        verified_by=fields.get("verified_by") or actor.name,
        verification=fields["verification"],
        opened_by=actor.name,
        opened_at=now,
        request_id=request_id,
        joined=joined,
        note=fields.get("note") or "",
        **extra,
    )


def _record(actions: SupportActionLog, runtime, actor, opened: OnBehalfRequest) -> None:
    actions.record(
        actor,
        f"gdpr_{opened.kind}_on_behalf",
        opened.subject,
        opened.note or None,
        {"service": runtime.settings.service, **opened.recorded_details()},
    )


def open_deactivation(runtime, actor, fields: dict) -> OnBehalfRequest:
    """``fields``: account_id or a guest's order_id, channel, verified_by, verification, the
    address the summary goes to (email, first_name), note."""
    now = utcnow()
    account_id, order_id = fields.get("account_id"), fields.get("order_id")
    data = {"account_id": account_id or order_id, "requested_at": now.isoformat()}
    if not account_id:
        data["guest_order_id"] = order_id
    personal = {"email": fields.get("email"), "first_name": fields.get("first_name")}
    request = DeactivationRequest.from_message(str(uuid.uuid4()), data, personal)
    with runtime.unit_of_work(correlation_id=request.account_id) as uow:
        requests, actions = DeactivationRequestRepository(uow), SupportActionLog(uow, runtime)
        pending = requests.pending_for(request.account_id)
        to_open = request_to_open(pending, request)
        if to_open is not None:
            requests.add(to_open, verification=fields["verification"])
            ExportRepository(uow).forget_subject(to_open.account_id)  # its exports, with it
            CorrectionRepository(uow).forget_subject(to_open.account_id)
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
        kept = to_open or pending
        opened = _opened(actor, fields, now, kept.event_id, joined=to_open is None)
        _record(actions, runtime, actor, opened)
        uow.commit()
    actions.committed()
    return opened


def open_export(runtime, actor, fields: dict) -> OnBehalfRequest:
    """``fields``: account_id or a guest's order_id (or the order written about), channel,
    verified_by, verification, note; from an admin only, another address (email, first_name)
    and ``address_reason``."""
    address = export_address(actor.role, fields.get("email"), fields.get("address_reason"))
    now = utcnow()
    account_id, order_id = fields.get("account_id"), fields.get("order_id")
    data = {
        "account_id": account_id,
        "order_id": None if account_id else order_id,
        # the order the customer wrote about: its services' data by order id (an account's other
        # orders are found by the account)
        "order_ids": [order_id] if order_id else [],
        "requested_at": now.isoformat(),
    }
    # no address: the one on file, from orders' contribution (``exports``)
    personal = {"email": fields.get("email"), "first_name": fields.get("first_name")}
    request = export_domain.ExportRequest.from_message(str(uuid.uuid4()), data, personal)
    with runtime.unit_of_work(correlation_id=request.subject) as uow:
        exports, actions = ExportRepository(uow), SupportActionLog(uow, runtime)
        pending = exports.pending_for(request.subject)
        to_open = export_domain.request_to_open(pending, request)
        if to_open is not None:
            exports.add(to_open, verification=fields["verification"])
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
        kept = to_open or pending
        opened = _opened(
            actor,
            fields,
            now,
            kept.request_id,
            joined=to_open is None,
            address=address,
            address_reason=(fields.get("address_reason") or "").strip(),
        )
        _record(actions, runtime, actor, opened)
        uow.commit()
    actions.committed()
    return opened


def open_correction(runtime, actor, fields: dict) -> OnBehalfRequest:
    """``fields``: account_id or order_id, channel, verified_by, verification, correction (what
    is to be corrected), note."""
    now = utcnow()
    request = CorrectionRequest(
        request_id=str(uuid.uuid4()),
        account_id=fields.get("account_id"),
        order_id=fields.get("order_id"),
        channel=fields["channel"],
        verified_by=fields.get("verified_by") or actor.name,
        verification=fields["verification"],
        correction=fields["correction"].strip(),
        note=fields.get("note") or "",
        opened_by=actor.name,
        requested_at=now,
    )
    with runtime.unit_of_work(correlation_id=request.subject) as uow:
        actions = SupportActionLog(uow, runtime)
        CorrectionRepository(uow).add(request)
        opened = _opened(
            actor, fields, now, request.request_id, joined=False, correction=request.correction
        )
        _record(actions, runtime, actor, opened)
        uow.commit()
    actions.committed()
    return opened


OPEN_BY_KIND = {
    "deactivation": open_deactivation,
    "export": open_export,
    "correction": open_correction,
}
