"""Safe replay of parked messages (issue 14, point 3), the same in every service.

* **Dry run**: the service's own handler runs on a parked event inside a transaction that is
  rolled back: nothing of it is kept (no state change, no outbox row, no inbox row), and the key
  store is left alone (the handler gets no ``keys``: nothing sealed, no key made or destroyed);
  what is outside the database (a file of the document store) is changed only after a commit
  (``HandlerContext.after_commit``), which a dry run drops.
  The answer says what it would do (the event types it would emit) or the error it would raise
  again. A group (event type and error class) is dried message by message.
* **Progressive replay**: a run sends the group's messages back to their queue in batches of 1,
  then 10, then ``batch_size``, and waits after each batch for every message's outcome (its inbox
  row: handled; a new parked row: failed again; the consumer parks a run's message again after
  its quick attempts, without delayed rounds). The first batch with a message failing again, or
  without an outcome within ``outcome_timeout``, stops the run. The run is a thread of the service
  process that started it; what it did is in the support actions log under ``replay-run:<id>``
  (who, why, the ids of each batch, the outcome), which is also where its report is read from, so
  any process of the service can answer for it.
"""

from __future__ import annotations

import threading
import time
import traceback
import uuid
from datetime import timedelta

from sqlalchemy import select

from .bus import Publisher
from .catalogue import UnknownEventType, validate_event
from .consumer import HandlerContext
from .db import is_infrastructure_error
from .envelope import Event, utcnow
from .keystore import open_event
from .logging import get_logger, scrub_text
from .tokens import Actor

log = get_logger(__name__)

FIRST_BATCHES = (1, 10)
BATCH_SIZE = 100
OUTCOME_TIMEOUT = 60.0  # seconds a batch may wait for its outcomes before the run stops
DRY_RUN_LIMIT = 100  # messages of a group dried at most in one request
SHOWN_FAILURES = 20


class NotReplayable(ValueError):
    """The message is not waiting for a decision (replayed or discarded already)."""


# ---------------------------------------------------------------------------------- dry run
def dry_run(runtime, parked_id: int) -> dict:
    """What the handler would do with parked message ``parked_id`` of this service (LookupError:
    no such message here; NotReplayable: it is not parked any more)."""
    row = runtime.parking.get(parked_id)
    if row is None or row["service"] != runtime.definition.name:
        raise LookupError(f"no parked message {parked_id}")
    if row["status"] != "parked":
        raise NotReplayable(f"parked message {parked_id} is already {row['status']}")
    return _dry_run_row(runtime, row)


def dry_run_group(runtime, event_type: str, error_type: str, limit: int = DRY_RUN_LIMIT) -> dict:
    """The dry run of a group's first ``limit`` messages, summed up: how many would succeed or
    fail again, the event types they would emit, the errors they would raise (with an example)."""
    filters = {"service": runtime.definition.name, "event_type": event_type}
    filters["error_type"] = error_type
    ids = runtime.parking.ids(**filters)
    summary = {
        "event_type": event_type,
        "error_type": error_type,
        "count": len(ids),
        "tried": 0,
        "would_succeed": 0,
        "would_fail": 0,
        "already_handled": 0,
        "emits": {},
        "errors": {},
        "items": [],
    }
    for parked_id in ids[:limit]:
        row = runtime.parking.get(parked_id)
        if row is None or row["status"] != "parked":
            continue
        result = _dry_run_row(runtime, row)
        summary["tried"] += 1
        summary[result["outcome"]] += 1
        for event_type_emitted in result.get("emits", []):
            summary["emits"][event_type_emitted] = summary["emits"].get(event_type_emitted, 0) + 1
        if result["outcome"] == "would_fail":
            error = summary["errors"].setdefault(
                result["error_type"], {"count": 0, "example_id": row["id"], "message": ""}
            )
            error["count"] += 1
            error["message"] = error["message"] or result["error"]
        if len(summary["items"]) < SHOWN_FAILURES:
            summary["items"].append(result)
    return summary


