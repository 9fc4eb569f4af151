"""The storefront's one page served by the orders service: the e-mail confirmation link's.

The mailed link is ``GET /v1/accounts/email-confirmation#token=…`` (ORDERS_EMAIL_CONFIRMATION_URL):
a browser never sends the fragment, so the token reaches no access log, proxy or ``Referer``. The
page (no inline script, nothing from another origin, no secret in it) loads its script from the
same path plus ``.js``; the script takes the token out of the address bar and the history, and
posts it to ``POST /v1/accounts/email-confirmation`` (the API), showing the answer as text.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response
from flask_smorest import Api

bp = Blueprint("orders_pages", __name__)

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Confirm your e-mail address</title>
<script src="email-confirmation.js" defer></script>
</head>
<body>
<main>
<h1>Confirm your e-mail address</h1>
<p id="status" role="status">Confirming your new e-mail address…</p>
<noscript><p>This page needs JavaScript to confirm your address.</p></noscript>
</main>
</body>
</html>
"""

SCRIPT = """"use strict";
(function () {
  var status = document.getElementById("status");
  var token = new URLSearchParams(window.location.hash.slice(1)).get("token");
  // the token leaves the address bar and the history at once
  window.history.replaceState(null, "", window.location.pathname);
  if (!token) {
    status.textContent = "This link is incomplete: open the link of the e-mail as it is.";
    return;
  }
  fetch(window.location.pathname, {
    method: "POST",
    headers: { "Content-Type": "application/json", "Accept": "application/json" },
    body: JSON.stringify({ token: token }),
    credentials: "omit",
    cache: "no-store",
    referrerPolicy: "no-referrer"
  })
    .then(function (response) {
      return response.json().then(function (body) {
        if (response.ok) {
          status.textContent = "Your e-mail address is confirmed: it is now " + body.email + ".";
        } else {
          status.textContent = (body.error && body.error.message) || "This link cannot be used.";
        }
      });
    })
    .catch(function () {
      status.textContent = "The confirmation could not be sent; try again in a moment.";
    });
})();
"""

HEADERS = {
    # only this origin's script, only this origin's API; no frames, no forms, no base
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; connect-src 'self'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


@bp.get("/v1/accounts/email-confirmation")
def email_confirmation_page():
    return Response(PAGE, mimetype="text/html", headers=HEADERS)


@bp.get("/v1/accounts/email-confirmation.js")
def email_confirmation_script():
    return Response(SCRIPT, mimetype="text/javascript", headers=HEADERS)


def document(app: Flask, api: Api) -> None:
    """The page and its script in the API's document (plain Flask routes: described by hand)."""
    rules = {rule.endpoint: rule for rule in app.url_map.iter_rules()}
    for endpoint, summary, media in (
        (
            "orders_pages.email_confirmation_page",
            "The e-mail confirmation link's page",
            "text/html",
        ),
        ("orders_pages.email_confirmation_script", "The page's script", "text/javascript"),
    ):
        operation = {
            "summary": summary + " (the token stays in the link's fragment, never sent)",
            "tags": ["accounts"],
            "security": [],
            "responses": {
                "200": {"description": summary, "content": {media: {"schema": {"type": "string"}}}}
            },
        }
        api.spec.path(rule=rules[endpoint], operations={"get": operation})
