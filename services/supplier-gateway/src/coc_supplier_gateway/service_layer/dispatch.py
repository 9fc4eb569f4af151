"""Sending requests to the suppliers, exactly once in effect: an outbox of our own.

A handler that makes a request ready writes a "to send" row (``supplier_dispatches``) with it. A
sender loop (one for the amqp channel, one per http supplier, so that one supplier's outage never
holds the others up) claims due rows with their requests (``FOR UPDATE SKIP LOCKED``: several
workers may run), builds each message from the request as it is now (fresh document links), sends
them, and in the same transaction marks the rows sent, the requests ``sent`` and emits
``documents.sent_to_supplier``. A failure leaves the row unsent with a backoff (its attempts, last
error and next attempt); a refusal (4xx) puts the request on the review list.

A process killed between the send and the commit leaves the row unsent: it is sent again with the
same request id, which the supplier recognises (the contract says so), and the order moves once,
since only the commit emits the event. A cancellation takes the request's row lock too, so it and
a sending never both win.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from urllib.parse import urlencode

from coc_shared.documents import link_expiry, sign_document_link
from coc_shared.envelope import utcnow
from coc_shared.logging import get_logger

from ..adapters.channels import AmqpChannel, HttpChannel, Outgoing, SendFailure
from ..adapters.repository import DispatchRepository, HistoryRepository, SupplierRequestRepository
from ..domain.directory import Supplier
from ..domain.model import READY, REVIEW, WITH_SUPPLIER, SupplierRequest

log = get_logger(__name__)


def request_message(request: SupplierRequest, supplier: Supplier, config, now, resend=False):
    """The request as the supplier receives it: only what the directory says it needs, each
    document as a signed link that expires (never the bytes)."""
    needs = supplier.needs
    vehicle = {
        name: getattr(request, name)
        for name in ("vin", "brand", "first_registration_date")
        if name in needs.vehicle and getattr(request, name)
    }
    if needs.extra:
        vehicle["extra"] = {k: request.vehicle_extra[k] for k in needs.extra}
    expires_at = link_expiry(now, config.document_link_hours)
    documents = []
    for document in request.documents_for(supplier):
        query = sign_document_link(
            config.document_link_secret, supplier.code, document["id"], expires_at
        )
        documents.append(
            {
                "document_id": document["id"],
                "kind": document["kind"],
                "content_type": document.get("content_type"),
                "url": config.document_url.format(document_id=document["id"])
                + "?"
                + urlencode(query),
                "expires_at": expires_at.isoformat(),
            }
        )
    due_at = request.due_at or now + timedelta(hours=supplier.turnaround_hours)
    message = {
        "request_id": request.request_id,
        "supplier": supplier.code,
        "order_number": request.order_number,
        "sent_at": now.isoformat(),
        "reply_by": due_at.isoformat(),
        "resend": resend,
        "vehicle": vehicle,
        "documents": documents,
        "ships_to_customer": supplier.ships_to_customer,
    }
    if needs.customer_name and request.customer_name:
        message["customer"] = {
            "first_name": request.customer_name.get("first_name"),
            "last_name": request.customer_name.get("last_name"),
        }
    if needs.shipping_address and request.shipping_address:
        message["shipping_address"] = dict(request.shipping_address)
    return message


class Sender:
    """Claims due "to send" rows of one channel (and, for http, one supplier), sends, marks."""

    def __init__(self, runtime, channel: str, transport, supplier: str | None = None):
        self.runtime = runtime
        self.config = runtime.config
        self.channel = channel
        self.transport = transport
        self.supplier = supplier
        self.name = f"{channel}-sender" + (f"-{supplier}" if supplier else "")
        self._said_not_configured = False

    def run(self, stop: threading.Event) -> None:
        log.info("sender.started", sender=self.name)
        while not stop.is_set():
            try:
                sent = self.send_batch()
            except Exception as exc:  # the database or the broker is down: try again shortly
                log.warning(
                    "sender.failed",
                    sender=self.name,
                    error_type=type(exc).__name__,
                    error=str(exc).splitlines()[0][:300],
                )
                stop.wait(min(5.0, max(self.config.sender_poll_seconds, 1.0)))
                continue
            if sent < self.config.sender_batch:
                stop.wait(self.config.sender_poll_seconds)
        close = getattr(self.transport, "close", None)
        if close:
            close()

    def send_batch(self) -> int:
        """One batch: returns how many rows it claimed."""
        directory = self.config.directory
        if not self.config.document_link_secret:
            if not self._said_not_configured:
                log.error("sender.not_configured", reason="SUPPLIER_GATEWAY_DOCUMENT_LINK_SECRET")
                self._said_not_configured = True
            return 0  # no link could be signed: nothing is sent until it is configured
        limit = self.config.sender_batch if self.channel == "amqp" else 1
        with self.runtime.unit_of_work() as uow:
            now = utcnow()
            dispatches = DispatchRepository(uow)
            claimed = dispatches.claim(self.channel, now, limit, supplier=self.supplier)
            if not claimed:
                return 0
            outgoing, cancelled, by_key = [], [], {}
            for dispatch, request in claimed:
                supplier = directory.get(request.supplier)
                allowed = (READY,) if dispatch["kind"] == "request" else WITH_SUPPLIER
                if (
                    supplier is None
                    or request.status not in allowed
                    or request.request_id != dispatch["request_id"]
                ):
                    cancelled.append(dispatch["id"])
                    continue
                message = request_message(
                    request, supplier, self.config, now, resend=dispatch["kind"] == "resend"
                )
                body = json.dumps(message, separators=(",", ":")).encode()
                outgoing.append(
                    Outgoing(
                        dispatch["id"], supplier.code, request.request_id, request.order_id, body
                    )
                )
                by_key[dispatch["id"]] = (dispatch, request, supplier, message)
            dispatches.cancel(cancelled, now, "the request was no longer to send (cancelled?)")
            results = self.transport.send(outgoing) if outgoing else {}
            self._record(uow, now, results, by_key)
            uow.commit()
        return len(claimed)

    def _record(self, uow, now, results: dict, by_key: dict) -> None:
        dispatches = DispatchRepository(uow)
        requests = SupplierRequestRepository(uow)
        history = HistoryRepository(uow)
        sent_ids, newly_sent = [], {}
        for key, failure in results.items():
            dispatch, request, supplier, message = by_key[key]
            if failure is None:
                sent_ids.append(key)
                if dispatch["kind"] == "request" and request.was_sent(now, supplier):
                    newly_sent.setdefault(request.due_at, []).append((request, supplier, message))
                else:
                    history.add(request, "resent", {"channel": self.channel})
                continue
            self._failed(uow, now, dispatch, request, failure)
        dispatches.mark_sent(sent_ids, now)
        for due_at, sent in newly_sent.items():
            requests.mark_sent([r.order_id for r, _, _ in sent], now, due_at)
            for request, supplier, message in sent:
                history.add(
                    request,
                    "sent",
                    {"channel": supplier.channel, "documents": len(message["documents"])},
                    at=now,
                )
                uow.emit(
                    "documents.sent_to_supplier",
                    {
                        "order_id": request.order_id,
                        "supplier": supplier.code,
                        "supplier_request_id": request.request_id,
                        "document_ids": [d["document_id"] for d in message["documents"]],
                    },
                    subject=request.order_id,
                    correlation_id=request.order_id,
                )
        if sent_ids:
            log.info("supplier_requests.sent", sender=self.name, count=len(sent_ids))

    def _failed(self, uow, now, dispatch, request, failure: SendFailure) -> None:
        dispatches = DispatchRepository(uow)
        if failure.permanent:
            dispatches.cancel([dispatch["id"]], now, failure.error)
            if dispatch["kind"] == "request":
                request.status = REVIEW
                request.review_reason = f"the supplier refused the request: {failure.error}"
                SupplierRequestRepository(uow).save(request)
            HistoryRepository(uow).add(request, "refused_by_supplier", {"error": failure.error})
            log.error(
                "supplier_request.refused",
                order_id=request.order_id,
                supplier=request.supplier,
                error=failure.error,
            )
            return
        attempts = dispatch["attempts"] + 1
        delay = max(self.config.retry_delay(attempts), failure.retry_after or 0)
        dispatches.failed(dispatch, failure.error, now + timedelta(seconds=delay))
        log.warning(
            "supplier_request.send_failed",
            order_id=request.order_id,
            supplier=request.supplier,
            attempt=attempts,
            retry_in=delay,
            error=failure.error[:300],
        )


def sender_loops(runtime) -> dict:
    """The worker's senders: one for the amqp channel, one per supplier of the http channel."""
    config = runtime.config
    loops = {}

    def amqp_loop(stop: threading.Event) -> None:
        channel = AmqpChannel(runtime.broker, runtime.settings.outbox_confirm_timeout, stop)
        Sender(runtime, "amqp", channel).run(stop)

    loops["amqp-sender"] = amqp_loop
    http = HttpChannel(config, config.directory)
    runtime.http_channel = http  # its breakers, for a look from outside (tests, support)
    for code in config.directory.codes_of("http"):
        loops[f"http-sender-{code}"] = lambda stop, code=code: Sender(
            runtime, "http", http, supplier=code
        ).run(stop)
    return loops
