"""The console's pages of safe replay: a group's dry run, the start of its progressive replay
(reason required) and the run's report, which reloads itself while the run goes on (no script)."""

from __future__ import annotations

from flask import Blueprint, g, redirect, request, url_for

from ..domain.model import InputError
from ..service_layer import failures, replays
from .routes import client, page, runtime, signed_in

bp = Blueprint("replay", __name__)


def _group_page(service: str, status: int = 200, **context):
    event_type = request.form.get("event_type", "")
    error_type = request.form.get("error_type", "")
    items, problems = failures.group_messages(client(), g.staff, service, event_type, error_type)
    return page(
        "group.html",
        status,
        service=service,
        event_type=event_type,
        error_type=error_type,
        items=items,
        problems=problems,
        **context,
    )


@bp.post("/failures/<service>/dry-run")
@signed_in
def dry_run(service: str):
    form = request.form
    summary = replays.dry_run(
        runtime(),
        client(),
        g.staff,
        service,
        form.get("event_type", ""),
        form.get("error_type", ""),
    )
    return _group_page(service, dry=summary)


@bp.post("/failures/<service>/replays")
@signed_in
def start_replay(service: str):
    form = request.form
    try:
        started = replays.start(
            runtime(),
            client(),
            g.staff,
            service,
            form.get("event_type", ""),
            form.get("error_type", ""),
            form.get("reason", ""),
        )
    except InputError as exc:
        return _group_page(service, 422, replay_errors=exc.fields)
    return redirect(url_for("replay.report", service=service, run_id=started["id"]))


@bp.get("/failures/<service>/replays/<run_id>")
@signed_in
def report(service: str, run_id: str):
    found = replays.report(runtime(), client(), g.staff, service, run_id)
    if found is None:
        return page("error.html", 404, message=f"No replay run {run_id} at {service}.")
    return page(
        "replay.html", service=service, run=found, finished=found["status"] in replays.FINISHED
    )