def _dry_run_row(runtime, row: dict) -> dict:
    result = {"id": row["id"], "event_id": row["event_id"], "event_type": row["event_type"]}
    try:
        event = _decoded(runtime, row)
    except Exception as exc:
        if is_infrastructure_error(exc):
            raise
        return {**result, **_failure(exc)}
    with runtime.engine.connect() as conn:
        transaction = conn.begin()
        try:
            if _handled(runtime, conn, [event.id]):
                return {**result, "outcome": "already_handled", "emits": []}
            # keys=None: the dry run neither seals (no key made) nor destroys keys (erasure);
            # dry_run: what the handler registers to run after the commit (a stored file
            # deleted) is dropped
            ctx = HandlerContext(
                conn, event, runtime.definition.name, runtime.outbox, None, None, dry_run=True
            )
            runtime.handlers[event.type](event, ctx)
            ctx.flush()
            return {**result, "outcome": "would_succeed", "emits": [e.type for e in ctx.emitted]}
        except Exception as exc:
            if is_infrastructure_error(exc):
                raise
            return {**result, **_failure(exc)}
        finally:
            transaction.rollback()


def _decoded(runtime, row: dict) -> Event:
    """The parked body as the consumer would hand it to the handler (opened, validated)."""
    event = Event.from_json(bytes(row["body"]))
    if event.type not in runtime.handlers:
        raise UnknownEventType(f"{runtime.definition.name} has no handler for {event.type!r}")
    if event.sealed is not None:
        if runtime.keys is None:
            open_event(event, {})  # an erased marker opens; a sealed part does not (SealBroken)
        else:
            runtime.keys.unseal_event(event)
    validate_event(event)
    return event


def _failure(exc: BaseException) -> dict:
    frames = traceback.format_exception(exc)
    return {
        "outcome": "would_fail",
        "error_type": type(exc).__name__,
        "error": scrub_text(str(exc))[:1000],  # shown to the support role: no address, no phone
        "where": scrub_text(frames[-2].strip())[:500] if len(frames) > 1 else "",
        "emits": [],
    }


def _handled(runtime, conn, event_ids: list[str]) -> set[str]:
    inbox = runtime.inbox
    queue = runtime.broker.queue_name(runtime.definition.name)
    return set(
        conn.execute(
            select(inbox.c.event_id).where(inbox.c.queue == queue, inbox.c.event_id.in_(event_ids))
        ).scalars()
    )


# ------------------------------------------------------------------------ progressive replay
def batches(ids: list[int], batch_size: int = BATCH_SIZE) -> list[list[int]]:
    """1, then 10, then ``batch_size`` at a time."""
    out, start = [], 0
    for size in (*FIRST_BATCHES, *([batch_size] * len(ids))):
        if start >= len(ids):
            break
        out.append(ids[start : start + size])
        start += size
    return out


def target(run_id: str) -> str:
    return f"replay-run:{run_id}"


def start_run(
    runtime,
    actor: Actor,
    reason: str,
    event_type: str,
    error_type: str,
    batch_size: int = BATCH_SIZE,
    outcome_timeout: float = OUTCOME_TIMEOUT,
) -> dict:
    """Start the progressive replay of a group (its parked messages now, oldest first) in a thread
    of this process; returns the run's first report (LookupError: nothing to replay)."""
    if not reason or not reason.strip():
        raise ValueError("a reason is required to replay parked messages")
    service = runtime.definition.name
    ids = runtime.parking.ids(service=service, event_type=event_type, error_type=error_type)
    if not ids:
        raise LookupError("no parked message in this group")
    run_id = uuid.uuid4().hex
    runtime.parking.record_action(
        actor,
        "replay_run_started",
        target(run_id),
        reason.strip(),
        {
            "service": service,
            "event_type": event_type,
            "error_type": error_type,
            "ids": ids,
            "batch_size": batch_size,
            "outcome_timeout": outcome_timeout,
        },
    )
    thread = threading.Thread(
        target=run,
        args=(runtime, run_id, actor, reason.strip(), ids, batch_size, outcome_timeout),
        name=f"replay-{run_id[:8]}",
        daemon=True,
    )
    thread.start()
    return report(runtime, run_id)


