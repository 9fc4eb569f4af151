"""HTTP API of the orders service (the storefront's), besides the common routes (health, readiness,
parked messages): flask-smorest blueprints, documented in the OpenAPI document served at
``/openapi.json`` and kept in the repository (``services/orders/openapi.json``).

Authentication: a customer's bearer token (``Authorization: Bearer …``, from ``POST /v1/auth/token``)
or, for an order placed without an account, its access token in the header ``X-Order-Token``
(``?token=`` in the query string is accepted too, for links). Any order or account that the
credentials do not open answers 404, whether it exists or not.
"""
from __future__ import annotations

from datetime import timedelta

from flask import Flask, g, jsonify, request
from flask.views import MethodView
from flask_smorest import Api, Blueprint

from coc_shared.auth import (
    StaffAuthError, access_token_matches, bearer_token, issue_customer_token, staff_required, verify_customer_token,
)
from coc_shared.http import error_response

from ..adapters.crypto import Cipher, EncryptionNotConfigured
from ..adapters.ratelimit import RateLimiter
from ..adapters.repository import OrderEventRepository, OrderRepository
from ..config import setting
from ..domain.catalogue import load_catalogue
from ..domain.lifecycle import accepts_documents
from ..domain.model import missing_documents
from ..service_layer import accounts as accounts_uc
from ..service_layer import orders as orders_uc
from . import schemas as s

OPENAPI_VERSION = "3.0.3"
ERRORS = {400: "Bad request", 422: "Invalid input: messages per field", 401: "No or bad credentials", 404: "No such resource (or not yours)",
          409: "Conflict", 413: "File larger than 10 MB", 415: "Not a PDF, JPEG or PNG file",
          422: "Invalid input: messages per field", 429: "Too many requests from this client",
          503: "Not configured or a dependency is down"}


class OrdersApi(Api):
    ERROR_SCHEMA = s.ErrorSchema

    def _register_error_handlers(self):
        """The shared handlers of coc_shared.http (one JSON error shape) stay in charge."""


def errors(blp: Blueprint, *codes: int):
    def decorator(view):
        for code in reversed(codes):
            view = blp.alt_response(code, schema=s.ErrorSchema, description=ERRORS[code])(view)
        return view
    return decorator


class Context:
    """What the views need besides the runtime, built once per application."""

    def __init__(self, runtime):
        self.runtime = runtime
        settings = runtime.settings
        self.settings = settings
        self.catalogue = load_catalogue(setting(settings, "ORDERS_CATALOGUE_PATH"))
        self.limiter = RateLimiter(setting(settings, "ORDERS_RATE_LIMIT_STORAGE") or "memory://",
                                   prefix=f"{settings.bus_prefix}coc-orders")
        self.login_limit = setting(settings, "ORDERS_RATE_LIMIT_LOGIN")
        self.orders_limit = setting(settings, "ORDERS_RATE_LIMIT_ORDERS")
        self.customer_secret = settings.customer_token_secret
        self.token_ttl = timedelta(seconds=int(setting(settings, "ORDERS_CUSTOMER_TOKEN_TTL")))
        self.idempotency_ttl = timedelta(hours=float(setting(settings, "ORDERS_IDEMPOTENCY_TTL_HOURS")))
        self.payment_url = setting(settings, "ORDERS_PAYMENT_URL")
        self.confirmation_url = setting(settings, "ORDERS_EMAIL_CONFIRMATION_URL")
        try:
            self.cipher = Cipher(setting(settings, "ORDERS_DOCUMENT_KEY"))
        except EncryptionNotConfigured as exc:
            self.cipher = None
            self.cipher_error = str(exc)
        self._storage = None

    @property
    def storage(self):
        if self._storage is None:
            from ..adapters.storage import LocalFolderStorage, S3Storage
            kind = setting(self.settings, "ORDERS_DOCUMENT_STORE") or ("local" if self.settings.embedded else "s3")
            if kind == "local":
                self._storage = LocalFolderStorage(setting(self.settings, "ORDERS_DOCUMENTS_DIR"))
            elif kind == "s3":
                self._storage = S3Storage(
                    bucket=setting(self.settings, "ORDERS_S3_BUCKET"),
                    endpoint_url=setting(self.settings, "ORDERS_S3_ENDPOINT_URL"),
                    region=setting(self.settings, "ORDERS_S3_REGION"),
                    access_key_id=setting(self.settings, "ORDERS_S3_ACCESS_KEY_ID"),
                    secret_access_key=setting(self.settings, "ORDERS_S3_SECRET_ACCESS_KEY"))
            else:
                raise ValueError(f"ORDERS_DOCUMENT_STORE must be s3 or local, not {kind!r}")
        return self._storage


