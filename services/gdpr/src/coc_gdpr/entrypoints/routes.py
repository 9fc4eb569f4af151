"""HTTP API of the gdpr service besides the common routes (health, readiness, parked messages):
flask-smorest, documented in the OpenAPI document served at ``/openapi.json`` and kept in the
repository (``services/gdpr/openapi.json``).

For now one staff-only read: an account's deactivation requests and their deadlines.
"""

from __future__ import annotations

from flask import Flask, jsonify
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from coc_shared.http import staff_required
from coc_shared.openapi import STAFF_SECURITY, errors, install_api

from ..adapters.repository import DeactivationRequestRepository


class DeactivationRequestSchema(Schema):
    event_id = fields.String(required=True)
    requested_at = fields.DateTime(required=True)
    due_by = fields.DateTime(required=True)
    status = fields.String(required=True)


class AccountDeactivationsSchema(Schema):
    account_id = fields.String(required=True)
    items = fields.List(fields.Nested(DeactivationRequestSchema), required=True)


def register_api(app: Flask, runtime) -> None:
    blp = Blueprint(
        "gdpr_staff",
        __name__,
        url_prefix="/v1/staff",
        description="Account deactivations (support staff)",
    )

    @blp.route("/deactivation-requests/<account_id>", methods=["GET"])
    @blp.doc(security=STAFF_SECURITY, summary="An account's deactivation requests and deadlines")
    @blp.response(200, AccountDeactivationsSchema)
    @errors(blp, 401, 403, 503)
    @staff_required()
    def deactivation_requests(account_id: str):
        with runtime.unit_of_work() as uow:
            requests = DeactivationRequestRepository(uow).for_account(account_id)
        return jsonify(
            {
                "account_id": account_id,
                "items": [
                    {
                        "event_id": r.event_id,
                        "requested_at": r.requested_at.isoformat(),
                        "due_by": r.due_by.isoformat(),
                        "status": r.status,
                    }
                    for r in requests
                ],
            }
        )

    api = install_api(app, "COC gdpr API", __doc__)
    api.register_blueprint(blp)
