"""The event envelope: wire form, round trip, and bodies that cannot be decoded."""

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from coc_shared.envelope import Event, UndecodableMessage


def _event(**overrides) -> Event:
    values = dict(
        type="order.placed",
        data={"order_id": "o-1", "total": {"amount_cents": 100, "currency": "EUR"}},
        producer="orders",
        correlation_id="corr-1",
        subject="o-1",
        causation_id="cause-1",
        personal={"email": "emilie@example.org", "first_name": "Émilie"},
    )
    values.update(overrides)
    return Event(**values)


def test_round_trip_keeps_every_field():
    event = _event()
    back = Event.from_json(event.to_json())
    assert back == event


def test_round_trip_of_a_minimal_event():
    event = Event(type="payment.failed", data={}, producer="payments", correlation_id="c")
    back = Event.from_json(event.to_json())
    assert back == event
    assert back.personal is None and back.subject is None and back.causation_id is None


def test_id_is_a_uuid_and_unique():
    a, b = _event(), _event()
    assert str(uuid.UUID(a.id)) == a.id
    assert a.id != b.id


def test_occurred_at_is_utc_iso_8601():
    event = _event()
    assert event.occurred_at.tzinfo is not None and event.occurred_at.utcoffset() == timedelta(0)
    wire = event.to_dict()["occurred_at"]
    assert wire.endswith("+00:00")
    assert datetime.fromisoformat(wire) == event.occurred_at


def test_occurred_at_in_another_zone_is_written_in_utc():
    paris = timezone(timedelta(hours=1))
    event = _event(occurred_at=datetime(2026, 11, 27, 11, 0, tzinfo=paris))
    assert event.to_dict()["occurred_at"] == "2026-11-27T10:00:00+00:00"
    assert Event.from_json(event.to_json()).occurred_at == datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def test_wire_form_is_compact_utf8_json():
    body = _event().to_json()
    assert isinstance(body, bytes)
    raw = json.loads(body.decode("utf-8"))
    assert set(raw) == {
        "id",
        "type",
        "version",
        "occurred_at",
        "producer",
        "correlation_id",
        "causation_id",
        "subject",
        "data",
        "personal",
    }
    assert "Émilie".encode() in body  # not \u-escaped


def test_personal_is_absent_when_empty():
    assert "personal" not in _event(personal=None).to_dict()
    assert "personal" not in _event(personal={}).to_dict()


def test_from_json_accepts_text_and_bytes():
    event = _event()
    assert Event.from_json(event.to_json().decode()) == event


def test_unknown_envelope_fields_are_ignored():
    raw = _event().to_dict()
    raw["schema_url"] = "https://example.org/x"
    assert Event.from_json(json.dumps(raw)).id == raw["id"]


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b'{"id": ', b"\xff\xfe\x00garbage", "{'single': 'quotes'}"],
    ids=["empty", "text", "truncated", "binary", "python-repr"],
)
def test_a_body_that_is_not_json_is_undecodable(body):
    with pytest.raises(UndecodableMessage, match="not JSON"):
        Event.from_json(body)


@pytest.mark.parametrize("body", [b"[]", b"[1, 2]", b'"order.placed"', b"42", b"null", b"true"])
def test_a_body_that_is_not_an_object_is_undecodable(body):
    with pytest.raises(UndecodableMessage, match="not a JSON object"):
        Event.from_json(body)


@pytest.mark.parametrize(
    "missing", ["id", "type", "version", "occurred_at", "producer", "correlation_id"]
)
def test_an_envelope_missing_a_required_field_is_undecodable(missing):
    raw = _event().to_dict()
    del raw[missing]
    with pytest.raises(UndecodableMessage, match=missing):
        Event.from_json(json.dumps(raw))


@pytest.mark.parametrize(
    "field,value",
    [
        ("id", "not-a-uuid"),
        ("type", "Order Placed"),
        ("type", "orderplaced"),  # no dot: not a <entity>.<fact> type
        ("version", 0),
        ("version", "one"),
        ("occurred_at", "2026-11-27T10:00:00"),  # naive
        ("occurred_at", "yesterday"),
        ("producer", ""),
        ("correlation_id", ""),
        ("correlation_id", "x" * 201),
        ("data", "not an object"),
        ("data", None),
        ("personal", ["a", "list"]),
    ],
)
def test_an_invalid_envelope_field_is_undecodable(field, value):
    raw = _event().to_dict()
    raw[field] = value
    with pytest.raises(UndecodableMessage, match="invalid envelope"):
        Event.from_json(json.dumps(raw))


def test_optional_envelope_fields_may_be_missing():
    raw = _event().to_dict()
    for name in ("causation_id", "subject", "data", "personal"):
        raw.pop(name, None)
    event = Event.from_json(json.dumps(raw))
    assert (
        event.data == {}
        and event.personal is None
        and event.subject is None
        and event.causation_id is None
    )
