"""Replies from suppliers, whichever way they come (their queue, the signed HTTP callback, or
staff recording one received by other means): one use case, ``receive_reply``.

A reply is claimed by its id first (``supplier_replies``): a reply delivered twice has one effect.
A reply to an unknown request, or to another supplier's, is refused (``UnknownRequest``: parked
from the queue, 422 over HTTP); one to an earlier round of the request (before the supplier
rejected documents and got new ones) is recorded as ``superseded``; the domain decides the rest
(``late``, ``duplicate``, ``ignored``, or ``applied`` with the events to emit). A certificate PDF
is checked by its content before anything, and stored encrypted (``coc_shared.documents``) when
the reply is applied.

The queue's consumer (``ReplyConsumer``) takes only replies whose validated ``user_id`` is the
user of the supplier the reply names and whose routing key is that supplier's code; anything else
is parked with the reason (``ForgedReply``, ``InvalidReply``, ``UnknownRequest``), then acked.
"""

from __future__ import annotations

import base64
import json
import threading
import traceback
import uuid
from dataclasses import dataclass

import kombu
from marshmallow import ValidationError

from coc_shared.broker_users import broker_user, supplier_account
from coc_shared.bus import wait_for_connection
from coc_shared.db import is_infrastructure_error
from coc_shared.documents import (
    Cipher,
    DocumentRefused,
    check_pdf,
    new_storage_key,
    open_store,
    sha256_hex,
)
from coc_shared.envelope import utcnow
from coc_shared.guards import loads
from coc_shared.logging import get_logger
from coc_shared.retry import Stopped, call_with_backoff

from ..adapters.carriers import tracking_url_of
from ..adapters.repository import HistoryRepository, ReplyRepository, SupplierRequestRepository
from ..contract import load_reply

log = get_logger(__name__)


class UnknownRequest(Exception):
    """The reply names a request this supplier was never sent."""


class InvalidReply(Exception):
    """The reply's body is not a reply of the contract (``fields``: messages per field)."""

    def __init__(self, message: str, fields: dict):
        super().__init__(message)
        self.fields = fields


class ForgedReply(Exception):
    """The reply was not published by the user of the supplier it names."""


class NotConfigured(Exception):
    """Storing a certificate needs the certificates' key."""


@dataclass(frozen=True)
class ReplyResult:
    status: str  # applied | late | duplicate | ignored | superseded
    order_id: str
    events: tuple[str, ...] = ()


def certificate_of(reply: dict) -> bytes | None:
    """The certificate PDF of an ``issued`` reply, checked by its content; InvalidReply when it is
    not a sound PDF."""
    certificate = reply.get("certificate")
    if not certificate:
        return None
    data = base64.b64decode(certificate["data_base64"])
    try:
        check_pdf(data)
    except DocumentRefused as exc:
        raise InvalidReply(str(exc), {"certificate": [str(exc)]}) from None
    return data


class CertificateStore:
    """The gateway's store of certificates, opened at first use."""

    def __init__(self, runtime):
        self.runtime = runtime
        self._storage = None

    def put(self, certificate_id: str, data: bytes) -> str:
        settings = self.runtime.config.store
        if settings.key is None:
            raise NotConfigured("SUPPLIER_GATEWAY_CERTIFICATE_KEY is not set")
        key = new_storage_key("certificates")
        self.storage.put(key, Cipher(settings.key).encrypt(data, certificate_id))
        return key

    def get(self, certificate_id: str, key: str) -> bytes:
        settings = self.runtime.config.store
        if settings.key is None:
            raise NotConfigured("SUPPLIER_GATEWAY_CERTIFICATE_KEY is not set")
        return Cipher(settings.key).decrypt(self.storage.get(key), certificate_id)

    @property
    def storage(self):
        if self._storage is None:
            self._storage = open_store(self.runtime.config.store, self.runtime.settings.embedded)
        return self._storage


def store_of(runtime) -> CertificateStore:
    store = getattr(runtime, "certificate_store", None)
    if store is None:
        store = runtime.certificate_store = CertificateStore(runtime)
    return store


