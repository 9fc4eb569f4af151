"""Data exports (GDPR 15 and 20): the customer's download through the mailed link (the export's
id, and its token in the ``X-Export-Token`` header, never in the URL), and the staff view of a
subject's export requests (deadline, state, downloads)."""

from __future__ import annotations

from flask import Response, jsonify, request
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from coc_shared.http import current_runtime, staff_required
from coc_shared.openapi import STAFF_SECURITY, ErrorSchema, errors

from ..service_layer import exports as exports_uc

EXPORT_TOKEN = [{"exportToken": []}]


class ExportDownloadSchema(Schema):
    part = fields.String(required=True)
    downloaded_at = fields.DateTime(required=True)


class ExportRequestSchema(Schema):
    request_id = fields.String(required=True)
    account_id = fields.String(allow_none=True)
    order_id = fields.String(allow_none=True)
    requested_at = fields.DateTime(required=True)
    due_by = fields.DateTime(required=True, metadata={"description": "GDPR 12(3): one month"})
    status = fields.String(required=True, metadata={"description": "pending, ready or expired"})
    ready_at = fields.DateTime(allow_none=True)
    expires_at = fields.DateTime(allow_none=True)
    waiting_for = fields.List(fields.String(), required=True)
    downloads = fields.List(fields.Nested(ExportDownloadSchema), required=True)


class SubjectExportsSchema(Schema):
    subject = fields.String(required=True)
    items = fields.List(fields.Nested(ExportRequestSchema), required=True)


public = Blueprint(
    "gdpr_exports",
    __name__,
    url_prefix="/v1/exports",
    description="A customer's export of their personal data, through the mailed link",
)
staff = Blueprint(
    "gdpr_export_requests",
    __name__,
    url_prefix="/v1/staff",
    description="Export requests (support staff)",
)


def _answer(export: exports_uc.Download) -> Response:
    return Response(
        export.body,
        status=200,
        content_type=export.content_type,
        headers={"Content-Disposition": f'attachment; filename="{export.filename}"'},
    )


@public.route("/<request_id>", methods=["GET"])
@public.doc(security=EXPORT_TOKEN, summary="The export's JSON document (the link's token)")
@public.response(200, description="the JSON document of the subject's personal data")
@public.alt_response(410, schema=ErrorSchema, description="The link has expired")
@errors(public, 403, 404, 503)
def export_document(request_id: str):
    token = request.headers.get("X-Export-Token")
    return _answer(exports_uc.download(current_runtime(), request_id, token, "document"))


@public.route("/<request_id>/summary", methods=["GET"])
@public.doc(security=EXPORT_TOKEN, summary="The export's readable summary (plain text)")
@public.response(200, description="purposes, recipients and retention of each category")
@public.alt_response(410, schema=ErrorSchema, description="The link has expired")
@errors(public, 403, 404, 503)
def export_summary(request_id: str):
    token = request.headers.get("X-Export-Token")
    return _answer(exports_uc.download(current_runtime(), request_id, token, "summary"))


@staff.route("/export-requests/<subject>", methods=["GET"])
@staff.doc(security=STAFF_SECURITY, summary="An account's (or guest order's) export requests")
@staff.response(200, SubjectExportsSchema)
@errors(staff, 401, 403, 503)
@staff_required()
def export_requests(subject: str):
    items = exports_uc.exports_of_subject(current_runtime(), subject)
    return jsonify({"subject": subject, "items": items})
