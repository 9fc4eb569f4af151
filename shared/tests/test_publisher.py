"""The confirming publisher against the real broker: confirmed means acked and routed."""

import uuid

import pytest
from sharedkit import body_bytes, get_all, queue_count, register_test_type

from coc_shared.bus import OutgoingMessage, Publisher, PublishError


def _message(routing_key: str, to_queue: bool = False, **kwargs) -> OutgoingMessage:
    message_id = str(uuid.uuid4())
    return OutgoingMessage(
        message_id=message_id,
        body=b'{"n": 1}',
        routing_key=routing_key,
        to_queue=to_queue,
        event_type=None if to_queue else routing_key,
        correlation_id="corr",
        **kwargs,
    )


def test_a_routed_message_is_confirmed_and_arrives_with_its_properties(
    publisher, declare_queue, rabbitmq_url
):
    type_ = register_test_type()
    queue = declare_queue([type_])
    msg = _message(type_, headers={"x-test": "yes"})
    result = publisher.publish_batch([msg])
    assert result.confirmed == [msg.message_id] and result.failed == {}
    [got] = get_all(rabbitmq_url, queue)
    assert body_bytes(got) == b'{"n": 1}'
    assert got.properties["message_id"] == msg.message_id
    assert got.properties["type"] == type_ and got.properties["correlation_id"] == "corr"
    assert got.properties["content_type"] == "application/json"
    assert got.properties["delivery_mode"] == 2
    assert got.properties["application_headers"] == {"x-test": "yes"}


def test_an_unroutable_message_fails_instead_of_being_confirmed(publisher):
    msg = _message(register_test_type())  # no queue is bound to this type
    result = publisher.publish_batch([msg])
    assert result.confirmed == []
    assert result.failed[msg.message_id].startswith("unroutable")
    with pytest.raises(PublishError, match="unroutable"):
        publisher.publish_one(_message(register_test_type()))


def test_a_message_to_a_missing_queue_fails(publisher, bus_prefix):
    msg = _message(f"{bus_prefix}no-such-queue-{uuid.uuid4().hex}", to_queue=True)
    result = publisher.publish_batch([msg])
    assert result.confirmed == [] and "unroutable" in result.failed[msg.message_id]


def test_a_batch_mixing_routable_and_unroutable_messages(publisher, declare_queue, rabbitmq_url):
    routed_type, lost_type = register_test_type(), register_test_type()
    queue = declare_queue([routed_type])
    routed = [_message(routed_type) for _ in range(20)]
    lost = [_message(lost_type) for _ in range(5)]
    batch = [m for pair in zip(routed, lost + [None] * 15) for m in pair if m is not None]
    result = publisher.publish_batch(batch)
    assert sorted(result.confirmed) == sorted(m.message_id for m in routed)
    assert set(result.failed) == {m.message_id for m in lost}
    assert queue_count(rabbitmq_url, queue) == 20


def test_a_message_the_broker_nacks_fails(publisher, declare_queue, rabbitmq_url):
    type_ = register_test_type()
    full = declare_queue([type_], arguments={"x-max-length": 0, "x-overflow": "reject-publish"})
    direct = _message(full, to_queue=True)
    through_exchange = _message(type_)
    result = publisher.publish_batch([direct, through_exchange])
    assert result.confirmed == []
    assert result.failed == {
        direct.message_id: "nacked by the broker",
        through_exchange.message_id: "nacked by the broker",
    }
    with pytest.raises(PublishError, match="nacked"):
        publisher.publish_one(_message(type_))
    assert queue_count(rabbitmq_url, full) == 0


def test_a_batch_of_1000_is_all_confirmed(publisher, declare_queue, rabbitmq_url):
    type_ = register_test_type()
    queue = declare_queue([type_])
    batch = [_message(type_) for _ in range(1000)]
    result = publisher.publish_batch(batch)
    assert result.failed == {}
    assert sorted(result.confirmed) == sorted(m.message_id for m in batch)
    assert queue_count(rabbitmq_url, queue) == 1000


def test_the_publisher_survives_a_failure_and_keeps_counting_confirms(publisher, declare_queue):
    type_ = register_test_type()
    declare_queue([type_])
    for _ in range(3):
        assert publisher.publish_batch([_message(register_test_type())]).confirmed == []
        ok = [_message(type_) for _ in range(10)]
        assert sorted(publisher.publish_batch(ok).confirmed) == sorted(m.message_id for m in ok)
    publisher.close()
    again = _message(type_)
    assert publisher.publish_batch([again]).confirmed == [again.message_id]  # reconnects


def test_an_empty_batch_needs_no_broker(broker):
    assert Publisher(broker).publish_batch([]).confirmed == []


# Confirms bookkeeping, without a broker: RabbitMQ may ack or nack several tags at once
# ("multiple"); such a confirm covers only the tags not confirmed yet.


def _bookkeeping(broker, sent: int = 6) -> Publisher:
    p = Publisher(broker)
    p._pending.update(range(1, sent + 1))  # as if tags 1..sent had been published
    return p


def test_individual_and_multiple_acks(broker):
    p = _bookkeeping(broker)
    p._on_ack(1, False)
    p._on_ack(4, True)
    p._on_nack(5, False)
    assert [p._resolved(t) for t in (1, 2, 3, 4, 5, 6)] == [
        "ack",
        "ack",
        "ack",
        "ack",
        "nack",
        None,
    ]


def test_a_multiple_ack_does_not_cover_a_tag_nacked_before(broker):
    p = _bookkeeping(broker)
    p._on_nack(2, False)
    p._on_ack(3, True)
    assert [p._resolved(t) for t in (1, 2, 3)] == ["ack", "nack", "ack"]


def test_a_multiple_nack_does_not_cover_tags_acked_before(broker):
    p = _bookkeeping(broker)
    p._on_ack(1, False)
    p._on_ack(3, True)
    p._on_nack(5, True)
    assert [p._resolved(t) for t in (1, 2, 3, 4, 5)] == ["ack", "ack", "ack", "nack", "nack"]