def receive_reply(runtime, body: dict, via: str, actor: str | None = None) -> ReplyResult:
    """Apply one reply (``body``: as the contract says). Raises InvalidReply, UnknownRequest or
    NotConfigured."""
    try:
        reply = load_reply(body)
    except ValidationError as exc:
        raise InvalidReply("the reply is not valid", exc.normalized_messages()) from None
    certificate = certificate_of(reply)
    directory = runtime.config.directory
    with runtime.unit_of_work() as uow:
        requests = SupplierRequestRepository(uow)
        request, round_ = requests.of_request_id(reply["request_id"])
        if request is None or request.supplier != reply["supplier"]:
            raise UnknownRequest(
                f"no request {reply['request_id']!r} was sent to {reply['supplier']!r}"
            )
        uow.correlation_id = request.order_id
        replies = ReplyRepository(uow)
        if not replies.claim(
            reply["reply_id"],
            reply["request_id"],
            request.order_id,
            reply["supplier"],
            reply["kind"],
            via,
        ):
            return ReplyResult("duplicate", request.order_id)
        now = utcnow()
        history = HistoryRepository(uow)
        who = actor or reply["supplier"]
        if round_ != request.round:
            outcome_status, events = "superseded", ()
        else:
            outcome = _apply(runtime, request, reply, certificate, now, directory)
            outcome_status, events = outcome.result, outcome.events
            if outcome.applied:
                requests.save(request)
                for event_type in events:
                    uow.emit(
                        event_type,
                        _event_data(event_type, request, reply),
                        subject=request.order_id,
                        correlation_id=request.order_id,
                    )
        replies.outcome(reply["reply_id"], outcome_status)
        history.add(
            request,
            f"reply_{reply['kind']}",
            {
                "reply_id": reply["reply_id"],
                "via": via,
                "outcome": outcome_status,
                **{k: reply[k] for k in ("reason", "documents_to_redo") if k in reply},
            },
            actor=who,
            at=now,
        )
        uow.commit()
    log.info(
        "supplier_reply.received",
        order_id=request.order_id,
        supplier=reply["supplier"],
        kind=reply["kind"],
        via=via,
        outcome=outcome_status,
        emitted=list(events) or None,
    )
    return ReplyResult(outcome_status, request.order_id, tuple(events))


def _apply(runtime, request, reply, certificate, now, directory):
    kind = reply["kind"]
    if kind == "accepted":
        return request.accepted(now)
    if kind == "rejected":
        return request.rejected(now)
    if kind == "issued":
        certificate_id = str(uuid.uuid4())
        outcome = request.issued(now, certificate_id, original_posted=certificate is None)
        if outcome.applied and certificate is not None:
            request.certificate_storage_key = store_of(runtime).put(certificate_id, certificate)
            request.certificate_sha256 = sha256_hex(certificate)
            request.certificate_size = len(certificate)
        return outcome
    # shipped: the supplier shipped the certificate to the customer itself
    return request.shipped(
        now,
        "supplier",
        reply["carrier"],
        reply["tracking_number"],
        tracking_url_of(reply["carrier"], reply["tracking_number"]),
        request.certificate_id or str(uuid.uuid4()),
    )


def _event_data(event_type: str, request, reply: dict) -> dict:
    if event_type == "supplier.request_accepted":
        return {
            "order_id": request.order_id,
            "supplier": request.supplier,
            "supplier_request_id": request.request_id,
            "accepted_at": request.accepted_at.isoformat(),
        }
    if event_type == "documents.rejected_by_supplier":
        return {
            "order_id": request.order_id,
            "supplier": request.supplier,
            "reason": reply.get("reason", ""),
            "documents_requested": list(reply.get("documents_to_redo") or []),
        }
    if event_type == "certificate.received":
        return {
            "order_id": request.order_id,
            "supplier": request.supplier,
            "certificate_document_id": request.certificate_id,
            "original_posted": request.original_posted,
        }
    return shipped_data(request)


