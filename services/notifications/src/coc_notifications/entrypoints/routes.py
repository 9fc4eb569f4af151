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

from flask import Flask

from coc_shared.http import error_response
from coc_shared.openapi import install_api

from ..service_layer import marketing, queries, staff
from . import staff_routes, unsubscribe_routes

# the answer to each refusal of the use cases (the only place where they meet status codes)
ANSWERS = {
    staff.MailNotFound: lambda exc: error_response(404, "no such mail"),
    staff.NotResendable: lambda exc: error_response(409, str(exc)),
    queries.InvalidUnsubscribeToken: lambda exc: error_response(
        400, "this unsubscribe link is not valid"
    ),
    marketing.UnsubscribeUnavailable: lambda exc: error_response(
        503, "unsubscribing is not configured"
    ),
}


def register_api(app: Flask, runtime) -> None:
    """The notifications routes on ``app`` (their views reach ``runtime`` with
    ``current_runtime()``)."""
    for refusal, answer in ANSWERS.items():
        app.register_error_handler(refusal, answer)
    api = install_api(app, "COC notifications API", __doc__)
    api.register_blueprint(staff_routes.blp)
    api.register_blueprint(unsubscribe_routes.public)
