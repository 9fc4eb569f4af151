"""Unit tests of the gdpr domain (no I/O) and of the handler table's coverage of the catalogue."""

from datetime import UTC, datetime

import pytest

from coc_gdpr.domain.model import DeactivationRequest, request_to_open
from coc_gdpr.service_layer.handlers import handlers
from coc_shared.catalogue import all_event_types
from coc_shared.errors import InvalidEvent

ASKED = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def test_handles_exactly_the_event_types_the_catalogue_lists_it_as_a_consumer_of():
    assert set(handlers()) == {e.type for e in all_event_types() if "gdpr" in e.consumers}


def test_a_request_is_pending_and_due_within_thirty_days():
    request = DeactivationRequest.from_message(
        "e-1", {"account_id": "a-1", "requested_at": "2026-11-27T10:00:00+00:00"}
    )
    assert request == DeactivationRequest(
        account_id="a-1", event_id="e-1", requested_at=ASKED, status="pending"
    )
    assert request.pending
    assert request.due_by == datetime(2026, 12, 27, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "data",
    [
        {"requested_at": "2026-11-27T10:00:00+00:00"},
        {"account_id": ""},
        {"account_id": "a-1"},
        {"account_id": "a-1", "requested_at": "2026-11-27"},
        {"account_id": "a-1", "requested_at": "soon"},
    ],
)
def test_a_request_needs_an_account_and_an_aware_time(data):
    with pytest.raises(InvalidEvent):
        DeactivationRequest.from_message("e-1", data)


def test_a_first_request_is_opened():
    new = DeactivationRequest("a-1", "e-1", ASKED)
    assert request_to_open(None, new) is new


def test_a_request_while_one_is_pending_joins_it():
    pending = DeactivationRequest("a-1", "e-1", ASKED)
    assert request_to_open(pending, DeactivationRequest("a-1", "e-2", ASKED)) is None


def test_a_request_after_a_completed_one_is_opened():
    done = DeactivationRequest("a-1", "e-1", ASKED, status="completed")
    new = DeactivationRequest("a-1", "e-2", ASKED)
    assert request_to_open(done, new) is new