# answers --------------------------------------------------------------------------------------

def render_order(ctx: Context, order, documents=None, timeline=None, access_token=None) -> dict:
    documents = documents or []
    body = {
        "id": order.id, "number": order.number, "status": order.status,
        "placed_at": order.placed_at.isoformat(), "payment_method": order.payment_method,
        "total": {"amount_cents": order.total_cents, "currency": order.currency},
        "vat": {"rate": order.vat_rate, "amount_cents": order.vat_cents},
        "vehicle": {"brand": order.brand, "vin": order.vin,
                    "first_registration_date": order.first_registration_date.isoformat(),
                    "extra": order.vehicle_extra or {}},
        "documents_required": missing_documents(order.documents_required, documents),
        "documents": [render_document(d) for d in documents],
        "links": {"self": f"/v1/orders/{order.id}", "documents": f"/v1/orders/{order.id}/documents",
                  "payment": ctx.payment_url.format(order_id=order.id)},
    }
    if access_token:
        body["access_token"] = access_token
    if timeline is not None:
        body["timeline"] = [{"event": e["event_type"], "at": _aware(e["occurred_at"]).isoformat(),
                             "outcome": e["outcome"], "status": e["status_after"]} for e in timeline]
    return body


def render_document(d) -> dict:
    return {"id": d.id, "kind": d.kind, "content_type": d.content_type, "size": d.size, "sha256": d.sha256,
            "uploaded_at": d.uploaded_at.isoformat(),
            "rejected_at": _aware(d.rejected_at).isoformat() if d.rejected_at else None}


def _aware(value):
    from datetime import timezone
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def _json(body: dict, status: int = 200, headers: dict | None = None):
    response = jsonify(body)
    response.status_code = status
    for k, v in (headers or {}).items():
        response.headers[k] = v
    return response


def _dates(value):
    """JSON-ready copy of an account view (dates as ISO strings)."""
    from datetime import datetime
    return {k: (_aware(v).isoformat() if isinstance(v, datetime) else v) for k, v in value.items()}


# authentication -------------------------------------------------------------------------------

class AuthProblem(Exception):
    def __init__(self, response):
        self.response = response


def customer_account(ctx: Context, required: bool) -> str | None:
    """The account of the request's bearer token (None without one, unless ``required``)."""
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        if required:
            raise AuthProblem(error_response(401, "a customer bearer token is required",
                                             headers={"WWW-Authenticate": 'Bearer realm="coc-customer"'}))
        return None
    try:
        return verify_customer_token(ctx.customer_secret, token)
    except StaffAuthError as exc:
        headers = {"WWW-Authenticate": 'Bearer realm="coc-customer"'} if exc.status == 401 else {}
        raise AuthProblem(error_response(exc.status, str(exc), headers=headers)) from None


def open_order(ctx: Context, order_id: str):
    """The order if the request's credentials open it; AuthProblem (401 without credentials, 404
    otherwise: no hint whether it exists)."""
    order_token = request.headers.get("X-Order-Token") or request.args.get("token")
    has_bearer = bearer_token(request.headers.get("Authorization")) is not None
    if not order_token and not has_bearer:
        raise AuthProblem(error_response(401, "a bearer token or the order's access token (X-Order-Token) is required"))
    account_id = customer_account(ctx, required=False) if has_bearer else None
    with ctx.runtime.engine.connect() as conn:
        order = OrderRepository(conn).get(order_id) if len(order_id) <= 36 and "\x00" not in order_id else None
    if order is not None:
        if account_id is not None and order.account_id == account_id:
            return order
        if order_token and access_token_matches(order_token, order.access_token_sha256):
            return order
    raise AuthProblem(error_response(404, "no such order"))


def client_ip() -> str:
    return request.remote_addr or "unknown"


def rate_limited(ctx: Context, name: str, limit: str):
    allowed, retry_after = ctx.limiter.hit(name, client_ip(), limit)
    if not allowed:
        return error_response(429, "too many requests; try again later", headers={"Retry-After": str(retry_after)})
    return None


def refuse_nul_characters():
    """Text with NUL characters cannot be stored (PostgreSQL) and is never legitimate: 422 at once."""
    if request.mimetype == "application/json" and b"\\u0000" in request.get_data(cache=True):
        return error_response(422, "text must not contain NUL characters", {"_schema": ["NUL character in the body."]})
    return None


