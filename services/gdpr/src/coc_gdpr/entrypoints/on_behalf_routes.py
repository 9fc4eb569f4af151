"""Staff open a GDPR request (deactivation, export, correction) on behalf of a customer who wrote
or called, recorded with the channel and who verified the person, and how; and work through the
correction requests (the list with their deadlines, "done")."""

from __future__ import annotations

from dataclasses import asdict

from flask import g
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from coc_shared.http import current_runtime, staff_required
from coc_shared.openapi import NOT_BLANK, STAFF_SECURITY, errors

from ..domain.corrections import DONE, MAX_DONE_TEXT, OPEN
from ..domain.on_behalf import CHANNELS, KINDS, MAX_TEXT
from ..service_layer import corrections as corrections_uc
from ..service_layer import on_behalf as on_behalf_uc


def _text(name: str, required: bool = False):
    checks = [validate.Length(max=MAX_TEXT[name])] + ([NOT_BLANK] if required else [])
    default = {} if required else {"load_default": ""}
    return fields.String(required=required, validate=validate.And(*checks), **default)


class OnBehalfInSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    account_id = fields.String(load_default=None, validate=validate.Length(max=200))
    order_id = fields.String(
        load_default=None,
        validate=validate.Length(max=200),
        metadata={"description": "a guest's order (no account), or the order written about"},
    )
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    verified_by = fields.String(
        load_default=None,
        validate=validate.Length(max=200),
        metadata={"description": "the staff member who verified the person (default: the caller)"},
    )
    verification = _text("verification", required=True)
    email = fields.Email(
        load_default=None,
        metadata={
            "description": "where the summary goes (deactivation); an export's link goes to the "
            "address on file (the account's, or a guest order's): another address only from an "
            "admin, with address_reason (a support token gets 403)"
        },
    )
    first_name = fields.String(load_default=None, validate=validate.Length(max=200))
    address_reason = _text("address_reason")
    correction = _text("correction")
    note = _text("note")

    @validates_schema
    def _consistent(self, data, **kwargs):
        if not (data.get("account_id") or data.get("order_id")):
            raise ValidationError("the customer's account_id or a guest's order_id", "account_id")
        if data["kind"] == "correction" and not (data.get("correction") or "").strip():
            raise ValidationError("what is to be corrected", "correction")


class OnBehalfSchema(Schema):
    kind = fields.String(required=True)
    request_id = fields.String(required=True)
    joined = fields.Boolean(
        required=True, metadata={"description": "a pending request of the subject absorbed it"}
    )
    account_id = fields.String(allow_none=True)
    order_id = fields.String(allow_none=True)
    channel = fields.String(required=True)
    verified_by = fields.String(required=True)
    verification = fields.String(required=True)
    opened_by = fields.String(required=True)
    opened_at = fields.DateTime(required=True)
    correction = fields.String()
    note = fields.String()
    address = fields.String(
        allow_none=True,
        metadata={"description": "an export's: on_file, or given_by_admin (with its reason)"},
    )
    address_reason = fields.String()


class CorrectionRequestSchema(Schema):
    request_id = fields.String(required=True)
    account_id = fields.String(allow_none=True)
    order_id = fields.String(allow_none=True)
    channel = fields.String(required=True)
    verified_by = fields.String(required=True)
    verification = fields.String(required=True)
    correction = fields.String(required=True, metadata={"description": "what is to be corrected"})
    note = fields.String(required=True)
    opened_by = fields.String(required=True)
    requested_at = fields.DateTime(required=True)
    due_by = fields.DateTime(required=True, metadata={"description": "GDPR 12(3): one month"})
    late = fields.Boolean(
        required=True, metadata={"description": "open past its deadline, or done after it"}
    )
    status = fields.String(required=True, metadata={"description": "open or done"})
    done_at = fields.DateTime(allow_none=True)
    done_by = fields.String(allow_none=True)
    changed = fields.String(allow_none=True, metadata={"description": "what was changed"})


class CorrectionListSchema(Schema):
    items = fields.List(fields.Nested(CorrectionRequestSchema), required=True)


class CorrectionQuerySchema(Schema):
    status = fields.String(load_default=OPEN, validate=validate.OneOf((OPEN, DONE, "all")))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))


class CorrectionDoneSchema(Schema):
    changed = fields.String(
        required=True,
        validate=validate.And(validate.Length(max=MAX_DONE_TEXT), NOT_BLANK),
        metadata={"description": "what was changed, and where"},
    )


blp = Blueprint(
    "gdpr_on_behalf",
    __name__,
    url_prefix="/v1/staff",
    description="GDPR requests opened by staff on behalf of a customer who wrote or called",
)


@blp.route("/requests-on-behalf", methods=["POST"])
@blp.doc(security=STAFF_SECURITY, summary="Open a deactivation, export or correction request")
@blp.arguments(OnBehalfInSchema)
@blp.response(201, OnBehalfSchema)
@errors(blp, 401, 403, 422, 503)
@staff_required()
def open_on_behalf(body):
    opener = on_behalf_uc.OPEN_BY_KIND[body["kind"]]
    return asdict(opener(current_runtime(), g.staff, body))


def _correction(view) -> dict:
    return {**asdict(view.request), "due_by": view.request.due_by, "late": view.late}


@blp.route("/correction-requests", methods=["GET"])
@blp.doc(
    security=STAFF_SECURITY,
    summary="Correction requests, oldest deadline first (open ones by default; late flagged)",
)
@blp.arguments(CorrectionQuerySchema, location="query")
@blp.response(200, CorrectionListSchema)
@errors(blp, 401, 403, 422)
@staff_required()
def correction_requests(query):
    status = None if query["status"] == "all" else query["status"]
    views = corrections_uc.correction_requests(current_runtime(), status, query["limit"])
    return {"items": [_correction(v) for v in views]}


@blp.route("/correction-requests/<request_id>/done", methods=["POST"])
@blp.doc(security=STAFF_SECURITY, summary="Mark a correction request done: what was changed")
@blp.arguments(CorrectionDoneSchema)
@blp.response(200, CorrectionRequestSchema)
@errors(blp, 401, 403, 404, 409, 422)
@staff_required()
def correction_done(body, request_id):
    done = corrections_uc.mark_done(current_runtime(), g.staff, request_id, body["changed"])
    return _correction(done)
