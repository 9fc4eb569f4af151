"""What the gateway follows by itself: requests past their due time (``supplier.request_overdue``,
once per request) and shipped certificates' tracking, until the carrier delivers them
(``certificate.delivered``).

Both are worker loops that look for due rows now and then and take them under their row lock
(``FOR UPDATE SKIP LOCKED``), so several workers never announce or poll one row twice.
"""

from __future__ import annotations

import threading
from datetime import timedelta

from coc_shared.envelope import utcnow
from coc_shared.logging import get_logger

from ..adapters.carriers import TrackingUnavailable, carrier_for
from ..adapters.repository import HistoryRepository, SupplierRequestRepository
from ..domain.model import SHIPPED, WITH_SUPPLIER
from .replies import shipped_data

log = get_logger(__name__)


def announce_overdue(runtime, limit: int = 200) -> int:
    """Requests past their due time without an answer that ends them: each announced once."""
    with runtime.unit_of_work() as uow:
        now = utcnow()
        requests = SupplierRequestRepository(uow)
        due = requests.due_for("due_at", now, WITH_SUPPLIER, limit, unannounced=True)
        for request in due:
            status = request.status
            if not request.falls_due(now):
                continue
            requests.save(request)
            HistoryRepository(uow).add(request, "overdue", {"due_at": request.due_at.isoformat()})
            uow.emit(
                "supplier.request_overdue",
                {
                    "order_id": request.order_id,
                    "supplier": request.supplier,
                    "supplier_request_id": request.request_id,
                    "due_at": request.due_at.isoformat(),
                    "status": status,
                },
                subject=request.order_id,
                correlation_id=request.order_id,
            )
            log.warning(
                "supplier_request.overdue",
                order_id=request.order_id,
                supplier=request.supplier,
                due_at=request.due_at.isoformat(),
                status=status,
            )
        uow.commit()
    return len(due)


def track_shipments(runtime, limit: int = 50) -> int:
    """Shipped certificates whose next look has come: their carrier's tracking read; a delivered
    one becomes ``delivered`` (``certificate.delivered``), the others are looked at again later."""
    config = runtime.config
    with runtime.unit_of_work() as uow:
        now = utcnow()
        requests = SupplierRequestRepository(uow)
        due = requests.due_for("next_tracking_at", now, (SHIPPED,), limit)
        for request in due:
            carrier = carrier_for(request.carrier or "", config)
            later = now + timedelta(seconds=config.tracking_poll_seconds)
            if carrier is None:
                request.next_tracking_at = None  # staff follow it (history says why)
                requests.save(request)
                HistoryRepository(uow).add(
                    request, "tracking_unavailable", {"carrier": request.carrier}
                )
                continue
            try:
                tracking = carrier.track(request.tracking_number)
            except TrackingUnavailable as exc:
                request.next_tracking_at = later
                requests.save(request)
                log.warning(
                    "shipment.tracking_unavailable",
                    order_id=request.order_id,
                    carrier=request.carrier,
                    error=str(exc)[:300],
                )
                continue
            request.tracking_status = (tracking.last_label or "")[:300] or None
            if tracking.delivered:
                outcome = request.delivered(tracking.delivered_at)
                HistoryRepository(uow).add(
                    request, "delivered", {"at": tracking.delivered_at.isoformat()}
                )
                for event_type in outcome.events:
                    uow.emit(
                        event_type,
                        {**_tracking(request), "delivered_at": request.delivered_at.isoformat()},
                        subject=request.order_id,
                        correlation_id=request.order_id,
                    )
                log.info("certificate.delivered", order_id=request.order_id)
            else:
                request.next_tracking_at = later
                if tracking.returned:
                    HistoryRepository(uow).add(
                        request, "returned_to_sender", {"status": request.tracking_status}
                    )
            requests.save(request)
        uow.commit()
    return len(due)


def _tracking(request) -> dict:
    data = shipped_data(request)
    return {k: data[k] for k in ("order_id", "carrier", "tracking_number")}


def every(seconds: float, work, name: str):
    """A worker loop running ``work(runtime)`` every ``seconds`` (at once again when it found a full
    batch), logging and going on after a failure."""

    def loop(runtime, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                found = work(runtime)
            except Exception as exc:
                log.warning(f"{name}.failed", error_type=type(exc).__name__, error=str(exc)[:300])
                found = 0
            if not found:
                stop.wait(seconds)

    return loop


def follow_up_loops(runtime) -> dict:
    config = runtime.config
    deadlines = every(config.deadline_check_seconds, announce_overdue, "deadlines")
    tracking = every(min(config.tracking_poll_seconds, 5.0), track_shipments, "tracking")
    loops = {"deadlines": lambda stop: deadlines(runtime, stop)}
    if config.laposte_key:
        loops["tracking"] = lambda stop: tracking(runtime, stop)
    else:
        log.warning("tracking.not_configured", reason="SUPPLIER_GATEWAY_LAPOSTE_KEY is not set")
    return loops
