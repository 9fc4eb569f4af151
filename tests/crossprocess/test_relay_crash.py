"""A publisher (the outbox relay process) killed -9 in the middle of publishing loses nothing and
causes no second effect."""

import subprocess

import pytest
from sqlalchemy import text

from coc_shared.testing import wait_until

pytestmark = pytest.mark.crossprocess


def _locked_by_someone_else(pipeline, event_id: str) -> bool:
    """The outbox row is locked (the relay selects the rows it publishes FOR UPDATE)."""
    with pipeline.runtime.engine.begin() as conn:
        got = conn.execute(
            text("SELECT event_id FROM probe.outbox WHERE event_id = :e FOR UPDATE SKIP LOCKED"),
            {"e": event_id},
        ).first()
    return got is None


def _connection_states(ports: set[int]) -> dict[int, str]:
    out = subprocess.run(
        ["rabbitmqctl", "list_connections", "-q", "--no-table-headers", "peer_port", "state"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    states = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit() and int(parts[0]) in ports:
            states[int(parts[0])] = parts[1]
    return states


def _sent(pipeline, event_id: str) -> bool:
    return pipeline.scalar(
        "SELECT sent_at IS NOT NULL FROM probe.outbox WHERE event_id = :e", e=event_id
    )


def test_relay_killed_between_commit_and_confirm(pipeline):
    """The broker's memory alarm blocks the relay's connection as soon as it publishes, so the relay
    deterministically sits between its publish and the confirm that never comes; it is killed -9
    there. The row is still unsent; a new relay publishes it again and it has exactly one effect."""
    pipeline.start_consumer("consume")
    relay = pipeline.start(
        "relay", OUTBOX_CONFIRM_TIMEOUT=120
    )  # it must still be waiting when killed
    warm = pipeline.emit(1, start=0)
    pipeline.wait_done(warm)  # the relay is connected and the whole path works
    ports = relay.amqp_local_ports()
    assert ports, "the relay has no connection to the broker"

    with pipeline.memory_alarm():
        [event_id] = pipeline.emit(1, start=1)  # committed to the outbox; NOTIFY wakes the relay
        wait_until(
            lambda: _locked_by_someone_else(pipeline, event_id),
            timeout=15,
            message="the relay to take the row in its publishing transaction",
        )
        wait_until(
            lambda: "blocked" in _connection_states(ports).values(),
            timeout=15,
            interval=0.2,
            message="the broker to block the relay's connection on its publish",
        )
        assert not _sent(pipeline, event_id)
        relay.kill9()
        # Killed between the commit of the event and the broker's confirm: still unsent, no effect
        # yet.
        assert not _sent(pipeline, event_id), "the killed relay marked an unconfirmed row as sent"
        assert event_id not in pipeline.effects_by_event()

    pipeline.start("relay")
    pipeline.wait_done(warm + [event_id])
    assert _sent(pipeline, event_id)
    pipeline.assert_exactly_once(warm + [event_id], total=2)


def test_relay_killed_after_confirm_before_marking_sent(pipeline):
    """The other side of the window: the broker confirmed (the message is in the queue) but the
    relay dies before its transaction marks the row sent (its UPDATE is held on a table lock). The
    row is published again after the restart; the consumer drops the second copy through its
    inbox."""
    [event_id] = pipeline.emit(1, start=0)
    with pipeline.runtime.engine.connect() as blocker:
        blocker.begin()
        # SHARE mode lets the relay SELECT ... FOR UPDATE its rows but holds its UPDATE (no consumer
        # runs yet, so nobody else writes to the outbox meanwhile).
        blocker.exec_driver_sql("LOCK TABLE probe.outbox IN SHARE MODE")
        relay = pipeline.start("relay")
        wait_until(
            lambda: pipeline.queue_depth(pipeline.queue) == 1,
            timeout=30,
            interval=0.1,
            message="the confirmed message in the probe's queue",
        )
        wait_until(
            lambda: pipeline.scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
                "wait_event_type = 'Lock' AND query LIKE 'UPDATE probe.outbox SET sent_at%'"
            ),
            timeout=15,
            message="the relay's UPDATE ... sent_at to wait on the lock",
        )
        relay.kill9()
        blocker.rollback()
    assert not _sent(pipeline, event_id)

    consumer = pipeline.start_consumer("consume")
    pipeline.start("relay")
    pipeline.wait_done([event_id])
    wait_until(
        lambda: _sent(pipeline, event_id),
        timeout=15,
        message="the row marked sent by the new relay",
    )
    consumer.wait_log("event.duplicate_ignored", event_id=event_id, timeout=15)
    pipeline.assert_exactly_once([event_id], total=1)
