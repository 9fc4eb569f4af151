"""The bodies and parameters of the supplier-gateway API (its OpenAPI document's schemas)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from coc_shared.openapi import NOT_BLANK

from ..contract import SIGNATURE_HEADER, TIMESTAMP_HEADER, ReplyMessage
from ..domain.model import STATUSES

SIGNATURE_PARAMS = [
    {
        "in": "header",
        "name": TIMESTAMP_HEADER,
        "required": True,
        "schema": {"type": "string"},
        "description": "Unix time of the call (seconds)",
    },
    {
        "in": "header",
        "name": SIGNATURE_HEADER,
        "required": True,
        "schema": {"type": "string"},
        "description": "sha256=<hex HMAC-SHA256(key, timestamp + '.' + body)>",
    },
]
REPLY_BODY = {"required": True, "content": {"application/json": {"schema": ReplyMessage}}}
ORDER_TOKEN_PARAM = {
    "in": "header",
    "name": "X-Order-Token",
    "required": False,
    "schema": {"type": "string"},
}
CERTIFICATE_ANSWER = {
    "description": "The certificate",
    "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
}
LIST_QUERY = [
    {"in": "query", "name": "status", "schema": {"type": "string", "enum": list(STATUSES)}},
    {"in": "query", "name": "supplier", "schema": {"type": "string"}},
    {"in": "query", "name": "overdue", "schema": {"type": "boolean"}},
    {
        "in": "query",
        "name": "limit",
        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
    },
]


class HistorySchema(Schema):
    at = fields.String()
    what = fields.String()
    request_id = fields.String(allow_none=True)
    detail = fields.Dict(allow_none=True)
    actor = fields.String()


class SupplierRequestSchema(Schema):
    order_id = fields.String(required=True)
    order_number = fields.String(allow_none=True)
    brand = fields.String(required=True, allow_none=True)
    status = fields.String(required=True, metadata={"enum": list(STATUSES)})
    missing = fields.List(fields.String(), required=True)
    document_ids = fields.List(fields.String(), required=True)
    supplier = fields.String(allow_none=True)
    request_id = fields.String(allow_none=True)
    round = fields.Integer()
    review_reason = fields.String(allow_none=True)
    sent_at = fields.String(allow_none=True)
    due_at = fields.String(allow_none=True)
    overdue = fields.Boolean()
    accepted_at = fields.String(allow_none=True)
    rejected_at = fields.String(allow_none=True)
    issued_at = fields.String(allow_none=True)
    certificate = fields.Dict(allow_none=True)
    shipment = fields.Dict(allow_none=True)
    delivered_at = fields.String(allow_none=True)
    personal_data_erased = fields.Boolean()
    history = fields.List(fields.Nested(HistorySchema))
    pending_sends = fields.List(fields.Dict())


class SupplierRequestListSchema(Schema):
    items = fields.List(fields.Nested(SupplierRequestSchema), required=True)


class ReasonSchema(Schema):
    reason = fields.String(required=True, validate=[validate.Length(min=3, max=500), NOT_BLANK])


class StaffReplySchema(Schema):
    reason = fields.String(
        required=True,
        validate=[validate.Length(min=3, max=500), NOT_BLANK],
        metadata={"description": "how the reply came (mail, phone) and why it is recorded here"},
    )
    reply = fields.Dict(
        required=True,
        metadata={
            "description": "the reply as the contract says (kind and its fields); reply_id, "
            "request_id and supplier are filled in"
        },
    )


class ShipmentSchema(Schema):
    reason = fields.String(required=True, validate=[validate.Length(min=3, max=500), NOT_BLANK])
    carrier = fields.String(
        required=True, validate=validate.OneOf(("colissimo", "lettre_suivie", "chronopost"))
    )
    tracking_number = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9]{8,20}$"))


class ToShipSchema(Schema):
    items = fields.List(fields.Dict(), required=True)
