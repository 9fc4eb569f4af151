"""RabbitMQ stopped and started again (``rabbitmqctl stop_app`` / ``start_app``) in the middle of a
burst of 1,000 events: the relay and the consumer (separate processes) reconnect by themselves and
every event has exactly one effect."""

import pytest

from coc_shared.testing import wait_until

pytestmark = pytest.mark.crossprocess


def test_broker_restart_during_a_burst_of_1000_events(pipeline):
    consumer = pipeline.start_consumer("consume")
    relay = pipeline.start("relay")
    first = pipeline.emit(500, start=0)
    # The burst is flowing (the first effects are there) when the broker goes away.
    wait_until(
        lambda: len(pipeline.effects_by_event()) >= 1,
        timeout=30,
        interval=0.02,
        message="the first effects of the burst",
    )
    with pipeline.broker_stopped():
        at_stop = len(pipeline.effects_by_event())
        # The rest of the burst is committed to the outbox while the broker is down.
        second = pipeline.emit(500, start=500)
        relay.wait_log("outbox.relay_error", timeout=30)
        consumer.wait_log("consumer.connection_lost", timeout=30)
    print(f"effects when the broker stopped: {at_stop} of 1000")

    ids = first + second
    pipeline.wait_done(ids, timeout=60)  # no manual step: the processes reconnect on their own
    pipeline.assert_exactly_once(ids, total=1000)
    assert consumer.alive() and relay.alive()
    assert len(consumer.logs("consumer.started")) >= 2, "the consumer did not reconnect"
    assert pipeline.scalar("SELECT count(*) FROM probe.outbox WHERE sent_at IS NULL") == 0
    assert pipeline.parked() == []