def run(runtime, run_id, actor, reason, ids, batch_size, outcome_timeout) -> dict:
    """The run itself: batch after batch until a message fails again, a batch has no outcome in
    time, or every message is replayed; the outcome recorded last."""
    publisher = Publisher(runtime.broker)
    replayed, handled, failed_again, stopped = 0, 0, [], None
    try:
        for number, batch in enumerate(batches(ids, batch_size), start=1):
            outcome = _replay_batch(
                runtime, run_id, actor, reason, batch, publisher, outcome_timeout
            )
            runtime.parking.record_action(
                actor, "replay_batch", target(run_id), reason, {"batch": number, **outcome}
            )
            replayed += len(outcome["replayed"])
            handled += outcome["handled"]
            failed_again += outcome["failed_again"]
            if outcome["failed_again"]:
                stopped = "failed_again"
            elif outcome["waiting"]:
                stopped = "no_outcome"
            if stopped:
                break
    except Exception as exc:
        log.exception("replay.run_failed", run=run_id)
        stopped = f"error: {type(exc).__name__}: {scrub_text(str(exc))[:300]}"
    finally:
        publisher.close()
    outcome = {
        "outcome": "stopped" if stopped else "completed",
        "stopped_because": stopped,
        "replayed": replayed,
        "handled": handled,
        "failed_again": failed_again[:SHOWN_FAILURES],
        "failed_again_count": len(failed_again),
    }
    runtime.parking.record_action(actor, "replay_run_finished", target(run_id), reason, outcome)
    return outcome


def _replay_batch(runtime, run_id, actor, reason, batch, publisher, timeout) -> dict:
    service = runtime.definition.name
    before = runtime.parking.last_id()
    sent = runtime.parking.replay_batch(batch, publisher, actor, reason, run_id, service)
    event_ids = {s["event_id"] for s in sent if s["event_id"]}
    handled: set[str] = set()
    again: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    waiting = set(event_ids)
    while waiting and time.monotonic() < deadline:
        with runtime.engine.connect() as conn:
            handled |= _handled(runtime, conn, list(waiting))
        for row in runtime.parking.parked_again(service, list(waiting), before):
            again.setdefault(row["event_id"], row)
        waiting = event_ids - handled - set(again)
        if waiting:
            time.sleep(0.02)
    by_event = {s["event_id"]: s["id"] for s in sent}
    return {
        "ids": batch,
        "replayed": [s["id"] for s in sent],
        "handled": len(handled - set(again)),
        "failed_again": [
            {
                "id": by_event[event_id],
                "parked_again_as": row["id"],
                "error_type": row["error_type"],
                "error": scrub_text(row["error_message"] or "")[:500],
            }
            for event_id, row in again.items()
        ],
        "waiting": sorted(by_event[e] for e in waiting),
    }


def report(runtime, run_id: str) -> dict | None:
    """The run's report from its support actions (None: no such run of this service): who, why,
    the group, the batches so far and the outcome; ``running`` until it is recorded, ``abandoned``
    when its process stopped recording long ago (it died during the run)."""
    actions = runtime.parking.actions(target(run_id))
    if not actions or actions[0]["action"] != "replay_run_started":
        return None
    started = actions[0]
    details = started["details"] or {}
    if details.get("service") != runtime.definition.name:
        return None
    batches_done = [a["details"] for a in actions if a["action"] == "replay_batch"]
    finished = next((a for a in actions if a["action"] == "replay_run_finished"), None)
    out = {
        "id": run_id,
        "service": details.get("service"),
        "event_type": details.get("event_type"),
        "error_type": details.get("error_type"),
        "by": started["actor"],
        "role": started["role"],
        "reason": started["reason"],
        "started_at": started["at"].isoformat(),
        "count": len(details.get("ids") or []),
        "batches": [
            {
                "batch": b["batch"],
                "size": len(b["replayed"]),
                "handled": b["handled"],
                "failed_again": len(b["failed_again"]),
                "waiting": len(b["waiting"]),
            }
            for b in batches_done
        ],
        "replayed": sum(len(b["replayed"]) for b in batches_done),
        "handled": sum(b["handled"] for b in batches_done),
        "failed_again": [f for b in batches_done for f in b["failed_again"]][:SHOWN_FAILURES],
    }
    if finished is not None:
        out.update(
            status=finished["details"]["outcome"],
            stopped_because=finished["details"]["stopped_because"],
            finished_at=finished["at"].isoformat(),
        )
    else:
        last = actions[-1]["at"]
        timeout = float(details.get("outcome_timeout") or OUTCOME_TIMEOUT)
        quiet = utcnow() - (last if last.tzinfo else last.replace(tzinfo=utcnow().tzinfo))
        out["status"] = "abandoned" if quiet > timedelta(seconds=timeout + 60) else "running"
    return out
