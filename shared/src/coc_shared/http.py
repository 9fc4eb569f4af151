"""The HTTP side every service shares: correlation ids, one JSON error shape, bounded inputs
(``guards``: size per route, JSON limits, no NUL or lone surrogate), the headers of every answer
(``Cache-Control: no-store``, ``X-Content-Type-Options: nosniff``, ``Allow`` on 405), the Flask
side of authentication (``staff_required``, ``request_account``), health and readiness probes,
and the staff-only view of the service's parked messages.

Error shape (every 4xx/5xx of every service)::

    {"error": {"status": 422, "code": "unprocessable_entity", "message": "...",
               "fields": {"email": ["Not a valid email address."]}, "correlation_id": "..."}}
"""

from __future__ import annotations

import functools
import re
import time
import uuid

import structlog
from flask import Blueprint, Flask, current_app, g, jsonify, request
from sqlalchemy import text
from werkzeug.exceptions import HTTPException

from . import tracing
from .config import APPLICATIONS
from .guards import InputRefused, install_guards
from .logging import bind_story, bound_log_fields, get_logger
from .parked_summary import parked_summary_blueprint
from .parking import parked_to_json
from .tokens import ROLES, TokenError, bearer_token, verify_customer_token, verify_staff_token

log = get_logger(__name__)
_CORRELATION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")
# Headers of every answer: nothing of an API answer is cached (they carry personal data and
# tokens), and no browser guesses a type other than the one declared.
SECURITY_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
# Headers of an HTTPException kept in its JSON answer (405's Allow, 401's challenge, 429's delay).
_KEPT_EXCEPTION_HEADERS = {"allow", "www-authenticate", "retry-after"}


def error_response(
    status: int, message: str, fields: dict | None = None, headers: dict | None = None
):
    code = re.sub(r"[^a-z]+", "_", _reason(status).lower()).strip("_")
    body = {
        "error": {
            "status": status,
            "code": code,
            "message": message,
            "correlation_id": getattr(g, "correlation_id", None),
        }
    }
    if fields:
        body["error"]["fields"] = fields
    response = jsonify(body)
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"


def token_error_response(exc: TokenError, realm: str):
    """The answer to a refused token: 401 with a challenge, 403 or 503 without."""
    headers = {"WWW-Authenticate": f'Bearer realm="{realm}"'} if exc.status == 401 else {}
    return error_response(exc.status, str(exc), headers=headers)


