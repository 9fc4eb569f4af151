"""HTTP routes of the gdpr service besides the common ones (health, readiness, parked messages).

For now one staff-only read: an account's deactivation requests and their deadlines.
"""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify

from coc_shared.http import staff_required

from ..adapters.repository import DeactivationRequestRepository


def register_api(app: Flask, runtime) -> None:
    bp = Blueprint("gdpr_staff", __name__, url_prefix="/v1/staff")

    @bp.get("/deactivation-requests/<account_id>")
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

    app.register_blueprint(bp)
