"""A message on which consumers crash again and again: past ``x-delivery-limit`` the broker
dead-letters it to the service's ``.dead`` queue, from which the consumer parks it."""

import pytest

from coc_shared.testing import wait_until

pytestmark = pytest.mark.crossprocess

LIMIT = 1


@pytest.mark.pipeline_settings(
    delivery_limit=LIMIT
)  # own BUS_PREFIX: the queue is declared with this limit
def test_message_crashing_consumers_past_the_delivery_limit_is_parked(pipeline):
    pipeline.start("relay")
    # Every attempt is counted, then the handler sleeps: the consumer is killed -9 while handling.
    [event_id] = pipeline.emit(1, start=0, sleep=60, track=True)
    kills = 0
    for attempt in range(1, LIMIT + 4):
        consumer = pipeline.start_consumer("consume")
        wait_until(
            lambda attempt=attempt: (
                pipeline.attempts(event_id) >= attempt or pipeline.parked(event_id=event_id)
            ),
            timeout=30,
            message=f"delivery {attempt} handled or the message parked",
        )
        if pipeline.parked(event_id=event_id):
            break
        consumer.kill9()
        kills += 1
    [row] = pipeline.parked(event_id=event_id)
    assert kills == LIMIT + 1  # deliveries without an ack: the limit is exceeded on the last return
    assert (
        pipeline.attempts(event_id) == kills
    )  # the parking consumer did not run the handler again
    assert row["error_type"] == "DeliveryLimitExceeded"
    assert f"more than {LIMIT} times" in row["error_message"]
    assert row["queue"] == pipeline.queue and row["routing_key"] == "probe.ping"
    assert row["service"] == "probe" and row["status"] == "parked"
    consumer.wait_log("message.parked", event_id=event_id)
    assert event_id not in pipeline.effects_by_event()
