"""Unit tests of the orders domain (no I/O) and of the handler table's coverage of the catalogue."""
from datetime import datetime, timezone

import pytest

from coc_orders.domain.model import LIFECYCLE_MILESTONES, AccountDeactivation, InvalidEvent, OrderEvent
from coc_orders.service_layer.handlers import handlers
from coc_shared.catalogue import all_event_types

WHEN = datetime(2026, 11, 27, 10, 0, tzinfo=timezone.utc)


def test_handles_exactly_the_event_types_the_catalogue_lists_it_as_a_consumer_of():
    assert set(handlers()) == {e.type for e in all_event_types() if "orders" in e.consumers}


@pytest.mark.parametrize("event_type,milestone", sorted(LIFECYCLE_MILESTONES.items()))
def test_an_order_event_names_its_milestone(event_type, milestone):
    event = OrderEvent.from_message("e-1", event_type, WHEN, {"order_id": "o-1"})
    assert (event.order_id, event.event_id, event.event_type, event.occurred_at) == ("o-1", "e-1", event_type, WHEN)
    assert event.milestone == milestone


def test_an_order_event_accepts_an_iso_timestamp():
    event = OrderEvent.from_message("e-1", "payment.confirmed", "2026-11-27T10:00:00+00:00", {"order_id": "o-1"})
    assert event.occurred_at == WHEN


def test_an_event_outside_the_order_life_is_refused():
    with pytest.raises(InvalidEvent):
        OrderEvent.from_message("e-1", "order.placed", WHEN, {"order_id": "o-1"})


@pytest.mark.parametrize("data", [{}, {"order_id": ""}, {"order_id": 12}])
def test_an_order_event_needs_an_order_id(data):
    with pytest.raises(InvalidEvent):
        OrderEvent.from_message("e-1", "payment.failed", WHEN, data)


def test_an_order_event_needs_an_aware_time():
    with pytest.raises(InvalidEvent):
        OrderEvent.from_message("e-1", "payment.failed", datetime(2026, 11, 27), {"order_id": "o-1"})


def test_an_account_deactivation_reads_the_account_and_the_erasure_time():
    deactivation = AccountDeactivation.from_message("e-2", {"account_id": "a-1", "erased_at": "2026-11-27T10:00:00+00:00"})
    assert deactivation == AccountDeactivation(account_id="a-1", event_id="e-2", erased_at=WHEN)


@pytest.mark.parametrize("data", [{"erased_at": "2026-11-27T10:00:00+00:00"}, {"account_id": "a-1"},
                                  {"account_id": "a-1", "erased_at": "yesterday"},
                                  {"account_id": "a-1", "erased_at": "2026-11-27T10:00:00"}])
def test_an_account_deactivation_needs_an_account_and_an_aware_erasure_time(data):
    with pytest.raises(InvalidEvent):
        AccountDeactivation.from_message("e-2", data)
