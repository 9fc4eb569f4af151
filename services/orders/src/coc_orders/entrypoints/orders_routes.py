"""Routes of ``/v1/orders``: place an order, read it, upload its documents, cancel it."""

from __future__ import annotations

from flask import request
from flask_smorest import Blueprint

from ..domain import checks
from ..domain.brands import DOCUMENT_KINDS
from ..domain.errors import ValidationFailed
from ..service_layer import orders as orders_uc
from . import schemas as s
from .common import (
    client_ip,
    customer_account,
    errors,
    json_response,
    order_credentials,
    refuse_nul_characters,
    render_document,
    render_order,
)
from .context import orders_app

blp = Blueprint(
    "orders", __name__, url_prefix="/v1/orders", description="Orders of certificates of conformity"
)
blp.before_request(refuse_nul_characters)

IDEMPOTENCY_PARAM = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "schema": {"type": "string", "maxLength": 200},
    "description": "a retried POST with the same key gets the order the first one placed, not a "
    "second order (an order without an account comes back without its access token, shown only "
    "in the first answer); a guest's key is theirs together with the body",
}
# One instance, built once: given the class, webargs would build the schema and its nested schemas
# (deep copies of every field) on every request.
ORDER_REQUEST_SCHEMA = s.OrderRequestSchema()
ORDER_TOKEN_SECURITY = [{"bearerAuth": []}, {"orderToken": []}]
ORDER_TOKEN_PARAM = {
    "in": "header",
    "name": "X-Order-Token",
    "required": False,
    "schema": {"type": "string"},
    "description": "the access token of an order placed without an account",
}


def printable(value: str | None) -> str | None:
    """A header's text as it can be stored (what it is is a client's word: it is only recorded)."""
    return "".join(c for c in value if c.isprintable()) if value else None


def idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key") or None
    if key is not None and (len(key) > 200 or not key.isprintable()):
        raise ValidationFailed(
            {"Idempotency-Key": ["At most 200 printable characters."]}, "the order is not valid"
        )
    return key


@blp.route("", methods=["POST"])
@blp.doc(
    parameters=[IDEMPOTENCY_PARAM],
    security=[{}, {"bearerAuth": []}],
    summary="Place an order (guest, or linked to the account of the bearer token)",
)
@blp.arguments(ORDER_REQUEST_SCHEMA)
@blp.response(201, s.OrderSchema)
@errors(blp, 400, 401, 409, 429, 503)
def place_order(body):
    app = orders_app()
    cmd = orders_uc.PlaceOrder(
        body=body,
        account_id=customer_account(required=False),
        client_ip=client_ip(),
        user_agent=printable(request.headers.get("User-Agent")),
        idempotency_key=idempotency_key(),
    )
    placed = orders_uc.place_order(
        app.runtime,
        cmd,
        brands=app.brands,
        numbers=app.numbers,
        idempotency_ttl=app.config.idempotency_ttl,
        vies=app.vies.check,
    )
    headers = {"Location": f"/v1/orders/{placed.order.id}"}
    if placed.replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_response(render_order(placed.order, access_token=placed.access_token), 201, headers)


@blp.route("/<order_id>", methods=["GET"])
@blp.doc(
    security=ORDER_TOKEN_SECURITY,
    parameters=[ORDER_TOKEN_PARAM],
    summary="An order: status, vehicle, documents, total and timeline",
)
@blp.response(200, s.OrderSchema)
@errors(blp, 401, 404, 503)
def get_order(order_id):
    runtime = orders_app().runtime
    order = orders_uc.open_order(runtime, order_id, order_credentials())
    view = orders_uc.order_view(runtime, order.id)
    return json_response(render_order(view.order, view.documents, view.timeline))


def upload_form() -> tuple[str, object]:
    """The upload's kind and file; ValidationFailed names what is missing or wrong."""
    problems = {}
    kind = request.form.get("kind")
    if not kind:
        problems["kind"] = ["Missing data for required field."]
    elif kind not in DOCUMENT_KINDS:
        problems["kind"] = [f"Must be one of: {', '.join(DOCUMENT_KINDS)}."]
    upload = request.files.get("file")
    if upload is None:
        problems["file"] = ["Missing data for required field."]
    if problems:
        raise ValidationFailed(problems, "the upload is not valid")
    return kind, upload


@blp.route("/<order_id>/documents", methods=["POST"])
@blp.doc(
    security=ORDER_TOKEN_SECURITY,
    summary="Upload one document of the order (multipart)",
    requestBody=s.DOCUMENT_UPLOAD_BODY,
)
@blp.response(201, s.DocumentUploadedSchema)
@errors(blp, 400, 401, 404, 409, 413, 415, 422, 429, 503)
def upload_document(order_id):
    app = orders_app()
    order = orders_uc.open_order(app.runtime, order_id, order_credentials())
    cipher = app.document_cipher()
    order.check_accepts_documents()
    kind, upload = upload_form()
    data = upload.stream.read(orders_uc.MAX_DOCUMENT_BYTES + 1)
    added = orders_uc.add_document(app.runtime, app.storage, cipher, order.id, kind, data)
    return json_response(
        {
            "document": render_document(added.document),
            "documents_required": added.documents_missing,
            "documents_completed": added.completed,
        },
        201,
        {"Location": f"/v1/orders/{order.id}"},
    )


@blp.route("/<order_id>/cancellation", methods=["POST"])
@blp.doc(
    security=ORDER_TOKEN_SECURITY,
    parameters=[ORDER_TOKEN_PARAM],
    summary=(
        "Cancel the order (only before it was sent to the supplier; a payment made is refunded)"
    ),
)
@blp.arguments(s.CancellationSchema)
@blp.response(200, s.OrderSchema)
@errors(blp, 400, 401, 404, 409, 503)
def cancel_order(body, order_id):
    runtime = orders_app().runtime
    order = orders_uc.open_order(runtime, order_id, order_credentials())
    reason = " ".join(body["reason"].split())
    if not reason or not checks.is_storable_string(reason):
        message = checks.UNSTORABLE_TEXT if reason else "Must not be blank."
        raise ValidationFailed({"reason": [message]}, "the cancellation is not valid")
    orders_uc.cancel_order(runtime, order.id, reason, cancelled_by="customer")
    view = orders_uc.order_view(runtime, order.id)
    return json_response(render_order(view.order, view.documents, view.timeline))
