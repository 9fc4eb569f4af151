"""The contract with the suppliers' integrations: the messages on ``coc.suppliers`` (requests) and
``coc.supplier-replies`` (replies, also the body of the signed HTTP callback and of the HTTP
channel's POST), as marshmallow schemas — the gateway builds and checks them with these, and the
AsyncAPI document (docs/supplier-asyncapi.json) is generated from them::

    python -m coc_supplier_gateway.contract > docs/supplier-asyncapi.json

(``tests/test_supplier_contract.py`` keeps the two equal.) The guide for integrators is
docs/supplier-integration.md.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates_schema,
)

from .domain.model import REPLY_KINDS

MAX_CERTIFICATE_BYTES = 10 * 1024 * 1024
SIGNATURE_HEADER = "X-COC-Signature"
TIMESTAMP_HEADER = "X-COC-Timestamp"
SUPPLIER_HEADER = "X-COC-Supplier"
REPLY_WINDOW_SECONDS = 300  # a signed HTTP call's timestamp is accepted 5 minutes either way
CODE = validate.Regexp(r"^[a-z0-9][a-z0-9-]{0,40}$")


class Tolerant(Schema):
    """Requests: an integration must accept (and ignore) fields it does not know."""

    class Meta:
        ordered = True


class Vehicle(Tolerant):
    vin = fields.String(metadata={"description": "17 characters (when the supplier needs it)"})
    brand = fields.String(metadata={"description": "the brand as sold (when needed)"})
    first_registration_date = fields.Date(metadata={"description": "when needed"})
    extra = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={
            "description": "the brand's extra fields the supplier needs (e.g. BMW's "
            "type_approval_number)"
        },
    )


class Customer(Tolerant):
    first_name = fields.String(required=True)
    last_name = fields.String(required=True)


class Address(Tolerant):
    line1 = fields.String(required=True)
    line2 = fields.String(allow_none=True)
    postal_code = fields.String(required=True)
    city = fields.String(required=True)
    country = fields.String(required=True, metadata={"description": "ISO 3166-1 alpha-2"})


class DocumentLink(Tolerant):
    document_id = fields.String(required=True)
    kind = fields.String(
        required=True,
        metadata={"enum": ["id_card", "registration_certificate", "purchase_invoice", "other"]},
    )
    content_type = fields.String(
        allow_none=True, metadata={"enum": ["application/pdf", "image/jpeg", "image/png"]}
    )
    url = fields.Url(
        required=True,
        metadata={
            "description": "GET it (no credentials: the link is signed for this supplier and "
            "this document); it expires at expires_at, and every download is recorded"
        },
    )
    expires_at = fields.AwareDateTime(required=True)


class SupplierRequestMessage(Tolerant):
    """A request for one order's certificate (body of a message on coc.supplier.<code>, or of the
    HTTP channel's POST). The same request_id may come more than once (a resend, or a duplicate
    after a crash): handle it once."""

    request_id = fields.String(
        required=True,
        metadata={"description": "idempotency key: the same id is the same request"},
    )
    supplier = fields.String(required=True, validate=CODE)
    order_number = fields.String(required=True)
    sent_at = fields.AwareDateTime(required=True)
    reply_by = fields.AwareDateTime(
        required=True, metadata={"description": "the turnaround promised in the directory"}
    )
    resend = fields.Boolean(
        required=True, metadata={"description": "true: sent again by staff, same request"}
    )
    vehicle = fields.Nested(Vehicle, required=True)
    customer = fields.Nested(Customer, metadata={"description": "only if the supplier needs it"})
    shipping_address = fields.Nested(
        Address, metadata={"description": "only for a supplier that ships to the customer"}
    )
    documents = fields.List(fields.Nested(DocumentLink), required=True)
    ships_to_customer = fields.Boolean(
        required=True,
        metadata={"description": "true: ship the paper certificate yourself and reply shipped"},
    )


class Certificate(Schema):
    class Meta:
        unknown = RAISE

    content_type = fields.String(required=True, validate=validate.Equal("application/pdf"))
    data_base64 = fields.String(
        required=True, metadata={"description": "the PDF, base64 (at most 10 MB decoded)"}
    )

    @validates_schema
    def _pdf(self, data, **kwargs):
        try:
            raw = base64.b64decode(data["data_base64"], validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError("Not valid base64.", "data_base64") from None
        if len(raw) > MAX_CERTIFICATE_BYTES:
            raise ValidationError("The certificate is larger than 10 MB.", "data_base64")


class ReplyMessage(Schema):
    """A supplier's reply about one request (body of a message published to coc.supplier-replies
    with the supplier's code as routing key, or of POST /v1/suppliers/{code}/replies)."""

    class Meta:
        unknown = RAISE
        ordered = True

    reply_id = fields.String(
        required=True,
        validate=validate.Length(min=1, max=100),
        metadata={"description": "unique per reply: a reply sent twice has one effect"},
    )
    request_id = fields.String(required=True, validate=validate.Length(min=1, max=36))
    supplier = fields.String(required=True, validate=CODE)
    kind = fields.String(required=True, validate=validate.OneOf(REPLY_KINDS))
    occurred_at = fields.AwareDateTime(required=True)
    reason = fields.String(
        validate=validate.Length(min=1, max=1000), metadata={"description": "rejected: why"}
    )
    documents_to_redo = fields.List(
        fields.String(validate=validate.Length(min=1, max=40)),
        metadata={"description": "rejected: the document kinds the customer must send again"},
    )
    certificate = fields.Nested(Certificate, metadata={"description": "issued: the PDF"})
    original_posted = fields.Boolean(
        metadata={"description": "issued: true when there is no PDF (the original is posted)"}
    )
    carrier = fields.String(
        validate=validate.OneOf(("colissimo", "lettre_suivie", "chronopost")),
        metadata={"description": "shipped: the carrier (La Poste's services)"},
    )
    tracking_number = fields.String(
        validate=validate.Regexp(r"^[A-Za-z0-9]{8,20}$"), metadata={"description": "shipped"}
    )

    @validates_schema
    def _by_kind(self, data, **kwargs):
        kind = data.get("kind")
        needed = {
            "rejected": ("reason", "documents_to_redo"),
            "shipped": ("carrier", "tracking_number"),
        }.get(kind, ())
        missing = {f: ["Missing data for required field."] for f in needed if f not in data}
        if kind == "issued" and ("certificate" in data) == bool(data.get("original_posted")):
            missing["certificate"] = [
                "An issued reply carries the certificate or says original_posted: true."
            ]
        if missing:
            raise ValidationError(missing)


