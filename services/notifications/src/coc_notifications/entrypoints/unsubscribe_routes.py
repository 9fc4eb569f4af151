"""The one-click unsubscribe of marketing mails (RFC 8058), open to anyone holding a mail's link:
``POST`` withdraws the consent at once, ``GET`` shows the page whose button posts the same."""

from __future__ import annotations

from flask import Response, jsonify, request
from flask_smorest import Blueprint

from coc_shared.http import current_runtime
from coc_shared.openapi import errors

from ..service_layer import marketing, queries
from . import schemas as s

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
@public.response(200, s.UnsubscribedSchema)
@errors(public, 400, 503)
def unsubscribe_post(token: str):
    withdrawn = marketing.unsubscribe(current_runtime(), token)
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
    queries.check_unsubscribe_link(current_runtime(), token)
    response = Response(PAGE, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = "default-src 'none'; form-action 'self'"
    return response
