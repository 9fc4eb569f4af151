"""Bounded inputs: what every service's HTTP API refuses before a view sees the request.

``coc_shared.http.install_common`` installs these on every app (orders, payments and the thin
services alike), as one ``before_request`` hook and the app's JSON provider:

* **Size**, per route: a body larger than the route's limit is refused with 413 before it is read
  (``Content-Length``) or as soon as it goes past the limit (chunked bodies: Flask 3.1's per-request
  ``request.max_content_length``). A view declares its limit with ``@body_limit(bytes)`` (or the
  app lists endpoints in ``app.config["COC_BODY_LIMITS"]``); otherwise ``DEFAULT_BODY_LIMIT``
  (1 MiB, JSON APIs), except a multipart upload, held to the app's own ``MAX_CONTENT_LENGTH``
  when it sets one (orders: one 10 MB document and its form).
* **JSON** (``application/json`` and every ``application/*+json``): UTF-8 only, nesting at most
  ``MAX_JSON_DEPTH`` levels, numbers of at most ``MAX_NUMBER_DIGITS`` digits, no ``NaN`` or
  ``Infinity``; refused with 400 and a field message, never a RecursionError or ValueError
  raised in a view.
* **Numbers in paths**: ``<int:…>`` matches 0 to 2**63 - 1 only (a PostgreSQL bigint), so a
  larger one is a 404 like any unknown resource, not a database error.
* **Text no database can store**: a NUL character or a lone surrogate in a JSON string or key, a
  form field (URL-encoded or multipart, files excepted), a query parameter or a text body is
  refused with 400 naming the field; a raw NUL byte in any body but a multipart one likewise; a
  path holding a NUL answers 404 (no resource has such a name).

Refusals are ``InputRefused`` (an ``HTTPException``), answered in the shared JSON error shape.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from urllib.parse import parse_qsl

from flask import Flask, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.routing import IntegerConverter

KIB = 1024
MIB = 1024 * KIB
DEFAULT_BODY_LIMIT = 1 * MIB  # JSON APIs
CALLBACK_BODY_LIMIT = 64 * KIB  # providers' notifications
MAX_JSON_DEPTH = 32
MAX_NUMBER_DIGITS = 30
BIGINT_MAX = 2**63 - 1
_MAX_NUMBER_TEXT = 2 * MAX_NUMBER_DIGITS  # a float's text: digits, sign, point and exponent

# What PostgreSQL text (and any sane consumer) cannot take: NUL, and UTF-16 halves alone.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_NUL_MESSAGE = "NUL characters are not allowed."
_SURROGATE_MESSAGE = "Not valid Unicode text (a lone surrogate)."
_FORM = "application/x-www-form-urlencoded"
_MULTIPART = "multipart/form-data"
_TEXT_TYPES = ("application/xml", "application/javascript", "application/csv")


class InputRefused(HTTPException):
    """A request refused by a guard: its status, message and per-field messages."""

    def __init__(self, status: int, message: str, fields: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.code = status
        self.fields = fields or {}


class JSONLimitError(ValueError):
    """A JSON document beyond the limits (or holding unstorable text); ``fields`` say where."""

    def __init__(self, message: str, fields: dict[str, list[str]]):
        super().__init__(message)
        self.fields = fields


# --------------------------------------------------------------------------- size per route
def body_limit(max_bytes: int) -> Callable:
    """View decorator: the largest body this route accepts (413 beyond it, before reading)."""
    if max_bytes < 0:
        raise ValueError("a body limit is a number of bytes >= 0")

    def decorator(view):
        view.coc_body_limit = max_bytes
        return view

    return decorator


def request_body_limit(app: Flask) -> int:
    """The body limit of the current request's route."""
    declared = (app.config.get("COC_BODY_LIMITS") or {}).get(request.endpoint)
    if declared is None:
        view = app.view_functions.get(request.endpoint) if request.endpoint else None
        declared = getattr(view, "coc_body_limit", None)
        if declared is None and getattr(view, "view_class", None) is not None:
            method = getattr(view.view_class, request.method.lower(), None)
            declared = getattr(method, "coc_body_limit", None)
    if declared is not None:
        return declared
    if request.mimetype == _MULTIPART and app.config.get("MAX_CONTENT_LENGTH"):
        return app.config["MAX_CONTENT_LENGTH"]
    return app.config.get("COC_DEFAULT_BODY_LIMIT") or DEFAULT_BODY_LIMIT


