"""A consumer process killed -9 in the middle of handling: the broker redelivers the unacked
message to the next consumer process, which handles it once."""

import pytest

from coc_shared.testing import wait_until

pytestmark = pytest.mark.crossprocess


def test_consumer_killed_while_handling_is_redelivered_and_handled_once(pipeline):
    pipeline.start("relay")
    first = pipeline.start_consumer("consume")
    # The handler counts its attempt (committed on its own) and then sleeps, on the first attempt
    # only.
    [event_id] = pipeline.emit(1, start=0, sleep=60, sleep_times=1)
    wait_until(
        lambda: pipeline.attempts(event_id) == 1,
        timeout=30,
        message="the first consumer to start handling",
    )
    first.kill9()
    assert event_id not in pipeline.effects_by_event()
    assert pipeline.scalar("SELECT count(*) FROM probe.inbox WHERE event_id = :e", e=event_id) == 0

    second = pipeline.start_consumer("consume")
    pipeline.wait_done([event_id])
    assert second.logs("event.handled", event_id=event_id), (
        "the second consumer did not handle the event"
    )
    assert not first.logs("event.handled", event_id=event_id)
    assert pipeline.attempts(event_id) == 2
    pipeline.assert_exactly_once([event_id], total=1)
