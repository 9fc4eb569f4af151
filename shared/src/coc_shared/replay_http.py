"""Staff endpoints of safe replay (``replay``), on every service beside its parked messages:

* ``POST /v1/staff/parked/<id>/dry-run`` — what the handler would do with one message;
* ``POST /v1/staff/parked/dry-run`` ``{event_type, error_type, limit?}`` — a group's dry run;
* ``POST /v1/staff/parked/replays`` ``{event_type, error_type, reason, batch_size?}`` — starts a
  progressive replay of the group: 202 with the run's report (``id``);
* ``GET /v1/staff/parked/replays/<run_id>`` — the run's report (polled by the console).

Support and admin roles, as the command line's replay; the staff member is the token's."""

from __future__ import annotations

import re

from flask import Blueprint, g, jsonify, request

from . import replay
from .http import error_response, staff_required

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_TEXT_FIELDS = {"event_type": 100, "error_type": 300}


def _group_body(body) -> tuple[dict, dict]:
    """(values, field messages) of a group's body: its event type and error class."""
    body = body if isinstance(body, dict) else {}
    values, fields = {}, {}
    for name, longest in _TEXT_FIELDS.items():
        value = body.get(name)
        if not isinstance(value, str) or not value.strip() or len(value) > longest:
            fields[name] = [f"Required: some text, at most {longest} characters."]
        else:
            values[name] = value.strip()
    return values, fields


def _whole(body, name: str, default: int, highest: int, fields: dict) -> int:
    value = body.get(name, default) if isinstance(body, dict) else default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= highest:
        fields[name] = [f"A whole number from 1 to {highest}."]
        return default
    return value


def replay_blueprint(runtime) -> Blueprint:
    bp = Blueprint("staff_replay", __name__, url_prefix="/v1/staff/parked")

    @bp.post("/<int:parked_id>/dry-run")
    @staff_required()
    def dry_run_one(parked_id: int):
        try:
            result = replay.dry_run(runtime, parked_id)
        except LookupError:
            return error_response(404, "no such parked message")
        except replay.NotReplayable as exc:
            return error_response(409, str(exc))
        runtime.parking.record_action(g.staff, "dry_run", str(parked_id), None, result)
        return jsonify(result)

    @bp.post("/dry-run")
    @staff_required()
    def dry_run_group():
        body = request.get_json(silent=True)
        values, fields = _group_body(body)
        limit = _whole(body, "limit", replay.DRY_RUN_LIMIT, 1000, fields)
        if fields:
            return error_response(422, "invalid body", fields)
        summary = replay.dry_run_group(runtime, values["event_type"], values["error_type"], limit)
        runtime.parking.record_action(
            g.staff, "dry_run", f"{runtime.definition.name}:{values['event_type']}", None, values
        )
        return jsonify(summary)

    @bp.post("/replays")
    @staff_required()
    def start_replay():
        body = request.get_json(silent=True)
        values, fields = _group_body(body)
        reason = body.get("reason") if isinstance(body, dict) else None
        if not isinstance(reason, str) or not reason.strip() or len(reason) > 500:
            fields["reason"] = ["Required: some text, at most 500 characters."]
        batch_size = _whole(body, "batch_size", replay.BATCH_SIZE, 1000, fields)
        if fields:
            return error_response(422, "invalid body", fields)
        try:
            started = replay.start_run(runtime, g.staff, reason, batch_size=batch_size, **values)
        except LookupError:
            return error_response(404, "no parked message in this group")
        return jsonify(started), 202

    @bp.get("/replays/<run_id>")
    @staff_required()
    def replay_report(run_id: str):
        found = replay.report(runtime, run_id) if _RUN_ID.match(run_id) else None
        if found is None:
            return error_response(404, "no such replay run")
        return jsonify(found)

    return bp