# --------------------------------------------------------------------------- JSON
def _number_too_long(text: str) -> JSONLimitError:
    return JSONLimitError(
        "a number is too long",
        {"body": [f"Numbers may have at most {MAX_NUMBER_DIGITS} digits."]},
    )


def _parse_int(text: str) -> int:
    if len(text) - text.startswith("-") > MAX_NUMBER_DIGITS:
        raise _number_too_long(text)
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > _MAX_NUMBER_TEXT:
        raise _number_too_long(text)
    value = float(text)
    if not math.isfinite(value):
        raise JSONLimitError("a number is too large", {"body": ["A number is too large."]})
    return value


def _parse_constant(name: str):
    raise JSONLimitError("not JSON", {"body": [f"{name} is not a JSON value."]})


def _unstorable_message(text: str | None) -> str | None:
    found = _UNSTORABLE.search(text) if text else None
    if found is None:
        return None
    return _NUL_MESSAGE if found.group() == "\x00" else _SURROGATE_MESSAGE


def _field(path: tuple) -> str:
    return ".".join(str(p) for p in path) or "body"


def check_json_value(value) -> None:
    """Nesting depth and unstorable text of a parsed document (iteratively: no recursion)."""
    stack = [(value, 1, ())]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, str):
            problem = _unstorable_message(item)
            if problem:
                raise JSONLimitError(
                    "a text holds an unstorable character", {_field(path): [problem]}
                )
            continue
        if not isinstance(item, (dict, list)):
            continue
        if depth > MAX_JSON_DEPTH:
            raise JSONLimitError(
                "the document is nested too deep",
                {"body": [f"Nested deeper than {MAX_JSON_DEPTH} levels."]},
            )
        if isinstance(item, dict):
            for key, child in item.items():
                problem = _unstorable_message(key)
                if problem:
                    raise JSONLimitError(
                        "a key holds an unstorable character", {_field(path): [problem]}
                    )
                stack.append((child, depth + 1, (*path, key)))
        else:
            stack.extend((child, depth + 1, (*path, i)) for i, child in enumerate(item))


def loads(text: str | bytes, **kwargs):
    """``json.loads`` within the limits: JSONLimitError (a ValueError) beyond them; JSON that is
    not well formed raises ``json.JSONDecodeError`` as usual."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise JSONLimitError("not UTF-8", {"body": ["JSON must be UTF-8 text."]}) from None
    kwargs.setdefault("parse_int", _parse_int)
    kwargs.setdefault("parse_float", _parse_float)
    kwargs.setdefault("parse_constant", _parse_constant)
    try:
        value = json.loads(text, **kwargs)
    except RecursionError:
        raise JSONLimitError(
            "the document is nested too deep",
            {"body": [f"Nested deeper than {MAX_JSON_DEPTH} levels."]},
        ) from None
    check_json_value(value)
    return value


class GuardedJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, reading with ``loads`` (``request.get_json()`` and ``app.json``)."""

    def loads(self, s: str | bytes, **kwargs):
        return loads(s, **kwargs)


def install_json_provider(app: Flask) -> None:
    """Replace ``app.json`` by the guarded provider, keeping its output settings."""
    previous = app.json
    provider = GuardedJSONProvider(app)
    for name in ("sort_keys", "ensure_ascii", "compact", "mimetype"):
        if hasattr(previous, name):
            setattr(provider, name, getattr(previous, name))
    app.json = provider


def is_json_mimetype(mimetype: str) -> bool:
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    )


# --------------------------------------------------------------------------- the request
def _refuse_text(where: str, text: str, status: int = 400) -> None:
    problem = _unstorable_message(text)
    if problem:
        raise InputRefused(
            status, f"the {where} holds a character that cannot be stored", {where: [problem]}
        )


