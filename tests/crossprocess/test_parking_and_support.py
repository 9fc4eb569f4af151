"""A poison message is parked with its full context while the messages behind it flow; support
staff inspect it with ``coc-support`` and, once the cause is fixed, replay it to the probe's own
queue, where it is handled once; every action is recorded with who and why; without a valid staff
token the command line refuses and changes nothing."""

import json
import socket
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import jwt
import kombu
import pytest

from coc_shared.testing import STAFF_KEYS, wait_until
from coc_shared.tokens import new_staff_keys, staff_private_key

pytestmark = pytest.mark.crossprocess

QUICK_ATTEMPTS, DELAYS = 3, (1.0, 2.0)


def _expired_token() -> str:
    now = datetime.now(UTC)
    claims = {
        "iss": "coc-staff",
        "sub": "bob",
        "role": "support",
        "aud": ["ops"],
        "jti": "j-1",
        "iat": now - timedelta(hours=2),
        "exp": now - timedelta(minutes=1),
    }
    return jwt.encode(claims, staff_private_key(STAFF_KEYS[0]), algorithm="EdDSA")


def _snapshot(pipeline):
    return (
        [(r["id"], r["status"]) for r in pipeline.parked()],
        len(pipeline.support_actions()),
        pipeline.effects_by_event(),
    )


