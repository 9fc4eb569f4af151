"""What support staff do with supplier requests (each action recorded in the support actions log by
the route, with the staff member and the reason): list and show them, send one again, record a
reply received by other means (mail, phone), record the shipment of a certificate this company
posted, and see what is to be shipped (name and address: what the carrier gets)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from coc_shared.envelope import utcnow

from ..adapters.carriers import tracking_url_of
from ..adapters.repository import DispatchRepository, HistoryRepository, SupplierRequestRepository
from ..domain.model import ISSUED, WITH_SUPPLIER, SupplierRequest
from .replies import receive_reply, shipped_data


class NotFound(Exception):
    pass


class NotNow(Exception):
    """The request's state does not allow this action (the message says why)."""


@dataclass(frozen=True)
class RequestView:
    request: SupplierRequest
    history: list[dict]
    pending: list[dict]


def list_requests(runtime, status=None, supplier=None, overdue=None, limit=100):
    with runtime.unit_of_work() as uow:
        return SupplierRequestRepository(uow).list(status, supplier, overdue, limit)


def show_request(runtime, order_id: str) -> RequestView:
    with runtime.unit_of_work() as uow:
        request = SupplierRequestRepository(uow).get(order_id)
        if request is None:
            raise NotFound(order_id)
        return RequestView(
            request,
            HistoryRepository(uow).of(order_id),
            DispatchRepository(uow).pending(order_id),
        )


def resend(runtime, order_id: str, actor: str, reason: str) -> SupplierRequest:
    """The request sent again to its supplier, with the same request id (the supplier keeps one)."""
    with runtime.unit_of_work(correlation_id=order_id) as uow:
        requests = SupplierRequestRepository(uow)
        request = requests.get(order_id, for_update=True)
        if request is None:
            raise NotFound(order_id)
        if request.status not in WITH_SUPPLIER:
            raise NotNow(f"this request is {request.status}: only a request with its supplier")
        supplier = runtime.config.directory.get(request.supplier)
        now = utcnow()
        DispatchRepository(uow).add(request, supplier.channel, "resend", now)
        HistoryRepository(uow).add(request, "resend_asked", {"reason": reason}, actor, now)
        uow.commit()
    return request


def record_reply(runtime, order_id: str, reply: dict, actor: str, reason: str):
    """A reply the supplier gave by other means, applied as if it came through its channel."""
    with runtime.unit_of_work() as uow:
        request = SupplierRequestRepository(uow).get(order_id)
    if request is None or request.request_id is None:
        raise NotFound(order_id)
    body = {
        **reply,
        "reply_id": f"staff-{uuid.uuid4()}",
        "request_id": request.request_id,
        "supplier": request.supplier,
    }
    body.setdefault("occurred_at", utcnow().isoformat())
    return receive_reply(runtime, body, "staff", actor=f"staff:{actor} ({reason})")


def record_shipment(
    runtime, order_id: str, carrier: str, tracking_number: str, actor: str, reason: str
) -> SupplierRequest:
    """This company posted the certificate: ``certificate.shipped``, then its tracking is
    followed."""
    with runtime.unit_of_work(correlation_id=order_id) as uow:
        requests = SupplierRequestRepository(uow)
        request = requests.get(order_id, for_update=True)
        if request is None:
            raise NotFound(order_id)
        if request.status != ISSUED:
            raise NotNow(f"this request is {request.status}: only a received certificate ships")
        now = utcnow()
        outcome = request.shipped(
            now,
            "company",
            carrier,
            tracking_number,
            tracking_url_of(carrier, tracking_number),
            request.certificate_id,
        )
        requests.save(request)
        HistoryRepository(uow).add(
            request, "shipped", {"carrier": carrier, "reason": reason}, f"staff:{actor}", now
        )
        for event_type in outcome.events:
            uow.emit(event_type, shipped_data(request), subject=order_id, correlation_id=order_id)
        uow.commit()
    return request


def to_ship(runtime, limit: int = 200) -> list[SupplierRequest]:
    """Certificates received that this company ships (their supplier does not)."""
    directory = runtime.config.directory
    with runtime.unit_of_work() as uow:
        found = SupplierRequestRepository(uow).list(ISSUED, None, None, limit)
    return [
        r
        for r in found
        if r.to_ship_by_company
        and not getattr(directory.get(r.supplier), "ships_to_customer", False)
    ]