def _check_path() -> None:
    if _UNSTORABLE.search(request.path):
        raise InputRefused(
            404, "no such resource: the path holds a NUL character", {"path": [_NUL_MESSAGE]}
        )


def _check_pairs(pairs, what: str, where: str) -> None:
    """Names and values of a query string or a form: InputRefused naming the field (``where``
    when the name itself is at fault)."""
    for key, value in pairs:
        problem = _unstorable_message(key) or _unstorable_message(value)
        if problem:
            field = where if _unstorable_message(key) else key
            raise InputRefused(
                400, f"{what} holds a character that cannot be stored", {field: [problem]}
            )


def _check_query() -> None:
    _check_pairs(request.args.items(multi=True), "the query string", "query")


def _has_body() -> bool:
    return bool(request.content_length) or "chunked" in (
        request.headers.get("Transfer-Encoding", "").lower()
    )


def _check_multipart() -> None:
    _check_pairs(request.form.items(multi=True), "a form field", "body")
    for key, upload in request.files.items(multi=True):
        problem = _unstorable_message(key) or _unstorable_message(upload.filename)
        if problem:
            raise InputRefused(
                400, "a file's name holds a character that cannot be stored", {"body": [problem]}
            )


def _check_form(data: bytes) -> None:
    try:
        pairs = parse_qsl(
            data.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="strict"
        )
    except UnicodeDecodeError:
        raise InputRefused(
            400, "the form is not UTF-8", {"body": ["Form fields must be UTF-8 text."]}
        ) from None
    _check_pairs(pairs, "a form field", "body")


def _check_text(data: bytes) -> None:
    charset = request.mimetype_params.get("charset") or "utf-8"
    try:
        text = data.decode(charset)
    except (LookupError, UnicodeDecodeError):
        raise InputRefused(
            400, f"the body is not {charset} text", {"body": [f"Not valid {charset} text."]}
        ) from None
    _refuse_text("body", text)


def _check_body(limit: int) -> None:
    mimetype = request.mimetype
    if mimetype == _MULTIPART:
        _check_multipart()
        return
    data = request.get_data(cache=True)  # at most limit + 1 bytes (request.max_content_length)
    if len(data) > limit:
        raise RequestEntityTooLarge()
    if b"\x00" in data:
        raise InputRefused(
            400, "the body holds a NUL byte", {"body": ["NUL bytes are not allowed."]}
        )
    if is_json_mimetype(mimetype):
        try:
            loads(data)
        except JSONLimitError as exc:
            raise InputRefused(400, f"the JSON body is refused: {exc}", exc.fields) from None
        except ValueError:
            pass  # not well-formed JSON: the view's parser answers it
    elif mimetype == _FORM:
        _check_form(data)
    elif mimetype.startswith("text/") or mimetype in _TEXT_TYPES or mimetype.endswith("+xml"):
        _check_text(data)


def guard_request(app: Flask) -> None:
    """The ``before_request`` check of every request (raises ``InputRefused``)."""
    limit = request_body_limit(app)
    # One byte more than the limit: werkzeug's limited stream stops quietly at its limit, so a
    # chunked body one byte over it must be read to be told from one that fits.
    request.max_content_length = limit + 1
    if (request.content_length or 0) > limit:
        raise RequestEntityTooLarge()  # refused before reading
    _check_path()
    _check_query()
    if _has_body():
        _check_body(limit)


class BigintConverter(IntegerConverter):
    """``<int:…>`` within a PostgreSQL bigint (werkzeug's own takes any number of digits)."""

    def __init__(self, map, fixed_digits=0, min=0, max=BIGINT_MAX, signed=False):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def install_guards(app: Flask) -> None:
    """On ``app`` (before its routes are added): the guarded JSON provider, the bounded ``int``
    converter, and the check of every request."""
    app.url_map.converters["int"] = BigintConverter
    install_json_provider(app)
    app.before_request(lambda: guard_request(app))
