"""Retries seen from outside the worker process: its JSON log lines on stderr and the database."""

from datetime import datetime

import pytest

from coc_shared.testing import wait_until

pytestmark = pytest.mark.crossprocess

TRACE_EVENTS = ("handler.failed", "handler.retry_scheduled", "event.handled", "message.parked")


def _trace(proc, event_id):
    return [
        (line["event"], line["attempt"])
        for line in proc.logs()
        if line.get("event_id") == event_id and line.get("event") in TRACE_EVENTS
    ]


def test_handler_failing_twice_then_succeeding_has_one_effect_and_logged_attempts(pipeline):
    worker = pipeline.start_consumer("worker")
    [event_id] = pipeline.emit(1, start=0, fail_times=2)
    pipeline.wait_done([event_id])
    pipeline.assert_exactly_once([event_id], total=1)
    assert pipeline.attempts(event_id) == 3
    assert _trace(worker, event_id) == [
        ("handler.failed", 1),
        ("handler.failed", 2),
        ("event.handled", 3),
    ]
    failed = worker.logs("handler.failed", event_id=event_id)
    assert [f["next"] for f in failed] == ["retry_now", "retry_now"]
    assert all(f["error_type"] == "RuntimeError" and f["level"] == "warning" for f in failed)
    assert pipeline.parked() == []


DELAYS = (2.0, 2.5)  # the first delay leaves time to show that the messages behind it flow


@pytest.mark.pipeline_settings(retry_delays=DELAYS, quick_attempts=3)
def test_handler_failing_past_quick_attempts_is_delayed_then_parked_without_blocking_others(
    pipeline,
):
    worker = pipeline.start_consumer("worker")
    [bad] = pipeline.emit(1, start=0, fail_times=1000)
    # The quick attempts are spent: the message now waits in the first delay queue...
    worker.wait_log("handler.retry_scheduled", event_id=bad, timeout=30)
    # ...and the messages behind it are handled meanwhile.
    behind = pipeline.emit(20, start=100)
    pipeline.wait_done(behind)

    wait_until(
        lambda: pipeline.parked(event_id=bad),
        timeout=30,
        interval=0.1,
        message="the failing message parked",
    )
    [row] = pipeline.parked()
    assert row["attempts"] == 3 + len(DELAYS) == pipeline.attempts(bad)
    assert (
        row["error_type"] == "RuntimeError" and row["error_message"] == "planned failure 5 of 1000"
    )
    assert _trace(worker, bad) == [
        ("handler.failed", 1),
        ("handler.failed", 2),
        ("handler.failed", 3),
        ("handler.retry_scheduled", 3),
        ("handler.failed", 4),
        ("handler.retry_scheduled", 4),
        ("handler.failed", 5),
        ("message.parked", 5),
    ]
    scheduled = worker.logs("handler.retry_scheduled", event_id=bad)
    assert [s["retry_in"] for s in scheduled] == list(DELAYS)
    # The delayed redelivery came back no sooner than its delay (it went through the TTL queue).
    failed_at = {
        f["attempt"]: datetime.fromisoformat(f["timestamp"])
        for f in worker.logs("handler.failed", event_id=bad)
    }
    assert (failed_at[4] - failed_at[3]).total_seconds() >= DELAYS[0] * 0.9
    assert (failed_at[5] - failed_at[4]).total_seconds() >= DELAYS[1] * 0.9
    # Not blocked: all 20 messages behind it were handled before its first delayed redelivery.
    last_handled = pipeline.scalar(
        "SELECT max(handled_at) FROM probe.inbox WHERE event_id = ANY(:ids)", ids=behind
    )
    assert last_handled < failed_at[4]
    pipeline.assert_exactly_once(behind, total=20)
    assert bad not in pipeline.effects_by_event()