def shipped_data(request) -> dict:
    return {
        "order_id": request.order_id,
        "carrier": request.carrier,
        "tracking_number": request.tracking_number,
        "tracking_url": request.tracking_url,
        "shipped_by": request.shipped_by,
    }


class ReplyConsumer:
    """Consumes the gateway's replies queue: each reply checked, applied and acked after its
    commit; a bad one parked with the reason, then acked."""

    def __init__(self, runtime):
        self.runtime = runtime
        self.broker = runtime.broker
        self.queue_name = self.broker.replies_queue_name()
        self.ready = threading.Event()

    def run(self, stop: threading.Event) -> None:
        try:
            call_with_backoff(lambda: self._consume(stop), stop=stop)
        except Stopped:
            pass

    def _consume(self, stop: threading.Event) -> None:
        conn = wait_for_connection(self.broker, stop, what="replies")
        try:
            channel = conn.channel()
            directory = self.runtime.config.directory
            self.broker.declare_suppliers(channel, directory.codes_of("amqp"), directory.codes)
            queue = self.broker.replies_queue(directory.codes)
            consumer = kombu.Consumer(
                channel,
                queues=[queue],
                on_message=self._on_message,
                accept=None,
                no_ack=False,
                prefetch_count=50,
            )
            consumer.consume()
            self.ready.set()
            log.info("replies.consumer_started", queue=self.queue_name)
            while not stop.is_set():
                try:
                    conn.drain_events(timeout=0.5)
                except TimeoutError:
                    conn.heartbeat_check()
        finally:
            self.ready.clear()
            try:
                conn.release()
            except Exception:
                pass

    def _on_message(self, message: kombu.Message) -> None:
        try:
            self.handle(message)
        except Exception as exc:
            if is_infrastructure_error(exc) or isinstance(exc, NotConfigured):
                log.warning("replies.retry_later", error=str(exc).splitlines()[0][:300])
                message.requeue()
                return
            self._park(message, exc)
        message.ack()

    def handle(self, message: kombu.Message) -> ReplyResult:
        body = message.body if isinstance(message.body, bytes) else str(message.body).encode()
        routing_key = message.delivery_info.get("routing_key") or ""
        user = message.properties.get("user_id")
        if not self.broker.memory and user != broker_user(
            self.broker.prefix, supplier_account(routing_key)
        ):
            raise ForgedReply(
                f"a reply for {routing_key!r} published by broker user {user!r}, not by "
                f"{broker_user(self.broker.prefix, supplier_account(routing_key))!r}"
            )
        try:
            reply = loads(body)
        except ValueError as exc:
            raise InvalidReply("the body is not JSON", {"body": [str(exc)]}) from None
        named = reply.get("supplier") if isinstance(reply, dict) else None
        if named != routing_key:
            raise ForgedReply(
                f"a reply naming supplier {named!r} came with routing key {routing_key!r}"
            )
        return receive_reply(self.runtime, reply, "amqp")

    def _park(self, message: kombu.Message, exc: Exception) -> None:
        now = utcnow()
        reason = str(exc)
        if isinstance(exc, InvalidReply):
            reason = f"{exc}: {json.dumps(exc.fields, ensure_ascii=False)[:1500]}"
        props = dict(message.properties or {})
        props.pop("delivery_info", None)
        props.pop("application_headers", None)
        body = message.body if isinstance(message.body, bytes) else str(message.body).encode()
        parked = self.runtime.parking.park(
            service=self.runtime.definition.name,
            queue=self.queue_name,
            routing_key=message.delivery_info.get("routing_key") or "",
            body=body,
            headers=dict(message.headers or {}),
            properties=props,
            error_type=type(exc).__name__,
            error_message=reason,
            stack_trace="".join(traceback.format_exception(exc)),
            attempts=1,
            first_failed_at=now,
            last_failed_at=now,
            event_id=props.get("message_id"),
            event_type="supplier.reply",
        )
        log.error(
            "supplier_reply.parked",
            parked_id=parked,
            error_type=type(exc).__name__,
            error=reason[:500],
            routing_key=message.delivery_info.get("routing_key"),
        )