class ReplyAnswer(Schema):
    status = fields.String(
        required=True,
        metadata={"enum": ["applied", "late", "duplicate", "ignored", "superseded"]},
    )


def load_reply(body: dict) -> dict:
    """The reply, loaded; ``ValidationError`` with messages per field otherwise."""
    return REPLY_SCHEMA.load(body)


REPLY_SCHEMA = ReplyMessage()
REQUEST_SCHEMA = SupplierRequestMessage()


# --------------------------------------------------------------------------- AsyncAPI
def json_schemas() -> dict:
    """The JSON Schemas of the messages, converted from the marshmallow schemas by apispec."""
    from apispec import APISpec
    from apispec.ext.marshmallow import MarshmallowPlugin

    spec = APISpec("coc", "1", "3.0.3", plugins=[MarshmallowPlugin()])
    spec.components.schema("SupplierRequest", schema=SupplierRequestMessage)
    spec.components.schema("Reply", schema=ReplyMessage)
    return spec.to_dict()["components"]["schemas"]


def asyncapi() -> dict:
    schemas = json_schemas()
    refs = {name: {"$ref": f"#/components/schemas/{name}"} for name in schemas}
    return {
        "asyncapi": "2.6.0",
        "info": {
            "title": "COC supplier integration",
            "version": "1",
            "description": (
                "Requests for vehicles' Certificates of Conformity sent to the makers' COC "
                "suppliers, and their replies, over RabbitMQ (AMQP 0-9-1). Each supplier "
                "connects as its own user coc-supplier-<code>, reads its queue "
                "coc.supplier.<code> and publishes replies to coc.supplier-replies with its code "
                "as routing key and its user name as user_id. Guide: "
                "docs/supplier-integration.md; the HTTP channel and the HTTP callback: "
                "services/supplier-gateway/openapi.json."
            ),
        },
        "defaultContentType": "application/json",
        "channels": {
            "coc.supplier.{code}": {
                "description": "The supplier's durable quorum queue, bound to the direct exchange "
                "coc.suppliers with routing key {code}. Messages are persistent; message_id is "
                "the request_id; type supplier.request; user_id coc-supplier-gateway. Ack a "
                "message once you have stored the request.",
                "parameters": {"code": {"schema": {"type": "string"}}},
                "bindings": {
                    "amqp": {
                        "is": "queue",
                        "queue": {"name": "coc.supplier.{code}", "durable": True},
                    }
                },
                "subscribe": {
                    "operationId": "receiveRequest",
                    "message": {
                        "name": "SupplierRequest",
                        "contentType": "application/json",
                        "payload": refs["SupplierRequest"],
                    },
                },
            },
            "coc.supplier-replies": {
                "description": "Topic exchange of replies; routing key: your supplier code "
                "(your user may publish no other). Publish persistent messages with "
                "content_type application/json, message_id = reply_id and user_id = your "
                "user name (RabbitMQ checks it), with publisher confirms.",
                "bindings": {
                    "amqp": {
                        "is": "routingKey",
                        "exchange": {
                            "name": "coc.supplier-replies",
                            "type": "topic",
                            "durable": True,
                        },
                    }
                },
                "publish": {
                    "operationId": "sendReply",
                    "message": {
                        "name": "Reply",
                        "contentType": "application/json",
                        "payload": refs["Reply"],
                    },
                },
            },
        },
        "components": {"schemas": schemas},
    }


def render() -> str:
    return json.dumps(asyncapi(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
