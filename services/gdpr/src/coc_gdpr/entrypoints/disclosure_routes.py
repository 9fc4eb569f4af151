"""The disclosure log's routes (admins only; a support token gets 403): record a disclosure of
personal data to an authority, list them. Append-only: no route changes or deletes one."""

from __future__ import annotations

from dataclasses import asdict

from flask import g
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from coc_shared.http import current_runtime, staff_required
from coc_shared.openapi import NOT_BLANK, STAFF_SECURITY, errors

from ..domain.disclosures import MAX_TEXT
from ..service_layer import disclosures as disclosures_uc

ADMIN = ("admin",)


def _text(name: str, required: bool = True, **kwargs):
    checks = [validate.Length(max=MAX_TEXT[name])] + ([NOT_BLANK] if required else [])
    return fields.String(required=required, validate=validate.And(*checks), **kwargs)


class DisclosureInSchema(Schema):
    authority = _text(
        "authority", metadata={"description": "who asked, e.g. Tribunal judiciaire de Lyon"}
    )
    legal_basis = _text(
        "legal_basis",
        metadata={"description": "e.g. judicial requisition (art. 60-1 code de procédure pénale)"},
    )
    reference = _text("reference", metadata={"description": "the authority's reference"})
    categories = fields.List(
        fields.String(validate=validate.Length(max=50)),
        required=True,
        validate=validate.Length(min=1, max=20),
        metadata={"description": "categories of the retention schedule disclosed"},
    )
    disclosed_on = fields.Date(required=True, metadata={"description": "not in the future"})
    subject = _text(
        "subject",
        required=False,
        load_default=None,
        allow_none=True,
        metadata={"description": "the account or order concerned"},
    )
    note = _text("note", required=False, load_default="")


class DisclosureSchema(Schema):
    id = fields.String(required=True)
    authority = fields.String(required=True)
    legal_basis = fields.String(required=True)
    reference = fields.String(required=True)
    categories = fields.List(fields.String(), required=True)
    disclosed_on = fields.Date(required=True)
    staff = fields.String(required=True)
    staff_role = fields.String(required=True)
    recorded_at = fields.DateTime(required=True)
    subject = fields.String(allow_none=True)
    note = fields.String()


class DisclosureQuerySchema(Schema):
    subject = fields.String(validate=validate.Length(max=200))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))


class DisclosuresSchema(Schema):
    items = fields.List(fields.Nested(DisclosureSchema), required=True)


blp = Blueprint(
    "gdpr_disclosures",
    __name__,
    url_prefix="/v1/staff",
    description="The disclosure log: disclosures of personal data to authorities (admins)",
)


@blp.route("/disclosures", methods=["POST"])
@blp.doc(security=STAFF_SECURITY, summary="Record a disclosure to an authority (admins)")
@blp.arguments(DisclosureInSchema)
@blp.response(201, DisclosureSchema)
@errors(blp, 401, 403, 422, 503)
@staff_required(ADMIN)
def record_disclosure(body):
    return asdict(disclosures_uc.record_disclosure(current_runtime(), g.staff, body))


@blp.route("/disclosures", methods=["GET"])
@blp.doc(security=STAFF_SECURITY, summary="The disclosures recorded, latest first (admins)")
@blp.arguments(DisclosureQuerySchema, location="query")
@blp.response(200, DisclosuresSchema)
@errors(blp, 401, 403, 422, 503)
@staff_required(ADMIN)
def list_disclosures(query):
    items = disclosures_uc.list_disclosures(current_runtime(), query.get("subject"), query["limit"])
    return {"items": [asdict(d) for d in items]}
