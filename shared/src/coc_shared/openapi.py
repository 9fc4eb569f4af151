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
    fields_ = fields.Dict(
        data_key="fields", metadata={"description": "messages per field (nested like the body)"}
    )


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


def _answer(description: str, schema: dict, media: str = "application/json") -> dict:
    return {"description": description, "content": {media: {"schema": schema}}}


def _object(optional: tuple[str, ...] = (), **properties) -> dict:
    """A JSON object with ``properties`` (each there but the ``optional`` ones), and maybe more."""
    required = [name for name in properties if name not in optional]
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": True,
    }


def _text(longest: int, **extra) -> dict:
    """Some text besides spaces, at most ``longest`` characters."""
    return {"type": "string", "minLength": 1, "maxLength": longest, "pattern": r"\S", **extra}


def _json_body(required: list[str], **properties) -> dict:
    schema = {"type": "object", "properties": properties, "required": required}
    return {"required": True, "content": {"application/json": {"schema": schema}}}


_TEXT = {"type": "string"}
_MAYBE_TEXT = {"type": "string", "nullable": True}
_TIME = {"type": "string", "format": "date-time"}
_COUNT = {"type": "integer", "minimum": 0}
_WHOLE = {"type": "integer", "minimum": 1, "maximum": 1000}
_ITEM = {"type": "object", "additionalProperties": True}
# a parked message's group: its event type ('?' for none) and its error class
_GROUP_FIELDS = {
    "event_type": _text(100, description="the event type, '?' for a message without one"),
    "error_type": _text(300, description="the error's class, e.g. KeyError"),
}
_DRY_RUN = _object(
    ("error_type", "error", "where"),  # a failure's
    id={"type": "integer"},
    event_id=_MAYBE_TEXT,
    event_type=_MAYBE_TEXT,
    outcome={"type": "string", "enum": ["would_succeed", "would_fail", "already_handled"]},
    emits={"type": "array", "items": _TEXT, "description": "the event types it would emit"},
    error_type=_TEXT,
    error=_TEXT,
    where=_TEXT,
)
_DRY_RUN_SUMMARY = _object(
    event_type=_TEXT,
    error_type=_TEXT,
    count=_COUNT,
    tried=_COUNT,
    would_succeed=_COUNT,
    would_fail=_COUNT,
    already_handled=_COUNT,
    emits={"type": "object", "additionalProperties": {"type": "integer"}},
    errors={"type": "object", "additionalProperties": _ITEM},
    items={"type": "array", "items": _DRY_RUN},
)
_REPLAY_REPORT = _object(
    ("stopped_because", "finished_at"),  # once finished
    id=_TEXT,
    service=_MAYBE_TEXT,
    event_type=_MAYBE_TEXT,
    error_type=_MAYBE_TEXT,
    by=_TEXT,
    role=_MAYBE_TEXT,
    reason=_MAYBE_TEXT,
    started_at=_TIME,
    count=_COUNT,
    batches={"type": "array", "items": _ITEM},
    replayed=_COUNT,
    handled=_COUNT,
    failed_again={"type": "array", "items": _ITEM},
    status={"type": "string", "enum": ["running", "completed", "stopped", "abandoned"]},
    stopped_because={"nullable": True},
    finished_at=_TIME,
)


def _staff(summary: str, responses: dict, *codes: int, **operation) -> dict:
    """A staff operation (tag ``staff``, a staff token) answering ``responses`` or ``codes``."""
    return {
        "summary": summary,
        "tags": ["staff"],
        "security": STAFF_SECURITY,
        **operation,
        "responses": {**responses, **_error_answers(*codes)},
    }


def _document_common_routes(app: Flask, api: Api) -> None:
    """The routes coc_shared.http gives every service (plain Flask blueprints), by hand."""
    rules = {rule.endpoint: rule for rule in app.url_map.iter_rules()}
    status = {"type": "object", "properties": {"status": {"type": "string"}}}
    api.spec.path(
        rule=rules["health.healthz"],
        operations={
            "get": {
                "summary": "Liveness: the process answers",
                "tags": ["health"],
                "security": [],
                "responses": {"200": _answer("Alive", status), **_error_answers()},
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
                    "200": _answer("Ready", status),
                    "503": _answer("Not ready: which dependency is down", status),
                    **_error_answers(),
                },
            }
        },
    )
    api.spec.path(
        rule=rules["health.metrics"],
        operations={
            "get": {
                "summary": "Prometheus metrics (text exposition format)",
                "tags": ["health"],
                "security": [],
                "responses": {
                    "200": _answer("The metrics", _TEXT, "text/plain"),
                    **_error_answers(),
                },
            }
        },
    )
    if "staff.list_parked" in rules:  # not in an application without events (the console)
        _document_parked_routes(rules, api)
        _document_replay_routes(rules, api)