# blueprints -----------------------------------------------------------------------------------

IDEMPOTENCY_PARAM = {"in": "header", "name": "Idempotency-Key", "required": False,
                     "schema": {"type": "string", "maxLength": 200},
                     "description": "a retried POST with the same key gets the first answer, not a second order"}
# One instance, built once: given the class, webargs would build the schema and its nested schemas
# (deep copies of every field) on every request.
ORDER_REQUEST_SCHEMA = s.OrderRequestSchema()
ORDER_TOKEN_SECURITY = [{"bearerAuth": []}, {"orderToken": []}]
ORDER_TOKEN_PARAM = {"in": "header", "name": "X-Order-Token", "required": False, "schema": {"type": "string"},
                     "description": "the access token of an order placed without an account"}


def orders_blueprint(ctx: Context) -> Blueprint:
    blp = Blueprint("orders", __name__, url_prefix="/v1/orders", description="Orders of certificates of conformity")
    blp.before_request(refuse_nul_characters)

    @blp.route("", methods=["POST"])
    @blp.doc(parameters=[IDEMPOTENCY_PARAM], security=[{}, {"bearerAuth": []}],
             summary="Place an order (guest, or linked to the account of the bearer token)")
    @blp.arguments(ORDER_REQUEST_SCHEMA)
    @blp.response(201, s.OrderSchema)
    @errors(blp, 400, 401, 409, 429, 503)
    def place_order(body):
        limited = rate_limited(ctx, "orders", ctx.orders_limit)
        if limited is not None:
            return limited
        try:
            account_id = customer_account(ctx, required=False)
        except AuthProblem as exc:
            return exc.response
        key = request.headers.get("Idempotency-Key") or None
        if key is not None and (len(key) > 200 or not key.isprintable()):
            return error_response(422, "the order is not valid",
                                  {"Idempotency-Key": ["At most 200 printable characters."]})
        cmd = orders_uc.PlaceOrder(body=body, account_id=account_id, client_ip=client_ip(),
                                   user_agent=request.headers.get("User-Agent"), idempotency_key=key)
        try:
            result = orders_uc.place_order(ctx.runtime, ctx.catalogue, cmd,
                                           render=lambda order, token: render_order(ctx, order, access_token=token),
                                           cipher=ctx.cipher, ttl=ctx.idempotency_ttl)
        except orders_uc.ValidationFailed as exc:
            return error_response(422, exc.message, exc.fields)
        except orders_uc.Conflict as exc:
            return error_response(409, str(exc))
        except orders_uc.NotFound:
            return error_response(401, "the account of this token no longer exists")
        headers = {"Location": f"/v1/orders/{result['body']['id']}"}
        if result["replayed"]:
            headers["Idempotent-Replayed"] = "true"
        return _json(result["body"], result["status_code"], headers)

    @blp.route("/<order_id>", methods=["GET"])
    @blp.doc(security=ORDER_TOKEN_SECURITY, parameters=[ORDER_TOKEN_PARAM],
             summary="An order: status, vehicle, documents, total and timeline")
    @blp.response(200, s.OrderSchema)
    @errors(blp, 401, 404, 503)
    def get_order(order_id):
        try:
            order = open_order(ctx, order_id)
        except AuthProblem as exc:
            return exc.response
        order, documents, timeline = orders_uc.load_order_view(ctx.runtime, order.id)
        return _json(render_order(ctx, order, documents, timeline))

    @blp.route("/<order_id>/documents", methods=["POST"])
    @blp.doc(security=ORDER_TOKEN_SECURITY, summary="Upload one document of the order (multipart)",
             requestBody=s.DOCUMENT_UPLOAD_BODY)
    @blp.response(201, s.DocumentUploadedSchema)
    @errors(blp, 400, 401, 404, 409, 413, 415, 422, 503)
    def upload_document(order_id):
        try:
            order = open_order(ctx, order_id)
        except AuthProblem as exc:
            return exc.response
        if ctx.cipher is None:
            return error_response(503, ctx.cipher_error)
        if not accepts_documents(order.status):
            return error_response(409, f"this order is {order.status}: it takes no more documents")
        problems = {}
        kind = request.form.get("kind")
        if not kind:
            problems["kind"] = ["Missing data for required field."]
        elif kind not in s.DOCUMENT_KINDS:
            problems["kind"] = [f"Must be one of: {', '.join(s.DOCUMENT_KINDS)}."]
        upload = request.files.get("file")
        if upload is None:
            problems["file"] = ["Missing data for required field."]
        if problems:
            return error_response(422, "the upload is not valid", problems)
        form = {"kind": kind}
        data = upload.stream.read(orders_uc.MAX_DOCUMENT_BYTES + 1)
        try:
            document, completed = orders_uc.add_document(ctx.runtime, ctx.storage, ctx.cipher, order.id,
                                                         form["kind"], data)
        except orders_uc.TooLarge:
            return error_response(413, "a document is at most 10 MB")
        except orders_uc.UnsupportedMedia:
            return error_response(415, "only PDF, JPEG and PNG files are accepted (recognised by their content)")
        except orders_uc.NotAllowedNow as exc:
            return error_response(409, str(exc))
        _, documents, _ = orders_uc.load_order_view(ctx.runtime, order.id)
        return _json({"document": render_document(document),
                      "documents_required": missing_documents(order.documents_required, documents),
                      "documents_completed": completed}, 201, {"Location": f"/v1/orders/{order.id}"})

    @blp.route("/<order_id>/cancellation", methods=["POST"])
    @blp.doc(security=ORDER_TOKEN_SECURITY, parameters=[ORDER_TOKEN_PARAM],
             summary="Cancel the order (only before it was sent to the supplier; a payment made is refunded)")
    @blp.arguments(s.CancellationSchema)
    @blp.response(200, s.OrderSchema)
    @errors(blp, 400, 401, 404, 409, 503)
    def cancel_order(body, order_id):
        try:
            order = open_order(ctx, order_id)
        except AuthProblem as exc:
            return exc.response
        reason = " ".join(body["reason"].split())
        if not reason:
            return error_response(422, "the cancellation is not valid", {"reason": ["Must not be blank."]})
        try:
            orders_uc.cancel_order(ctx.runtime, order.id, reason, cancelled_by="customer")
        except orders_uc.NotAllowedNow as exc:
            return error_response(409, str(exc))
        order, documents, timeline = orders_uc.load_order_view(ctx.runtime, order.id)
        return _json(render_order(ctx, order, documents, timeline))

    return blp


