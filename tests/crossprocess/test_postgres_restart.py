"""PostgreSQL restarted during a burst: the consumer and the relay recover by themselves and every
event has exactly one effect."""

import pytest

from coc_shared.testing import wait_until

pytestmark = pytest.mark.crossprocess

DB_ERRORS = ("consumer.database_unavailable", "outbox.relay_error", "parking.database_unavailable")


def test_postgres_restart_during_a_burst(pipeline):
    consumer = pipeline.start_consumer("consume")
    relay = pipeline.start("relay")
    # 10 ms per event: a batch of 100 takes about a second, so the restart hits a transaction in
    # flight.
    ids = pipeline.emit(300, start=0, sleep=0.01)
    wait_until(
        lambda: len(pipeline.effects_by_event()) >= 1,
        timeout=30,
        interval=0.02,
        message="the first committed batch",
    )
    pipeline.restart_postgres()
    pipeline.wait_done(ids, timeout=60)
    pipeline.assert_exactly_once(ids, total=300)
    assert consumer.alive() and relay.alive()
    seen = [
        line["event"]
        for proc in (consumer, relay)
        for line in proc.logs()
        if line.get("event") in DB_ERRORS
    ]
    assert seen, "neither process noticed the restart"
    assert pipeline.scalar("SELECT count(*) FROM probe.outbox WHERE sent_at IS NULL") == 0
