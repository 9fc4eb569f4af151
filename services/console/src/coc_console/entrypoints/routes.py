"""The console's pages: server-rendered (Jinja2) plain forms, no script.

Every page but the log-in needs a session (cookie ``coc_console``: HttpOnly, SameSite=Strict,
Secure over TLS); every form carries a CSRF token (the session's; before log-in, a double-submit
cookie) and a POST without the right one is refused 403. Bad input is 422 with a message per
field, a role that may not act 403, a service that does not answer a page that says so."""

from __future__ import annotations

import json
import secrets
from functools import wraps

from flask import (
    Blueprint,
    Flask,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.middleware.proxy_fix import ProxyFix

from coc_shared.openapi import install_api

from ..adapters.services_client import ServiceError, ServiceUnavailable, StaffApiClient
from ..domain.model import MAY_REVEAL, Forbidden, InputError
from ..service_layer import audit, auth, failures, story

COOKIE = "coc_console"
LOGIN_COOKIE = "coc_console_login"  # the log-in form's double-submit CSRF token
PAGE_SECURITY_HEADERS = {
    # nothing but the console's own files; no script at all; never framed
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

bp = Blueprint(
    "console",
    __name__,
    template_folder="../templates",
    static_folder="../static",
    static_url_path="/assets",
)


def runtime():
    return current_app.config["COC_RUNTIME"]


def client() -> StaffApiClient:
    return current_app.extensions["coc_console_client"]


def _set_cookie(response, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        secure=request.is_secure,
        samesite="Strict",
        path="/",
    )


def page(template: str, status: int = 200, **context):
    return make_response(render_template(template, **context), status)


def signed_in(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        session = auth.current_session(runtime(), request.cookies.get(COOKIE))
        if session is None:
            expired = COOKIE in request.cookies
            response = redirect(url_for("console.login_form", expired=1 if expired else None))
            if expired:
                response.delete_cookie(COOKIE, path="/")
            return response
        g.session = session
        g.staff = session.staff
        if request.method == "POST" and not secrets.compare_digest(
            request.form.get("csrf", ""), session.csrf_token
        ):
            return page("error.html", 403, message="The form's CSRF token is missing or wrong.")
        return view(*args, **kwargs)

    return wrapper


@bp.after_app_request
def _page_headers(response):
    for name, value in PAGE_SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


@bp.app_template_filter("pretty")
def _pretty(value) -> str:
    """JSON for reading (non-ASCII kept); the template's autoescape makes it safe."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


@bp.app_context_processor
def _context():
    session = g.get("session")
    return {
        "staff": session.staff if session else None,
        "csrf": session.csrf_token if session else "",
    }


# ------------------------------------------------------------------------------------- log-in
@bp.get("/")
def home():
    return redirect(url_for("console.failures_page"))


@bp.get("/login")
def login_form():
    token = secrets.token_urlsafe(32)
    response = page("login.html", expired=bool(request.args.get("expired")), login_csrf=token)
    _set_cookie(response, LOGIN_COOKIE, token, max_age=1800)
    return response


@bp.post("/login")
def login():
    expected = request.cookies.get(LOGIN_COOKIE, "")
    given = request.form.get("csrf", "")
    if not expected or not secrets.compare_digest(given, expected):
        return page("error.html", 403, message="The form's CSRF token is missing or wrong.")
    fields = {
        k: "required" for k in ("name", "password", "code") if not request.form.get(k, "").strip()
    }
    if fields:
        return page("login.html", 422, errors=fields, login_csrf=expected)
    try:
        token, _session = auth.log_in(
            runtime(), request.form["name"], request.form["password"], request.form["code"]
        )
    except auth.LoginRefused:
        return page(
            "login.html",
            401,
            errors={"login": "wrong name, password or code (or too many tries: wait 15 minutes)"},
            login_csrf=expected,
        )
    response = redirect(url_for("console.failures_page"))
    _set_cookie(response, COOKIE, token)
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@bp.post("/logout")
@signed_in
def logout():
    auth.log_out(runtime(), request.cookies.get(COOKIE))
    response = redirect(url_for("console.login_form"))
    response.delete_cookie(COOKIE, path="/")
    return response


# ------------------------------------------------------------------------------ failed messages
@bp.get("/failures")
@signed_in
def failures_page():
    groups, chart, problems = failures.grouped(client(), g.staff)
    return page("failures.html", groups=groups, chart=chart, problems=problems)


@bp.get("/failures/<service>")
@signed_in
def group_page(service: str):
    event_type = request.args.get("event_type", "")
    error_type = request.args.get("error_type", "")
    items, problems = failures.group_messages(client(), g.staff, service, event_type, error_type)
    return page(
        "group.html",
        service=service,
        event_type=event_type,
        error_type=error_type,
        items=items,
        problems=problems,
    )


@bp.get("/failures/<service>/<int:parked_id>")
@signed_in
def message_page(service: str, parked_id: int):
    found = failures.message(client(), g.staff, service, parked_id)
    if found is None:
        return page("error.html", 404, message=f"No parked message {parked_id} at {service}.")
    return _message(service, found, revealed=False)


def _message(service, found, revealed, status=200, errors=None):
    return page(
        "message.html",
        status,
        service=service,
        message=found,
        revealed=revealed,
        may_reveal=g.staff.role in MAY_REVEAL,
        errors=errors or {},
    )


@bp.post("/failures/<service>/<int:parked_id>/reveal")
@signed_in
def reveal(service: str, parked_id: int):
    try:
        found = failures.reveal(
            runtime(), client(), g.staff, service, parked_id, request.form.get("reason", "")
        )
    except InputError as exc:
        masked = failures.message(client(), g.staff, service, parked_id) or {"id": parked_id}
        return _message(service, masked, False, 422, exc.fields)
    if found is None:
        return page("error.html", 404, message=f"No parked message {parked_id} at {service}.")
    return _message(service, found, revealed=True)


@bp.post("/failures/<service>/<int:parked_id>/discard")
@signed_in
def discard(service: str, parked_id: int):
    try:
        failures.discard(
            runtime(), client(), g.staff, service, parked_id, request.form.get("reason", "")
        )
    except InputError as exc:
        masked = failures.message(client(), g.staff, service, parked_id) or {"id": parked_id}
        return _message(service, masked, False, 422, exc.fields)
    return redirect(url_for("console.failures_page", done=f"discarded {service} #{parked_id}"))


# ------------------------------------------------------------------------------ an order's story
@bp.get("/orders")
@signed_in
def order_page():
    reference = request.args.get("q", "")
    if not reference:
        return page("story.html", story=None, q="")
    try:
        order = story.find(client(), g.staff, reference)
    except InputError as exc:
        return page("story.html", 422, story=None, q=reference, errors=exc.fields)
    if order is None:
        return page("story.html", 404, story=None, q=reference, errors={"q": "no such order"})
    return page("story.html", story=story.story(runtime(), client(), g.staff, order), q=reference)


# ------------------------------------------------------------------------------------ audit log
@bp.get("/audit")
@signed_in
def audit_page():
    filters = {
        k: request.args.get(k, "").strip() or None for k in ("staff_name", "action", "target")
    }
    return page("audit.html", entries=audit.search(runtime(), **filters), filters=filters)


# ------------------------------------------------------------------------------------- refusals
# Registered once for the whole app (register_api): every page's refusals answer alike, a 4xx or
# 503 page, never a 500.
def _forbidden(exc):
    return page("error.html", 403, message=str(exc))


def _input_error(exc):
    return page("error.html", 422, message="Refused input.", errors=exc.fields)


def _unavailable(exc):
    return page("error.html", 503, message=str(exc))


def _service_refused(exc):
    status = exc.status if exc.status in (404, 409, 422) else 502
    return page("error.html", status, message=str(exc))


REFUSALS = {
    Forbidden: _forbidden,
    InputError: _input_error,
    ServiceUnavailable: _unavailable,
    ServiceError: _service_refused,
}


API_DESCRIPTION = """JSON API of the support console: the routes every service has (health,
readiness, metrics, the staff view of parked messages and their safe replay). Its pages (HTML
forms behind its session cookie) are not part of it."""


def register_api(app: Flask, rt) -> None:
    config = rt.config
    install_api(app, "COC console API", API_DESCRIPTION)
    app.extensions["coc_console_client"] = StaffApiClient(
        config.service_urls, config.staff_token_private_key, config.http_timeout
    )
    if config.proxy_count:  # the client's scheme (https: Secure cookie) and address from the proxy
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=config.proxy_count, x_proto=config.proxy_count)
    for refusal, answer in REFUSALS.items():
        app.register_error_handler(refusal, answer)
    app.register_blueprint(bp)
    from .support_routes import bp as support_bp  # its pages use this module's helpers

    app.register_blueprint(support_bp)
    from .replay_routes import bp as replay_bp  # its pages use this module's helpers

    app.register_blueprint(replay_bp)
    from .order_checks_routes import bp as order_checks_bp  # stuck orders, disagreements: same

    app.register_blueprint(order_checks_bp)