def accounts_blueprint(ctx: Context) -> Blueprint:
    blp = Blueprint("accounts", __name__, url_prefix="/v1", description="Customer accounts")
    blp.before_request(refuse_nul_characters)

    def account_or_problem():
        return customer_account(ctx, required=True)

    @blp.route("/accounts", methods=["POST"])
    @blp.doc(security=[{}], summary="Create a customer account")
    @blp.arguments(s.AccountCreateSchema)
    @blp.response(201, s.AccountSchema)
    @errors(blp, 400, 409, 429)
    def create_account(body):
        limited = rate_limited(ctx, "orders", ctx.orders_limit)
        if limited is not None:
            return limited
        try:
            view = accounts_uc.create_account(ctx.runtime, body["email"], body["password"], body.get("profile") or {})
        except orders_uc.ValidationFailed as exc:
            return error_response(422, exc.message, exc.fields)
        except orders_uc.Conflict as exc:
            return error_response(409, str(exc))
        return _json(_dates(view), 201)

    @blp.route("/auth/token", methods=["POST"])
    @blp.doc(security=[{}], summary="Log in: a bearer token with its lifetime")
    @blp.arguments(s.LoginSchema)
    @blp.response(200, s.TokenSchema)
    @errors(blp, 400, 401, 429, 503)
    def login(body):
        limited = rate_limited(ctx, "login", ctx.login_limit)
        if limited is not None:
            return limited
        if not ctx.customer_secret or len(ctx.customer_secret) < 32:
            return error_response(503, "customer authentication is not configured (CUSTOMER_TOKEN_SECRET)")
        try:
            account_id = accounts_uc.authenticate(ctx.runtime, body["email"], body["password"])
        except accounts_uc.InvalidCredentials:
            return error_response(401, "wrong e-mail address or password")
        token, expires_in = issue_customer_token(ctx.customer_secret, account_id, ctx.token_ttl)
        return _json({"access_token": token, "token_type": "Bearer", "expires_in": expires_in})

    @blp.route("/accounts/me")
    class Me(MethodView):
        @blp.doc(security=[{"bearerAuth": []}], summary="My account's data")
        @blp.response(200, s.AccountSchema)
        @errors(blp, 401, 404, 503)
        def get(self):
            try:
                account_id = account_or_problem()
                return _json(_dates(accounts_uc.account_view(ctx.runtime, account_id)))
            except AuthProblem as exc:
                return exc.response
            except orders_uc.NotFound:
                return error_response(404, "no such account")

        @blp.doc(security=[{"bearerAuth": []}],
                 summary="Change my data; a new e-mail address is confirmed by a link sent to it")
        @blp.arguments(s.AccountPatchSchema)
        @blp.response(200, s.AccountSchema)
        @errors(blp, 400, 401, 404, 503)
        def patch(self, body):
            try:
                account_id = account_or_problem()
                view = accounts_uc.update_account(ctx.runtime, account_id, body, ctx.confirmation_url)
            except AuthProblem as exc:
                return exc.response
            except orders_uc.ValidationFailed as exc:
                return error_response(422, exc.message, exc.fields)
            except orders_uc.NotFound:
                return error_response(404, "no such account")
            return _json(_dates(view))


    @blp.route("/accounts/email-confirmation", methods=["POST"])
    @blp.doc(security=[{}], summary="Confirm a change of e-mail with the token of the link")
    @blp.arguments(s.EmailConfirmationSchema)
    @blp.response(200, s.AccountSchema)
    @errors(blp, 400, 404, 409)
    def confirm_email(body):
        try:
            return _json(_dates(accounts_uc.confirm_email_change(ctx.runtime, body["token"])))
        except orders_uc.NotFound as exc:
            return error_response(404, str(exc))
        except orders_uc.Conflict as exc:
            return error_response(409, str(exc))

    @blp.route("/accounts/me/orders", methods=["GET"])
    @blp.doc(security=[{"bearerAuth": []}], summary="My orders, newest first")
    @blp.response(200, s.OrderListSchema)
    @errors(blp, 401, 503)
    def my_orders():
        try:
            account_id = account_or_problem()
        except AuthProblem as exc:
            return exc.response
        with ctx.runtime.engine.connect() as conn:
            orders = OrderRepository(conn).for_account(account_id)
            from ..adapters.repository import DocumentRepository
            docs = DocumentRepository(conn)
            items = [render_order(ctx, o, docs.for_order(o.id)) for o in orders]
        return _json({"items": items})

    @blp.route("/accounts/me/deactivation", methods=["POST"])
    @blp.doc(security=[{"bearerAuth": []}], summary="Ask for my account to be deactivated (the gdpr service erases it)")
    @blp.response(202, s.DeactivationSchema)
    @errors(blp, 401, 404, 503)
    def deactivate():
        try:
            account_id = account_or_problem()
            result = accounts_uc.request_deactivation(ctx.runtime, account_id)
        except AuthProblem as exc:
            return exc.response
        except orders_uc.NotFound:
            return error_response(404, "no such account")
        return _json(_dates(result), 202)

    return blp