@pytest.mark.pipeline_settings(retry_delays=DELAYS, quick_attempts=QUICK_ATTEMPTS)
def test_poison_message_parked_replayed_and_discarded_with_the_support_cli(pipeline):
    worker = pipeline.start_consumer("worker")
    poison = pipeline.emit(
        2, start=0, poison=True
    )  # the first is replayed later, the second discarded
    behind = pipeline.emit(50, start=100)

    # --- parked, while the 50 messages behind it are handled
    wait_until(
        lambda: len(pipeline.parked()) == 2, timeout=40, interval=0.1, message="two parked messages"
    )
    pipeline.wait_done(behind)
    pipeline.assert_exactly_once(behind, total=50)
    rows = {row["event_id"]: row for row in pipeline.parked()}
    assert set(rows) == set(poison)
    last_handled = pipeline.scalar(
        "SELECT max(handled_at) FROM probe.inbox WHERE event_id = ANY(:ids)", ids=behind
    )
    for seq, event_id in enumerate(poison):
        row = rows[event_id]
        assert row["status"] == "parked"
        assert row["service"] == "probe"
        assert row["host"] == socket.gethostname()
        assert row["queue"] == pipeline.queue
        assert row["routing_key"] == "probe.ping"
        assert row["event_type"] == "probe.ping"
        assert row["order_id"] == f"order-{seq}"
        body = json.loads(row["body"])
        assert body["id"] == event_id and body["data"] == {"seq": seq, "poison": True}
        assert (
            row["headers"]["x-coc-attempts"] == QUICK_ATTEMPTS + len(DELAYS) - 1
        )  # before the last delivery
        assert row["headers"]["x-coc-delayed"] == len(DELAYS)
        assert row["properties"]["message_id"] == event_id
        assert row["error_type"] == "ValueError"
        assert row["error_message"] == "poison message: the cause is not fixed yet"
        assert "Traceback" in row["stack_trace"] and "probe_service.py" in row["stack_trace"]
        assert "ValueError: poison message" in row["stack_trace"]
        assert row["attempts"] == QUICK_ATTEMPTS + len(DELAYS) == pipeline.attempts(event_id)
        assert row["first_failed_at"] < row["last_failed_at"] <= row["parked_at"]
        # the messages behind it did not wait for it
        assert last_handled < row["parked_at"]
    assert not set(poison) & set(pipeline.effects_by_event())
    parked_id, discard_id = rows[poison[0]]["id"], rows[poison[1]]["id"]

    # --- the command line refuses without a valid staff token, and changes nothing
    before = _snapshot(pipeline)
    forged = pipeline.json(
        pipeline.cli(
            "issue-token",
            "--name",
            "mallory",
            "--role",
            "admin",
            STAFF_TOKEN_PRIVATE_KEY=new_staff_keys()[0],  # not the admin's key
        )
    )["token"]
    assert (
        pipeline.cli(
            "issue-token", "--name", "bob", "--role", "support", "--hours", "13"
        ).returncode
        == 2
    )
    expired = _expired_token()
    replay = ["parked", "replay", str(parked_id), "--reason", "try"]
    discard = ["parked", "discard", str(discard_id), "--reason", "try"]
    refused = [
        (None, ["parked", "list"]),
        (None, replay),
        (None, discard),
        ("", replay),
        ("not-a-token", replay),
        ("not-a-token", ["parked", "show", str(parked_id)]),
        (forged, replay),
        (forged, discard),
        (expired, replay),
    ]
    with ThreadPoolExecutor(max_workers=4) as pool:  # independent commands: run side by side
        results = list(pool.map(lambda case: pipeline.cli(*case[1], token=case[0]), refused))
    for (token, args), result in zip(refused, results):
        assert result.returncode == 3, (token, args, result.stdout, result.stderr)
        assert "token" in pipeline.json(result)["error"]
    result = pipeline.cli(
        "parked", "--token", "not-a-token", "replay", str(parked_id), "--reason", "try"
    )
    assert result.returncode == 3
    assert _snapshot(pipeline) == before
    assert pipeline.support_actions() == []

    token = pipeline.json(pipeline.cli("issue-token", "--name", "alice", "--role", "support"))[
        "token"
    ]

    # --- list and show
    listed = pipeline.json(pipeline.cli("parked", "list", token=token))
    assert listed["count"] == 2 and {i["id"] for i in listed["items"]} == {parked_id, discard_id}
    listed = pipeline.json(
        pipeline.cli("parked", "list", "--error", "not fixed", "--order", "order-0", token=token)
    )
    assert [i["id"] for i in listed["items"]] == [parked_id]
    assert listed["items"][0]["error_type"] == "ValueError" and listed["items"][0]["attempts"] == 5
    shown = pipeline.json(pipeline.cli("parked", "show", str(parked_id), token=token))
    assert shown["body"]["id"] == poison[0] and shown["queue"] == pipeline.queue
    assert "ValueError: poison message" in shown["stack_trace"]
    assert pipeline.cli("parked", "show", "999999", token=token).returncode == 4

    # --- a second queue bound to probe.ping on the same exchange: a replay must not reach it
    with pipeline.amqp_channel() as channel:
        spy = kombu.Queue(
            pipeline.settings.bus_prefix + "spy",
            exchange=pipeline.runtime.broker.exchange(),
            routing_key="probe.ping",
            durable=False,
        )
        spy(channel).declare()

    # --- fix the cause, replay
    pipeline.execute("INSERT INTO probe.switches (name) VALUES ('fixed')")
    reason = "cause fixed: probe.switches has 'fixed' (ticket T-1)"
    result = pipeline.cli("parked", "replay", str(parked_id), "--reason", reason, token=token)
    assert result.returncode == 0, result.stdout + result.stderr
    assert pipeline.json(result) == {
        "replayed": 1,
        "failed": 0,
        "results": [{"id": parked_id, "status": "replayed", "queue": pipeline.queue}],
    }
    pipeline.wait_done([poison[0]])
    worker.wait_log("event.handled", event_id=poison[0])
    # a second replay of the same message is refused
    again = pipeline.cli("parked", "replay", str(parked_id), "--reason", "again", token=token)
    assert again.returncode == 4 and "already replayed" in again.stdout

    # The spy gets the next ordinary ping, but never got the replayed copy.
    [marker] = pipeline.emit(1, start=500)
    wait_until(
        lambda: pipeline.queue_depth(spy.name) >= 1,
        timeout=30,
        interval=0.1,
        message="the spy's message",
    )
    pipeline.wait_done([marker])
    with pipeline.amqp_channel() as channel:
        received = []
        while (message := channel.basic_get(spy.name, no_ack=True)) is not None:
            received.append(message.properties["message_id"])
    assert received == [marker]

    # --- discard the other one
    result = pipeline.cli(
        "parked", "discard", str(discard_id), "--reason", "test data, not needed", token=token
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        pipeline.cli(
            "parked", "discard", str(discard_id), "--reason", "twice", token=token
        ).returncode
        == 4
    )

    # --- end state: exactly once, statuses, and who did what and why
    pipeline.assert_exactly_once([poison[0], *behind, marker], total=52)
    assert poison[1] not in pipeline.effects_by_event()
    final = {row["id"]: row for row in pipeline.parked()}
    assert (
        final[parked_id]["status"],
        final[parked_id]["resolved_by"],
        final[parked_id]["resolution_reason"],
    ) == ("replayed", "alice", reason)
    assert (
        final[discard_id]["status"],
        final[discard_id]["resolved_by"],
        final[discard_id]["resolution_reason"],
    ) == ("discarded", "alice", "test data, not needed")
    actions = [
        (a["actor"], a["role"], a["action"], a["target"], a["reason"])
        for a in pipeline.support_actions()
    ]
    assert actions == [
        ("alice", "support", "list", None, None),
        ("alice", "support", "list", None, None),
        ("alice", "support", "show", str(parked_id), None),
        ("alice", "support", "replay", str(parked_id), reason),
        ("alice", "support", "discard", str(discard_id), "test data, not needed"),
    ]
    replay_action = [a for a in pipeline.support_actions() if a["action"] == "replay"][0]
    assert replay_action["details"] == {"queue": pipeline.queue, "event_id": poison[0]}
