"""Suppliers' routes: a reply about one request, signed with the supplier's key (HMAC-SHA256 over
``X-COC-Timestamp + "." + body``), deduplicated on its ``reply_id``."""

from __future__ import annotations

import time

from flask import jsonify, request
from flask_smorest import Blueprint

from coc_shared.guards import InputRefused, body_limit, loads
from coc_shared.http import current_runtime
from coc_shared.openapi import errors

from ..contract import SIGNATURE_HEADER, TIMESTAMP_HEADER, ReplyAnswer
from ..service_layer.authentication import verify_supplier_call
from ..service_layer.replies import InvalidReply, receive_reply
from . import schemas as s
from .common import REPLY_BODY_LIMIT

suppliers = Blueprint(
    "suppliers", __name__, url_prefix="/v1/suppliers", description="Suppliers' replies"
)


@suppliers.route("/<code>/replies", methods=["POST"])
@suppliers.doc(
    security=[{}],
    summary="A supplier's reply about one request, signed with its key",
    parameters=s.SIGNATURE_PARAMS,
    requestBody=s.REPLY_BODY,
)
@suppliers.response(200, ReplyAnswer)
@errors(suppliers, 400, 401, 404, 413, 422, 503)
@body_limit(REPLY_BODY_LIMIT)
def supplier_reply(code: str):
    runtime = current_runtime()
    raw = request.get_data(cache=True)
    verify_supplier_call(
        runtime.config,
        code,
        request.headers.get(TIMESTAMP_HEADER, ""),
        request.headers.get(SIGNATURE_HEADER, ""),
        raw,
        time.time(),
    )
    result = receive_reply(runtime, reply_body(raw, code), "http")
    return jsonify({"status": result.status})


def reply_body(raw: bytes, code: str) -> dict:
    """The reply in ``raw``, a JSON object naming supplier ``code`` (the one whose key signed it);
    refused with 400 when it is no JSON, ``InvalidReply`` when it is no such object."""
    try:
        body = loads(raw)
    except ValueError:
        raise InputRefused(400, "the body is not JSON", {"body": ["Not valid JSON."]}) from None
    if not isinstance(body, dict):
        raise InvalidReply("the reply is not valid", {"body": ["Expected an object."]})
    if body.get("supplier") != code:
        raise InvalidReply(
            "the reply is not valid", {"supplier": [f"Must be {code}, as in the path."]}
        )
    return body