def staff_required(roles: tuple[str, ...] = ROLES):
    """Flask view decorator: only a valid, unrevoked staff token for this service with one of
    ``roles`` gets through (``g.staff`` is then the ``Actor``)."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            settings = current_app.config["COC_SETTINGS"]
            runtime = current_app.config["COC_RUNTIME"]
            try:
                g.staff = verify_staff_token(
                    settings.staff_token_public_key,
                    bearer_token(request.headers.get("Authorization")),
                    audience=settings.service,
                    roles=roles,
                    revoked=runtime.parking.token_revoked,
                )
            except TokenError as exc:
                return token_error_response(exc, "coc-staff")
            return view(*args, **kwargs)

        return wrapper

    return decorator


def request_account(required: bool) -> str | None:
    """The account id of the request's customer bearer token; None without a token unless
    ``required``. Raises ``TokenError`` (answered by ``install_common``'s handler)."""
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        if required:
            raise TokenError("a customer bearer token is required")
        return None
    return verify_customer_token(current_app.config["COC_SETTINGS"].customer_token_secret, token)


def order_caller() -> tuple[str | None, str | None]:
    """(account id of a valid customer bearer token, the order's access token from
    ``X-Order-Token``) for a customer route of an order: one of them is needed; a bad customer
    token is refused unless an order token comes with it (``TokenError``). The route opens the
    order when the account owns it or the token's SHA-256 is the order's
    (``tokens.access_token_matches``)."""
    order_token = request.headers.get("X-Order-Token")
    if not order_token and not bearer_token(request.headers.get("Authorization")):
        raise TokenError("a customer bearer token or the order's access token is required")
    try:
        return request_account(required=False), order_token
    except TokenError as exc:
        if exc.status == 503:
            raise TokenError("customer authentication is not configured", 503) from None
        if not order_token:
            raise
        return None, order_token


def _field_messages(exc: HTTPException) -> dict | None:
    """The per-field messages flask-smorest / webargs put in ``exc.data``, all locations merged."""
    data = getattr(exc, "data", None)
    if not (isinstance(data, dict) and isinstance(data.get("messages"), dict)):
        return None
    fields = {}
    for location_messages in data["messages"].values():
        if isinstance(location_messages, dict):
            fields.update(location_messages)
    return fields or None


def http_error_response(exc: HTTPException):
    """An HTTPException in the JSON error shape, with the headers it must keep (405's Allow)."""
    headers = {
        name: value for name, value in exc.get_headers() if name.lower() in _KEPT_EXCEPTION_HEADERS
    }
    status = exc.code or 500
    return error_response(status, exc.description or _reason(status), _field_messages(exc), headers)


def bind_order_story(order_id: str) -> None:
    """The rest of this request's log lines belong to the order's story (e.g. once it is placed)."""
    bind_story(order_id)
    g._story = True


def _install_metrics(app: Flask) -> None:
    """Every answer counted by route and status, and timed (``metrics``)."""

    @app.before_request
    def _clock():
        g._started = time.perf_counter()

    @app.after_request
    def _measure(response):
        from .metrics import HTTP_REQUESTS, HTTP_SECONDS

        route = request.url_rule.rule if request.url_rule is not None else "(no route)"
        service = app.config["COC_SETTINGS"].service if "COC_SETTINGS" in app.config else app.name
        HTTP_REQUESTS.labels(service, request.method, route, str(response.status_code)).inc()
        started = g.get("_started")
        if started is not None:
            HTTP_SECONDS.labels(service, request.method, route).observe(
                time.perf_counter() - started
            )
        return response


def _install_tracing(app: Flask) -> None:
    """A span per request (``tracing``): events it emits carry its trace to their consumers."""

    @app.before_request
    def _span():
        route = request.url_rule.rule if request.url_rule is not None else "(no route)"
        service = app.config["COC_SETTINGS"].service if "COC_SETTINGS" in app.config else app.name
        # only the staff routes' callers (the console) continue their trace here
        staff = request.path.startswith("/v1/staff/")
        g._span = tracing.RequestSpan(service, request.method, route, request.headers, staff)

    @app.after_request
    def _answered(response):
        if "_span" in g:
            g._span.answered(response.status_code)
        return response

    @app.teardown_request
    def _end_span(_exc):
        span = g.pop("_span", None)
        if span is not None:
            span.end()


def install_common(app: Flask) -> None:
    """Correlation id on every request and response, bounded inputs (``guards``), JSON errors,
    no stack trace to clients, the security headers on every answer."""

    @app.before_request
    def _correlation():
        given = request.headers.get("X-Correlation-ID", "")
        g.correlation_id = given if _CORRELATION_ID.match(given) else str(uuid.uuid4())
        # A request about an order belongs to that order's story: its log lines carry the order's
        # correlation id (the order id, as its events do); the request's own id stays beside it.
        order_id = (request.view_args or {}).get("order_id")
        if not (isinstance(order_id, str) and _CORRELATION_ID.match(order_id)):
            order_id = None
        g._log_ctx = bound_log_fields(
            service=app.config["COC_SETTINGS"].service if "COC_SETTINGS" in app.config else None,
            request_id=g.correlation_id,
            order_id=order_id,
            correlation_id=order_id or g.correlation_id,
        )
        g._log_ctx.__enter__()

    _install_tracing(app)  # after the correlation id, before anything that may refuse the request
    install_guards(app)  # after the correlation id: its refusals carry it

    _install_metrics(app)

    @app.after_request
    def _stamp(response):
        response.headers["X-Correlation-ID"] = getattr(g, "correlation_id", "") or str(uuid.uuid4())
        for name, value in SECURITY_HEADERS.items():
            response.headers[name] = value
        return response

    @app.teardown_request
    def _unbind(_exc):
        ctx = g.pop("_log_ctx", None)
        if ctx is not None:
            ctx.__exit__(None, None, None)
        if g.pop("_story", None):
            structlog.contextvars.unbind_contextvars("order_id", "correlation_id")

    app.register_error_handler(HTTPException, http_error_response)

    @app.errorhandler(InputRefused)
    def _refused(exc: InputRefused):
        return error_response(exc.code, exc.description, exc.fields or None)

    @app.errorhandler(TokenError)
    def _token_error(exc: TokenError):
        return token_error_response(exc, "coc")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("http.unhandled_error", path=request.path, error_type=type(exc).__name__)
        return error_response(500, "internal error; quote the correlation id to support")


def health_blueprint(runtime) -> Blueprint:
    bp = Blueprint("health", __name__)

    @bp.get("/metrics")
    def metrics():
        from .metrics import exposition

        body, content_type = exposition(runtime)
        return current_app.response_class(
            body, mimetype=content_type.split(";")[0], headers={"Content-Type": content_type}
        )

    @bp.get("/healthz")
    def healthz():
        return jsonify({"status": "ok", "service": runtime.settings.service})

    @bp.get("/readyz")
    def readyz():
        checks = {}
        try:
            with runtime.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"unavailable: {type(exc).__name__}"
        checks["broker"] = runtime.broker_ready()
        ok = all(v == "ok" for v in checks.values())
        response = jsonify(
            {
                "status": "ready" if ok else "not_ready",
                "service": runtime.settings.service,
                "checks": checks,
            }
        )
        response.status_code = 200 if ok else 503
        return response

    return bp


def staff_blueprint(runtime) -> Blueprint:
    """Staff-only view of this service's parked messages (the support web console builds on it)."""
    bp = Blueprint("staff", __name__, url_prefix="/v1/staff")

    @bp.get("/parked")
    @staff_required()
    def list_parked():
        limit = request.args.get("limit", "100")
        if not limit.isdigit() or not 1 <= int(limit) <= 1000:
            return error_response(
                400, "invalid query", {"limit": ["Must be a whole number from 1 to 1000."]}
            )
        rows = runtime.parking.list(
            service=runtime.settings.service,
            status=request.args.get("status", "parked"),
            event_type=request.args.get("event_type"),
            error=request.args.get("error"),
            order_id=request.args.get("order_id"),
            limit=int(limit),
        )
        return jsonify({"items": [parked_to_json(r) for r in rows]})

    @bp.get("/parked/<int:parked_id>")
    @staff_required()
    def show_parked(parked_id: int):
        row = runtime.parking.get(parked_id)
        if row is None or row["service"] != runtime.settings.service:
            return error_response(404, "no such parked message")
        # the body holds the event's personal part: every staff read of it is recorded
        runtime.parking.record_action(
            g.staff, "read_parked", str(parked_id), None, {"service": runtime.settings.service}
        )
        return jsonify(parked_to_json(row, include_body=True, keys=runtime.parking.keys))

    @bp.post("/parked/<int:parked_id>/discard")
    @staff_required()
    def discard_parked(parked_id: int):
        """Give up a parked message, with a reason (the support console's discard)."""
        body = request.get_json(silent=True)
        reason = body.get("reason") if isinstance(body, dict) else None
        if not isinstance(reason, str) or not reason.strip() or len(reason) > 500:
            return error_response(
                422, "invalid body", {"reason": ["Required: some text, at most 500 characters."]}
            )
        row = runtime.parking.get(parked_id)
        if row is None or row["service"] != runtime.settings.service:
            return error_response(404, "no such parked message")
        try:
            return jsonify(runtime.parking.discard(parked_id, g.staff, reason.strip()))
        except LookupError:
            return error_response(409, "the message was already replayed or discarded")

    return bp


def create_base_app(runtime) -> Flask:
    app = Flask(runtime.settings.service)
    app.config["COC_SETTINGS"] = runtime.settings
    app.config["COC_RUNTIME"] = runtime
    app.json.sort_keys = False
    install_common(app)
    app.register_blueprint(health_blueprint(runtime))
    if runtime.settings.service in APPLICATIONS:
        return app  # no events (the console): nothing parked, no ops schema to serve
    app.register_blueprint(staff_blueprint(runtime))
    app.register_blueprint(parked_summary_blueprint(runtime))
    from .replay_http import replay_blueprint  # it builds on this module

    app.register_blueprint(replay_blueprint(runtime))
    return app


def current_runtime():
    return current_app.config["COC_RUNTIME"]
