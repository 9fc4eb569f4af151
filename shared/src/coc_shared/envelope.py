"""The event envelope every message on `coc.events` carries.

Wire form (JSON)::

    {"id": "<uuid, also the AMQP message_id>", "type": "order.placed", "version": 1,
     "occurred_at": "2026-11-27T10:00:00.000000+00:00", "producer": "orders",
     "correlation_id": "<uuid shared by one order's story>", "causation_id": "<id of the cause>",
     "subject": "<order id>", "data": {...}, "personal": {...}}

Personal data (names, e-mail, phone, addresses, document references) is only in ``personal``,
and on the wire it is sealed (``keystore``: AES-256-GCM with the data key of the event's subject,
the event id as associated data)::

    "personal": {"sealed": "A256GCM", "kid": "<subject whose key seals it>", "ct": "<base64>"}

or, once the subject is erased, ``{"erased": true}``. The unit of work seals it as the event is
written to the outbox and the consumer opens it before validation and handler: in the process an
``Event`` holds the clear part (``personal``), the wire form (``sealed``) and whether the subject
was erased (``personal_erased``: ``personal`` is then None).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate


class EnvelopeSchema(Schema):
    class Meta:
        unknown = EXCLUDE  # consumers tolerate unknown fields

    id = fields.UUID(required=True)
    type = fields.String(required=True, validate=validate.Regexp(r"^[a-z_]+(\.[a-z_]+)+$"))
    version = fields.Integer(required=True, validate=validate.Range(min=1))
    occurred_at = fields.AwareDateTime(required=True, format="iso")
    producer = fields.String(required=True, validate=validate.Length(min=1))
    correlation_id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    causation_id = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=200)
    )
    subject = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    data = fields.Dict(load_default=dict)
    personal = fields.Dict(load_default=None, allow_none=True)  # clear, sealed or erased


_envelope_schema = EnvelopeSchema()


class UndecodableMessage(Exception):
    """The body is not a JSON event envelope: retrying cannot help."""


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Event:
    type: str
    data: dict
    producer: str
    correlation_id: str
    subject: str | None = None
    causation_id: str | None = None
    personal: dict | None = None
    version: int = 1
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    occurred_at: datetime = field(default_factory=utcnow)
    # the personal part's wire form when sealed (or the erased marker); set by the key store
    sealed: dict | None = field(default=None, repr=False, compare=False)
    # the subject's key is destroyed: the personal part is gone for good (``personal`` is None)
    personal_erased: bool = field(default=False, compare=False)
    # the W3C trace context it was emitted in (``tracing``): kept in the outbox row and sent in the
    # message's headers, never in the body
    traceparent: str | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        body = {
            "id": self.id,
            "type": self.type,
            "version": self.version,
            "occurred_at": self.occurred_at.astimezone(UTC).isoformat(),
            "producer": self.producer,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "subject": self.subject,
            "data": self.data,
        }
        if self.sealed is not None:
            body["personal"] = self.sealed
        elif self.personal:
            body["personal"] = self.personal
        return body

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, body: bytes | str) -> Event:
        try:
            raw = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise UndecodableMessage(f"body is not JSON: {exc}") from exc
        if not isinstance(raw, dict):
            raise UndecodableMessage("body is not a JSON object")
        try:
            loaded = _envelope_schema.load(raw)
        except ValidationError as exc:
            raise UndecodableMessage(f"invalid envelope: {exc.messages}") from exc
        personal = loaded["personal"]
        sealed = None
        if isinstance(personal, dict) and (
            personal.get("sealed") is not None or personal.get("erased") is True
        ):
            sealed, personal = personal, None  # opened by the consumer (``keystore``)
        return cls(
            id=str(loaded["id"]),
            type=loaded["type"],
            version=loaded["version"],
            occurred_at=loaded["occurred_at"],
            producer=loaded["producer"],
            correlation_id=loaded["correlation_id"],
            causation_id=loaded["causation_id"],
            subject=loaded["subject"],
            data=loaded["data"],
            personal=personal,
            sealed=sealed,
        )
