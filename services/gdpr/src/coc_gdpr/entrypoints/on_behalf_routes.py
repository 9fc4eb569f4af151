"""Staff open a GDPR request (deactivation, export, correction) on behalf of a customer who wrote
or called, recorded with the channel and who verified the person, and how."""

from __future__ import annotations

from dataclasses import asdict

from flask import g
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from coc_shared.http import current_runtime, staff_required
from coc_shared.openapi import NOT_BLANK, STAFF_SECURITY, errors

from ..domain.on_behalf import CHANNELS, KINDS, MAX_TEXT
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
        metadata={"description": "where the summary (deactivation) or the link (export) goes"},
    )
    first_name = fields.String(load_default=None, validate=validate.Length(max=200))
    correction = _text("correction")
    note = _text("note")

    @validates_schema
    def _consistent(self, data, **kwargs):
        if not (data.get("account_id") or data.get("order_id")):
            raise ValidationError("the customer's account_id or a guest's order_id", "account_id")
        if data["kind"] == "export" and not data.get("email"):
            raise ValidationError("the export's link is mailed: an address is required", "email")
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
    return asdict(on_behalf_uc.open_on_behalf(current_runtime(), g.staff, body))
