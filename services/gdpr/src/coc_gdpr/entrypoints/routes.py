"""HTTP API of the gdpr service besides the common routes (health, readiness, parked messages):
flask-smorest, documented in the OpenAPI document served at ``/openapi.json`` and kept in the
repository (``services/gdpr/openapi.json``).

Staff-only reads: an account's deactivation requests with their deadlines and the services'
reports, and the requests some service has not answered in time. Admins only: the disclosure log
(disclosures of personal data to authorities), append-only.
"""

from __future__ import annotations

from flask import Flask, jsonify
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from coc_shared.http import current_runtime, error_response, staff_required
from coc_shared.openapi import STAFF_SECURITY, errors, install_api

from ..domain.corrections import CorrectionRefused
from ..domain.disclosures import InvalidDisclosure
from ..domain.export import LinkRefused
from ..domain.on_behalf import OnBehalfRefused
from ..service_layer import consents as consents_uc
from ..service_layer import requests as requests_uc
from ..service_layer.exports import ExportNotConfigured
from . import disclosure_routes, export_routes, on_behalf_routes

ANSWERS = {
    InvalidDisclosure: lambda exc: error_response(422, "invalid disclosure", exc.fields),
    LinkRefused: lambda exc: error_response(exc.status, str(exc)),
    ExportNotConfigured: lambda exc: error_response(503, str(exc)),
    OnBehalfRefused: lambda exc: error_response(exc.status, str(exc), exc.fields),
    CorrectionRefused: lambda exc: error_response(exc.status, str(exc)),
}


class ReportSchema(Schema):
    service = fields.String(required=True)
    reported_at = fields.DateTime(required=True)
    erased = fields.List(fields.Dict(), required=True)
    retained = fields.List(fields.Dict(), required=True)


class DeactivationRequestSchema(Schema):
    event_id = fields.String(required=True)
    account_id = fields.String(required=True)
    requested_at = fields.DateTime(required=True)
    due_by = fields.DateTime(required=True, metadata={"description": "GDPR 12(3): one month"})
    status = fields.String(required=True, metadata={"description": "pending or done"})
    reason = fields.String(
        required=True, metadata={"description": "customer_request or inactivity (two years)"}
    )
    completed_at = fields.DateTime(allow_none=True)
    reports = fields.List(fields.Nested(ReportSchema), required=True)
    waiting_for = fields.List(fields.String(), required=True)


class ConsentRecordSchema(Schema):
    consent_id = fields.String(allow_none=True)
    status = fields.String(required=True, metadata={"description": "given or withdrawn"})
    purpose = fields.String(required=True)
    channel = fields.String(required=True)
    text_version = fields.String(allow_none=True)
    at = fields.DateTime(required=True)
    order_id = fields.String(allow_none=True)
    recorded_at = fields.DateTime(required=True)


class AccountConsentsSchema(Schema):
    account_id = fields.String(required=True)
    items = fields.List(fields.Nested(ConsentRecordSchema), required=True)


class LateRequestsSchema(Schema):
    items = fields.List(fields.Nested(DeactivationRequestSchema), required=True)


class AccountDeactivationsSchema(Schema):
    account_id = fields.String(required=True)
    items = fields.List(fields.Nested(DeactivationRequestSchema), required=True)


blp = Blueprint(
    "gdpr_staff",
    __name__,
    url_prefix="/v1/staff",
    description="Account deactivations (support staff)",
)


def register_api(app: Flask, runtime) -> None:
    """The gdpr routes on ``app`` (the views reach ``runtime`` with ``current_runtime()``)."""
    for refusal, answer in ANSWERS.items():
        app.register_error_handler(refusal, answer)
    api = install_api(app, "COC gdpr API", __doc__)
    api.register_blueprint(blp)
    api.register_blueprint(disclosure_routes.blp)
    api.spec.components.security_scheme(
        "exportToken", {"type": "apiKey", "in": "header", "name": "X-Export-Token"}
    )
    api.register_blueprint(export_routes.public)
    api.register_blueprint(export_routes.staff)
    api.register_blueprint(on_behalf_routes.blp)


@blp.route("/deactivation-requests/<account_id>", methods=["GET"])
@blp.doc(security=STAFF_SECURITY, summary="An account's deactivation requests and deadlines")
@blp.response(200, AccountDeactivationsSchema)
@errors(blp, 401, 403, 503)
@staff_required()
def deactivation_requests(account_id: str):
    items = requests_uc.requests_of_account(current_runtime(), account_id)
    return jsonify({"account_id": account_id, "items": [i.as_json() for i in items]})


@blp.route("/deactivation-requests/late", methods=["GET"])
@blp.doc(
    security=STAFF_SECURITY,
    summary="Pending requests that a service has not reported on in time",
)
@blp.response(200, LateRequestsSchema)
@errors(blp, 401, 403, 503)
@staff_required()
def late_requests():
    items = requests_uc.late_requests(current_runtime())
    return jsonify({"items": [i.as_json() for i in items]})


@blp.route("/consents/<account_id>", methods=["GET"])
@blp.doc(security=STAFF_SECURITY, summary="An account's consent ledger (given and withdrawn)")
@blp.response(200, AccountConsentsSchema)
@errors(blp, 401, 403, 503)
@staff_required()
def account_consents(account_id: str):
    items = consents_uc.consents_of_account(current_runtime(), account_id)
    return {"account_id": account_id, "items": items}