def staff_blueprint(runtime):
    from flask import Blueprint as FlaskBlueprint
    bp = FlaskBlueprint("orders_staff", __name__, url_prefix="/v1/staff")

    @bp.get("/orders/<order_id>/events")
    @staff_required()
    def order_events(order_id: str):
        with runtime.engine.connect() as conn:
            events = OrderEventRepository(conn).timeline(order_id)
        return jsonify({"order_id": order_id, "items": [
            {"event_id": e["event_id"], "event_type": e["event_type"], "outcome": e["outcome"],
             "status_after": e["status_after"], "occurred_at": _aware(e["occurred_at"]).isoformat()}
            for e in events]})

    return bp


def register_api(app: Flask, runtime) -> None:
    app.register_blueprint(staff_blueprint(runtime))
    proxies = int(setting(runtime.settings, "ORDERS_PROXY_COUNT") or 0)
    if proxies > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
    app.config.update(
        API_TITLE="COC orders API", API_VERSION="1", OPENAPI_VERSION=OPENAPI_VERSION, OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        # room for one 10 MB file and the form around it; the file itself is checked exactly
        MAX_CONTENT_LENGTH=orders_uc.MAX_DOCUMENT_BYTES + 512 * 1024,
    )
    ctx = Context(runtime)
    app.extensions["coc_orders"] = ctx
    api = OrdersApi(app, spec_kwargs={"info": {"description": __doc__.strip()}})
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    api.spec.components.security_scheme("orderToken", {"type": "apiKey", "in": "header", "name": "X-Order-Token"})
    api.register_blueprint(orders_blueprint(ctx))
    api.register_blueprint(accounts_blueprint(ctx))
