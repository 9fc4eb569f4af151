"""What the payments API's OpenAPI document says of its answers and bodies (the views build their
answers themselves; these schemas only document them)."""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields

ORDER_TOKEN_PARAM = {
    "in": "header",
    "name": "X-Order-Token",
    "required": False,
    "schema": {"type": "string"},
    "description": "the access token of an order placed without an account",
}
FILENAME_PARAM = {
    "in": "query",
    "name": "filename",
    "required": False,
    "schema": {"type": "string", "maxLength": 200},
    "description": "the statement file's name, kept with the import",
}
REVIEW_QUERY = [
    {
        "in": "query",
        "name": "status",
        "required": False,
        "schema": {"type": "string", "default": "open"},
        "description": "open (default), resolved; empty for every status",
    },
    {"in": "query", "name": "reason", "required": False, "schema": {"type": "string"}},
    {"in": "query", "name": "order_id", "required": False, "schema": {"type": "string"}},
    {
        "in": "query",
        "name": "limit",
        "required": False,
        "schema": {"type": "integer", "default": 100},
        "description": "at most this many items (1 to 1000)",
    },
]
SYSTEMPAY_BODY = {
    "required": True,
    "content": {
        "application/x-www-form-urlencoded": {
            "schema": {
                "type": "object",
                "properties": {
                    name: {"type": "string"}
                    for name in (
                        "vads_ctx_mode",
                        "vads_site_id",
                        "vads_order_id",
                        "vads_trans_uuid",
                        "vads_trans_status",
                        "vads_amount",
                        "vads_currency",
                        "signature",
                    )
                },
                "additionalProperties": {"type": "string"},
            }
        }
    },
}
JSON_NOTIFICATION_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {"type": "object", "additionalProperties": True}}},
}
STATEMENT_BODY = {
    "required": True,
    "description": "an ISO 20022 camt.053 statement (XML), at most 20 MiB",
    "content": {"application/xml": {"schema": {"type": "string"}}},
}


class Open(Schema):
    """An object whose other keys are documented elsewhere (or vary with the method)."""

    class Meta:
        unknown = INCLUDE


class CheckoutSchema(Open):
    order_id = fields.String(required=True)
    method = fields.String(required=True, metadata={"enum": ["card", "paypal", "transfer"]})
    provider = fields.String(required=True)


class CallbackAnswerSchema(Schema):
    status = fields.String(required=True, metadata={"enum": ["received", "duplicate", "ignored"]})
    outcome = fields.String()


class ReviewItemSchema(Open):
    id = fields.Integer(required=True)
    created_at = fields.String(required=True)
    status = fields.String(required=True)
    reason = fields.String(required=True)
    order_id = fields.String(allow_none=True)


class ReviewListSchema(Schema):
    items = fields.List(fields.Nested(ReviewItemSchema), required=True)


class ImportedCreditSchema(Open):
    transaction_id = fields.String(required=True)
    outcome = fields.String(required=True)


class ImportSummarySchema(Schema):
    credits = fields.Integer(required=True)
    confirmed = fields.Integer(required=True)
    review = fields.Integer(required=True)
    duplicate = fields.Integer(required=True)
    already_imported = fields.Integer(required=True)
    ignored = fields.Integer(required=True)
    failed = fields.Integer(required=True)
    items = fields.List(fields.Nested(ImportedCreditSchema), required=True)


class PaymentDueSchema(Schema):
    order_id = fields.String(required=True)
    order_number = fields.String(required=True)
    method = fields.String(required=True)
    amount_cents = fields.Integer(required=True)
    currency = fields.String(required=True)
    status = fields.String(required=True)


# --------------------------------------------------------------------------- billing
ORDER_ID_QUERY = {
    "in": "query",
    "name": "order_id",
    "required": False,
    "schema": {"type": "string"},
}
STATUS_QUERY = {"in": "query", "name": "status", "required": False, "schema": {"type": "string"}}
PERIOD_QUERY = [
    {
        "in": "query",
        "name": name,
        "required": True,
        "schema": {"type": "string", "format": "date"},
        "description": f"{what} day of the period (Paris date, YYYY-MM-DD)",
    }
    for name, what in (("from", "first"), ("to", "last"))
]
REASON_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"reason": {"type": "string", "maxLength": 500}},
                "required": ["reason"],
            }
        }
    },
}
REFUND_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "order_id": {"type": "string"},
                    "reason": {
                        "type": "string",
                        "enum": ["cancelled_after_payment", "duplicate_payment", "supplier_unable"],
                    },
                    "note": {"type": "string", "description": "the staff member's reason"},
                    "amount_cents": {
                        "type": "integer",
                        "minimum": 1,
                        "description": "default: the whole payment",
                    },
                    "provider_transaction_id": {
                        "type": "string",
                        "description": "a duplicate payment's (default: the latest reviewed)",
                    },
                    "iban": {"type": "string", "description": "transfers: the customer's IBAN"},
                    "bic": {"type": "string"},
                    "account_holder": {"type": "string"},
                },
                "required": ["order_id", "reason", "note"],
            }
        }
    },
}


class MoneySchema(Schema):
    amount_cents = fields.Integer(required=True)
    currency = fields.String(required=True)


class DocumentSchema(Schema):
    number = fields.String(required=True)
    kind = fields.String(required=True, metadata={"enum": ["invoice", "credit_note"]})
    issued_at = fields.String(required=True)
    order_id = fields.String(required=True)
    net = fields.Nested(MoneySchema, required=True)
    vat = fields.Nested(MoneySchema, required=True)
    total = fields.Nested(MoneySchema, required=True)
    vat_regime = fields.String(required=True)
    pdf_url = fields.String(required=True)


class DocumentListSchema(Schema):
    order_id = fields.String(allow_none=True)
    items = fields.List(fields.Nested(DocumentSchema), required=True)


class ResentSchema(Schema):
    number = fields.String(required=True)
    event_id = fields.String(required=True)


class ChainReportSchema(Open):
    ok = fields.Boolean(required=True)
    checked = fields.Dict(required=True)
    problems = fields.List(fields.Dict(), required=True)


class RefundSchema(Open):
    id = fields.String(required=True)
    order_id = fields.String(required=True)
    reason = fields.String(required=True)
    status = fields.String(
        required=True, metadata={"enum": ["requested", "file_ready", "completed", "failed"]}
    )
    amount_cents = fields.Integer(required=True)
    credit_note_number = fields.String(allow_none=True)


class RefundListSchema(Schema):
    items = fields.List(fields.Nested(RefundSchema), required=True)


class VatCheckSchema(Open):
    order_id = fields.String(required=True)
    vat_number = fields.String(required=True)
    status = fields.String(required=True)


class VatCheckListSchema(Schema):
    items = fields.List(fields.Nested(VatCheckSchema), required=True)