def _document_parked_routes(rules: dict, api: Api) -> None:
    """coc_shared.http's staff view of parked messages and coc_shared.parked_summary's."""
    query = [
        {"in": "query", "name": name, "required": False, "schema": {"type": "string"}}
        for name in ("status", "event_type", "error", "order_id")
    ]
    query.append({"in": "query", "name": "limit", "required": False, "schema": _WHOLE})
    items = {"type": "object", "properties": {"items": {"type": "array", "items": _ITEM}}}
    api.spec.path(
        rule=rules["staff.list_parked"],
        operations={
            "get": _staff(
                "Parked messages of this service (support staff)",
                {"200": _answer("Parked messages", items)},
                *(400, 401, 403, 503),
                parameters=query,
            )
        },
    )
    api.spec.path(
        rule=rules["staff.show_parked"],
        operations={
            "get": _staff(
                "One parked message with its body (support staff)",
                {"200": _answer("The parked message", _ITEM)},
                *(401, 403, 404, 503),
            )
        },
    )
    reason = _text(500, description="why it is given up (recorded in the support actions)")
    api.spec.path(
        rule=rules["staff.discard_parked"],
        operations={
            "post": _staff(
                "Give up a parked message, with a reason (support staff)",
                {"200": _answer("Discarded", _object(id={"type": "integer"}, status=_TEXT))},
                *(400, 401, 403, 404, 409, 422, 503),
                requestBody=_json_body(["reason"], reason=reason),
            )
        },
    )
    group = _object(
        event_type=_TEXT, error_type=_MAYBE_TEXT, count=_COUNT, first_seen=_TIME, last_seen=_TIME
    )
    summary = _object(
        service=_TEXT,
        groups={"type": "array", "items": group},
        per_hour={"type": "array", "items": _object(hour=_TIME, count=_COUNT)},
    )
    api.spec.path(
        rule=rules["parked_summary.summary"],
        operations={
            "get": _staff(
                "The groups of parked messages waiting for a decision (event type, error class: "
                "count, first and last failure) and the messages parked in each of the last hours",
                {"200": _answer("The summary", summary)},
                *(401, 403, 503),
            )
        },
    )
    group_query = [
        {"in": "query", "name": name, "required": True, "schema": schema}
        for name, schema in (
            ("event_type", {"type": "string", "minLength": 1, "maxLength": 100}),
            ("error_type", {"type": "string", "minLength": 1, "maxLength": 300}),
        )
    ]
    group_query.append({"in": "query", "name": "limit", "required": False, "schema": _WHOLE})
    api.spec.path(
        rule=rules["parked_summary.messages"],
        operations={
            "get": _staff(
                "One group's parked messages, the oldest first ('?' as event type: none)",
                {"200": _answer("The group's messages", items)},
                *(400, 401, 403, 503),
                parameters=group_query,
            )
        },
    )


def _document_replay_routes(rules: dict, api: Api) -> None:
    """coc_shared.replay_http: dry runs (nothing changes) and progressive replays of a group."""
    api.spec.path(
        rule=rules["staff_replay.dry_run_one"],
        operations={
            "post": _staff(
                "What the handler would do with a parked message (a rolled-back dry run)",
                {"200": _answer("The dry run's result", _DRY_RUN)},
                *(401, 403, 404, 409, 503),
            )
        },
    )
    api.spec.path(
        rule=rules["staff_replay.dry_run_group"],
        operations={
            "post": _staff(
                "The dry run of a group of parked messages (event type, error class)",
                {"200": _answer("How many would succeed or fail, and why", _DRY_RUN_SUMMARY)},
                *(400, 401, 403, 422, 503),
                requestBody=_json_body(["event_type", "error_type"], **_GROUP_FIELDS, limit=_WHOLE),
            )
        },
    )
    api.spec.path(
        rule=rules["staff_replay.start_replay"],
        operations={
            "post": _staff(
                "Start a progressive replay of a group (1, 10, then batch_size at a time; it "
                "stops at the first message failing again)",
                {"202": _answer("Started: the run's report (its id)", _REPLAY_REPORT)},
                *(400, 401, 403, 404, 422, 503),
                requestBody=_json_body(
                    ["event_type", "error_type", "reason"],
                    **_GROUP_FIELDS,
                    reason=_text(500, description="why (recorded in the support actions)"),
                    batch_size=_WHOLE,
                ),
            )
        },
    )
    api.spec.path(
        rule=rules["staff_replay.replay_report"],
        operations={
            "get": _staff(
                "A replay run's report (who, why, its batches, its outcome)",
                {"200": _answer("The run's report", _REPLAY_REPORT)},
                *(401, 403, 404, 503),
            )
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
