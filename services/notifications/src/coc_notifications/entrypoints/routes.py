"""HTTP API of the notifications service besides the common routes (health, readiness, parked
messages): flask-smorest, documented in the OpenAPI document served at ``/openapi.json`` and kept
in the repository (``services/notifications/openapi.json``).

* Staff (a staff token): the mails by status, template or order (no bodies; addresses masked), an
  order's mails, and the resending of a failed mail with a reason (recorded in the support
  actions log).
* Anyone holding a marketing mail's link: the one-click unsubscribe of RFC 8058. ``POST`` (what
  mail clients send, body ``List-Unsubscribe=One-Click``) withdraws the consent at once; ``GET``
  (a person following the link) shows a page whose button posts the same, so that a link
  scanner opening it withdraws nothing. A tampered or malformed token is refused with 400.
"""

from __future__ import annotations

from flask import Flask, Response, g, jsonify, request
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from coc_shared.http import error_response, staff_required
from coc_shared.openapi import STAFF_SECURITY, errors, install_api

from ..adapters.repository import MailRepository
from ..domain.model import STATUSES
from ..service_layer import marketing, staff


class NotificationSchema(Schema):
    event_id = fields.String(required=True)
    event_type = fields.String(required=True)
    template = fields.String(required=True)
    status = fields.String(required=True)
    has_recipient = fields.Boolean(required=True)


class OrderNotificationsSchema(Schema):
    order_id = fields.String(required=True)
    items = fields.List(fields.Nested(NotificationSchema), required=True)


class MailQuerySchema(Schema):
    status = fields.String(validate=validate.OneOf(STATUSES))
    template = fields.String(validate=validate.Length(min=1, max=100))
    order_id = fields.String(validate=validate.Length(min=1, max=200))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class MailSchema(Schema):
    id = fields.Integer(required=True)
    source_id = fields.String(required=True, metadata={"description": "event or campaign id"})
    event_type = fields.String(required=True)
    template = fields.String(required=True)
    kind = fields.String(required=True)
    order_id = fields.String(allow_none=True)
    status = fields.String(required=True)
    attempts = fields.Integer(required=True)
    next_attempt_at = fields.DateTime(allow_none=True)
    last_answer = fields.String(allow_none=True, metadata={"description": "the SMTP answer"})
    message_id = fields.String(allow_none=True)
    address_masked = fields.String(allow_none=True)
    created_at = fields.DateTime(required=True)
    sent_at = fields.DateTime(allow_none=True)


class MailsSchema(Schema):
    items = fields.List(fields.Nested(MailSchema), required=True)


class ResendSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=1000))


class ResentSchema(Schema):
    id = fields.Integer(required=True)
    status = fields.String(required=True)
    template = fields.String(required=True)


class UnsubscribedSchema(Schema):
    unsubscribed = fields.Boolean(required=True)
    message = fields.String(required=True)


PAGE = """<!doctype html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Se désabonner</title>
</head>
<body>
<main>
<h1>Se désabonner des e-mails d'information</h1>
<p>Vous ne recevrez plus nos e-mails d'information. Les e-mails sur vos commandes continuent.</p>
<form method="post">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">Me désabonner</button>
</form>
</main>
</body>
</html>
"""
DONE = "Vous êtes désabonné(e) : vous ne recevrez plus nos e-mails d'information."


def register_api(app: Flask, runtime) -> None:
    blp = Blueprint(
        "notifications_staff",
        __name__,
        url_prefix="/v1/staff",
        description="Mails to customers (support staff)",
    )

    @blp.route("/orders/<order_id>/notifications", methods=["GET"])
    @blp.doc(security=STAFF_SECURITY, summary="The mails of an order")
    @blp.response(200, OrderNotificationsSchema)
    @errors(blp, 401, 403, 503)
    @staff_required()
    def order_notifications(order_id: str):
        with runtime.unit_of_work() as uow:
            mails = MailRepository(uow).for_order(order_id)
        return jsonify(
            {
                "order_id": order_id,
                "items": [
                    {
                        "event_id": m.source_id,
                        "event_type": m.event_type,
                        "template": m.template,
                        "status": m.status,
                        "has_recipient": m.address_hash is not None or m.status == "pending",
                    }
                    for m in mails
                ],
            }
        )

    @blp.route("/mails", methods=["GET"])
    @blp.doc(security=STAFF_SECURITY, summary="Mails by status, template or order (no bodies)")
    @blp.arguments(MailQuerySchema, location="query")
    @blp.response(200, MailsSchema)
    @errors(blp, 401, 403, 422, 503)
    @staff_required()
    def list_mails(query):
        items = staff.list_mails(
            runtime,
            status=query.get("status"),
            template=query.get("template"),
            order_id=query.get("order_id"),
            limit=query["limit"],
        )
        return {"items": items}

    @blp.route("/mails/<int:mail_id>/resend", methods=["POST"])
    @blp.doc(security=STAFF_SECURITY, summary="Send a failed mail again (with a reason)")
    @blp.arguments(ResendSchema)
    @blp.response(200, ResentSchema)
    @errors(blp, 401, 403, 404, 409, 422, 503)
    @staff_required()
    def resend_mail(body, mail_id: int):
        try:
            return staff.resend(runtime, mail_id, g.staff, body["reason"])
        except staff.MailNotFound:
            return error_response(404, "no such mail")
        except staff.NotResendable as exc:
            return error_response(409, str(exc))

    public = Blueprint(
        "notifications_unsubscribe",
        __name__,
        url_prefix="/v1",
        description="One-click unsubscribe of marketing mails (RFC 8058)",
    )

    @public.route("/unsubscribe/<token>", methods=["POST"])
    @public.doc(
        security=[],
        summary="Withdraw the consent to marketing mails (RFC 8058 one-click POST)",
    )
    @public.response(200, UnsubscribedSchema)
    @errors(public, 400, 503)
    def unsubscribe_post(token: str):
        try:
            withdrawn = marketing.unsubscribe(runtime, token)
        except marketing.InvalidUnsubscribeToken:
            return error_response(400, "this unsubscribe link is not valid")
        except marketing.UnsubscribeUnavailable:
            return error_response(503, "unsubscribing is not configured")
        if request.accept_mimetypes.best == "text/html" or request.form:
            return Response(
                f'<!doctype html><html lang="fr"><meta charset="utf-8"><p>{DONE}</p></html>',
                content_type="text/html; charset=utf-8",
            )
        log_withdrawn = "withdrawn now" if withdrawn else "already withdrawn"
        return jsonify({"unsubscribed": True, "message": f"{DONE} ({log_withdrawn})"})

    @public.route("/unsubscribe/<token>", methods=["GET"])
    @public.doc(security=[], summary="The page of the unsubscribe link (posts the one-click form)")
    @public.response(200, description="An HTML page with the form", content_type="text/html")
    @errors(public, 400)
    def unsubscribe_page(token: str):
        from ..domain.unsubscribe import InvalidUnsubscribeToken, contact_of_token

        secret = runtime.config.unsubscribe_secret
        try:
            contact_of_token(secret or "", token)
        except InvalidUnsubscribeToken:
            return error_response(400, "this unsubscribe link is not valid")
        response = Response(PAGE, content_type="text/html; charset=utf-8")
        response.headers["Content-Security-Policy"] = "default-src 'none'; form-action 'self'"
        return response

    api = install_api(app, "COC notifications API", __doc__)
    api.register_blueprint(blp)
    api.register_blueprint(public)
