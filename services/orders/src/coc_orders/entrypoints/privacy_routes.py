"""The customer's data-protection requests carried out by the gdpr service: a copy of their
personal data (GDPR 15 and 20), mailed as a link once every service has contributed; for an
account (bearer token), or for a guest's order (its access token in X-Order-Token)."""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from ..service_layer import privacy as privacy_uc
from .common import (
    customer_account,
    errors,
    json_response,
    order_credentials,
    plain_json,
    refuse_nul_characters,
)
from .context import orders_app

blp = Blueprint(
    "privacy",
    __name__,
    url_prefix="/v1",
    description="Data-protection requests (the gdpr service carries them out)",
)
blp.before_request(refuse_nul_characters)


class DeactivationRequestedSchema(Schema):
    account_id = fields.String(metadata={"description": "the owner's request: its account"})
    order_id = fields.String(metadata={"description": "a guest's request: the order erased"})
    requested_at = fields.DateTime(required=True)


class ExportRequestedSchema(Schema):
    account_id = fields.String(required=True, allow_none=True)
    order_id = fields.String(required=True, allow_none=True)
    requested_at = fields.DateTime(required=True)


@blp.route("/accounts/me/export", methods=["POST"])
@blp.doc(
    security=[{"bearerAuth": []}],
    summary="Ask for a copy of my personal data (a download link is mailed within days)",
)
@blp.response(202, ExportRequestedSchema)
@errors(blp, 401, 404, 429, 503)
def export_account():
    account_id = customer_account(required=True)
    requested = privacy_uc.request_account_export(orders_app().runtime, account_id)
    return json_response(plain_json(requested), 202)


@blp.route("/orders/<order_id>/export", methods=["POST"])
@blp.doc(
    security=[{"bearerAuth": []}, {"orderToken": []}],
    summary="Ask for a copy of the personal data of this order (a guest: the order's token)",
)
@blp.response(202, ExportRequestedSchema)
@errors(blp, 401, 404, 429, 503)
def export_order(order_id: str):
    requested = privacy_uc.request_order_export(orders_app().runtime, order_id, order_credentials())
    return json_response(plain_json(requested), 202)


@blp.route("/orders/<order_id>/deactivation", methods=["POST"])
@blp.doc(
    security=[{"bearerAuth": []}, {"orderToken": []}],
    summary="Ask for the erasure of my data (a guest: this order's, with its token; the owner "
    "of an account: the account's deactivation)",
)
@blp.response(202, DeactivationRequestedSchema)
@errors(blp, 401, 404, 429, 503)
def deactivate_order(order_id: str):
    requested = privacy_uc.request_guest_deactivation(
        orders_app().runtime, order_id, order_credentials()
    )
    return json_response(plain_json(requested), 202)
