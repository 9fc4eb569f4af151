"""Unit tests of the notifications domain (no I/O) and of the handler table's coverage of the catalogue."""
import pytest

from coc_notifications.domain.model import TEMPLATES, InvalidEvent, Notification
from coc_notifications.service_layer.handlers import handlers
from coc_shared.catalogue import all_event_types, lookup

PLACED = lookup("order.placed", 1)


def test_handles_exactly_the_event_types_the_catalogue_lists_it_as_a_consumer_of():
    assert set(handlers()) == {e.type for e in all_event_types() if "notifications" in e.consumers}
    assert set(TEMPLATES) == set(handlers())


def test_an_order_placed_keeps_the_recipient_address_and_nothing_else_personal():
    n = Notification.for_event("e-1", "order.placed", PLACED.example_data, PLACED.example_personal)
    assert n == Notification(event_id="e-1", event_type="order.placed", template="order_confirmation",
                             order_id=PLACED.example_data["order_id"], account_id=None,
                             recipient_email="emilie@example.org", status="pending")
    kept = {str(v) for v in vars(n).values()}
    for key in ("first_name", "last_name", "phone"):
        assert PLACED.example_personal[key] not in kept


@pytest.mark.parametrize("event_type", sorted(set(TEMPLATES) - {"order.placed", "account.deactivated"}))
def test_an_order_event_makes_a_pending_notification_without_recipient(event_type):
    data = lookup(event_type, 1).example_data
    n = Notification.for_event("e-1", event_type, data)
    assert (n.template, n.order_id, n.recipient_email, n.status) == (TEMPLATES[event_type], data["order_id"], None,
                                                                     "pending")


def test_an_account_deactivation_makes_a_notification_of_the_account():
    n = Notification.for_event("e-1", "account.deactivated", {"account_id": "a-1"})
    assert (n.template, n.account_id, n.order_id) == ("account_deactivated", "a-1", None)


@pytest.mark.parametrize("event_type,data", [("payment.failed", {}), ("order.placed", {"order_id": ""}),
                                             ("account.deactivated", {"order_id": "o-1"}),
                                             ("order.documents_completed", {"order_id": "o-1"})])
def test_an_event_without_its_subject_or_without_a_template_is_refused(event_type, data):
    with pytest.raises(InvalidEvent):
        Notification.for_event("e-1", event_type, data)
