"""OpenAPI documents of the services: flask-smorest on each service's app, served at
``/openapi.json`` and kept in the repository (``services/<service>/openapi.json``; a test of each
service fails when the two differ).

``install_api(app, title, description)`` gives a service its ``Api`` (the shared error handlers
of ``coc_shared.http`` stay in charge), the shared error shape as the documented error answer, the
staff and customer security schemes, and the routes every service has (health, readiness, the
staff view of parked messages). Print a service's document with
``python -m coc_<service>.entrypoints.openapi > services/<service>/openapi.json``.
"""

from __future__ import annotations

import json
import sys

from flask import Flask
from flask_smorest import Api, Blueprint
from marshmallow import Schema, fields, validate

OPENAPI_VERSION = "3.0.3"
STAFF_SECURITY = [{"staffAuth": []}]
# A reason, a summary: some text besides spaces (a blank one would be refused later, as a 500).
NOT_BLANK = validate.Regexp(r"[\s\S]*\S", error="must not be blank")
CUSTOMER_SECURITY = [{"bearerAuth": []}, {"orderToken": []}]
ERRORS = {
    400: "Refused input: messages per field",
    401: "No or bad credentials",
    403: "This staff role may not do this",
    404: "No such resource",
    409: "Conflict",
    413: "Body larger than this route accepts",
    422: "Invalid input: messages per field",
    429: "Too many requests from this client",
    502: "A provider did not answer",
    503: "Not configured or a dependency is down",
}


class ErrorBodySchema(Schema):
    status = fields.Integer(required=True)
    code = fields.String(required=True)
    message = fields.String(required=True)
    correlation_id = fields.String(required=True, allow_none=True)
    fields_ = fields.Dict(data_key="fields", metadata={"description": "messages per field"})


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBodySchema, required=True)


class ServiceApi(Api):
    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self):
        """The shared handlers of coc_shared.http (one JSON error shape) stay in charge."""


def errors(blp: Blueprint, *codes: int):
    """Documents the error answers ``codes`` of a view (in the shared error shape)."""

    def decorator(view):
        for code in reversed(codes):
            view = blp.alt_response(code, schema=ErrorSchema, description=ERRORS[code])(view)
        return view

    return decorator


def install_api(app: Flask, title: str, description: str) -> Api:
    """The service's flask-smorest ``Api`` on ``app``; register its blueprints on it."""
    app.config.update(
        API_TITLE=title,
        API_VERSION="1",
        OPENAPI_VERSION=OPENAPI_VERSION,
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
    )
    api = ServiceApi(app, spec_kwargs={"info": {"description": description.strip()}})
    api.spec.components.security_scheme(
        "staffAuth",
        {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "a support staff token (coc-support issue-token)",
        },
    )
    _document_common_routes(app, api)
    return api


def security_scheme_customer(api: Api) -> None:
    """The customer's bearer token and a guest order's access token (X-Order-Token)."""
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    api.spec.components.security_scheme(
        "orderToken", {"type": "apiKey", "in": "header", "name": "X-Order-Token"}
    )


def _error_answers(*codes: int) -> dict:
    ref = {"$ref": "#/components/schemas/Error"}
    answers = {
        str(code): {"description": ERRORS[code], "content": {"application/json": {"schema": ref}}}
        for code in codes
    }
    answers["default"] = {
        "description": "Default error response",
        "content": {"application/json": {"schema": ref}},
    }
    return answers


def _document_common_routes(app: Flask, api: Api) -> None:
    """The routes coc_shared.http gives every service (plain Flask blueprints), by hand."""
    rules = {rule.endpoint: rule for rule in app.url_map.iter_rules()}
    status = {"type": "object", "properties": {"status": {"type": "string"}}}
    item = {"type": "object", "additionalProperties": True}
    query = [
        {"in": "query", "name": name, "required": False, "schema": {"type": "string"}}
        for name in ("status", "event_type", "error", "order_id")
    ]
    limit = {"type": "integer", "minimum": 1, "maximum": 1000}
    query.append({"in": "query", "name": "limit", "required": False, "schema": limit})

    def answer(description: str, schema: dict) -> dict:
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    api.spec.path(
        rule=rules["health.healthz"],
        operations={
            "get": {
                "summary": "Liveness: the process answers",
                "tags": ["health"],
                "security": [],
                "responses": {"200": answer("Alive", status), **_error_answers()},
            }
        },
    )
    api.spec.path(
        rule=rules["health.readyz"],
        operations={
            "get": {
                "summary": "Readiness: the database and the broker answer",
                "tags": ["health"],
                "security": [],
                "responses": {
                    "200": answer("Ready", status),
                    "503": answer("Not ready: which dependency is down", status),
                    **_error_answers(),
                },
            }
        },
    )
    api.spec.path(
        rule=rules["staff.list_parked"],
        operations={
            "get": {
                "summary": "Parked messages of this service (support staff)",
                "tags": ["staff"],
                "security": STAFF_SECURITY,
                "parameters": query,
                "responses": {
                    "200": answer(
                        "Parked messages",
                        {
                            "type": "object",
                            "properties": {"items": {"type": "array", "items": item}},
                        },
                    ),
                    **_error_answers(400, 401, 403, 503),
                },
            }
        },
    )
    api.spec.path(
        rule=rules["staff.show_parked"],
        operations={
            "get": {
                "summary": "One parked message with its body (support staff)",
                "tags": ["staff"],
                "security": STAFF_SECURITY,
                "responses": {
                    "200": answer("The parked message", item),
                    **_error_answers(401, 403, 404, 503),
                },
            }
        },
    )


# --------------------------------------------------------------------------- the kept document
def document(definition) -> dict:
    """The document ``definition``'s app serves (built on an in-memory database, no broker)."""
    from .config import Settings
    from .service import Runtime

    settings = Settings.from_env(
        definition.name,
        database_url="sqlite:///:memory:",
        parking_database_url="sqlite:///:memory:",
        rabbitmq_url="memory://",
    )
    runtime = Runtime(definition, settings)
    try:
        return runtime.create_app().test_client().get("/openapi.json").get_json()
    finally:
        runtime.dispose()


def render(doc: dict) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def main(definition) -> None:
    sys.stdout.write(render(document(definition)))
