"""Unit tests of the notifications domain (no I/O) and of the handler table's coverage of the
catalogue."""

import pytest

from coc_notifications.domain.model import ACCOUNT_EVENTS, PERSONAL_FIELDS, TEMPLATES, Notification
from coc_notifications.service_layer.handlers import handlers
from coc_shared.catalogue import all_event_types, lookup
from coc_shared.errors import InvalidEvent

PLACED = lookup("order.placed", 1)
EMAIL_CHANGE = lookup("account.email_change_requested", 1)


def test_handles_exactly_the_event_types_the_catalogue_lists_it_as_a_consumer_of():
    assert set(handlers()) == {e.type for e in all_event_types() if "notifications" in e.consumers}
    assert set(TEMPLATES) == set(handlers())


def test_an_order_placed_keeps_the_recipient_address_and_nothing_else_personal():
    n = Notification.for_event("e-1", "order.placed", PLACED.example_data, PLACED.example_personal)
    assert n == Notification(
        event_id="e-1",
        event_type="order.placed",
        template="order_confirmation",
        order_id=PLACED.example_data["order_id"],
        account_id=None,
        recipient_email="emilie@example.org",
        status="pending",
    )
    kept = {str(v) for v in vars(n).values()}
    for key in ("first_name", "last_name", "phone"):
        assert PLACED.example_personal[key] not in kept


def test_the_new_event_types_have_their_templates():
    assert {
        t: TEMPLATES[t]
        for t in (
            "payment.refunded",
            "order.cancelled",
            "documents.rejected_by_supplier",
            "account.email_change_requested",
        )
    } == {
        "payment.refunded": "payment_refunded",
        "order.cancelled": "order_cancelled",
        "documents.rejected_by_supplier": "documents_requested",
        "account.email_change_requested": "email_change_confirmation",
    }


@pytest.mark.parametrize("event_type", sorted(set(TEMPLATES) - {"order.placed", *ACCOUNT_EVENTS}))
def test_an_order_event_makes_a_pending_notification_without_recipient(event_type):
    data = lookup(event_type, 1).example_data
    n = Notification.for_event("e-1", event_type, data)
    assert (n.template, n.order_id, n.recipient_email, n.status) == (
        TEMPLATES[event_type],
        data["order_id"],
        None,
        "pending",
    )


def test_an_email_change_goes_to_the_new_address_with_the_link_and_keeps_nothing_else():
    n = Notification.for_event(
        "e-1",
        "account.email_change_requested",
        EMAIL_CHANGE.example_data,
        {**EMAIL_CHANGE.example_personal, "first_name": "Émilie"},
    )
    assert n == Notification(
        event_id="e-1",
        event_type="account.email_change_requested",
        template="email_change_confirmation",
        order_id=None,
        account_id=EMAIL_CHANGE.example_data["account_id"],
        recipient_email="new.address@example.org",
        status="pending",
        confirmation_url=EMAIL_CHANGE.example_personal["confirmation_url"],
    )
    assert "Émilie" not in {str(v) for v in vars(n).values()}
    assert {f: None for f in PERSONAL_FIELDS} == {
        f: getattr(n.without_personal_data(), f) for f in PERSONAL_FIELDS
    }
    assert n.without_personal_data().template == "email_change_confirmation"


@pytest.mark.parametrize(
    "personal",
    [
        None,
        {"email": "new@example.org"},
        {"confirmation_url": "https://coc.example/confirm?token=x"},
        {"email": "", "confirmation_url": "https://coc.example/confirm?token=x"},
    ],
)
def test_an_email_change_without_its_address_or_its_link_is_refused(personal):
    with pytest.raises(InvalidEvent):
        Notification.for_event(
            "e-1", "account.email_change_requested", EMAIL_CHANGE.example_data, personal
        )


def test_only_the_personal_parts_sending_needs_are_kept():
    # an order event never keeps a link, even if a producer put one in its personal part
    n = Notification.for_event(
        "e-1",
        "order.placed",
        PLACED.example_data,
        {**PLACED.example_personal, "confirmation_url": "https://x.example/?token=y"},
    )
    assert n.confirmation_url is None and n.recipient_email == "emilie@example.org"


def test_an_account_deactivation_makes_a_notification_of_the_account():
    n = Notification.for_event("e-1", "account.deactivated", {"account_id": "a-1"})
    assert (n.template, n.account_id, n.order_id) == ("account_deactivated", "a-1", None)


@pytest.mark.parametrize(
    "event_type,data",
    [
        ("payment.failed", {}),
        ("order.placed", {"order_id": ""}),
        ("account.deactivated", {"order_id": "o-1"}),
        ("account.email_change_requested", {"order_id": "o-1"}),
        ("order.documents_completed", {"order_id": "o-1"}),
    ],
)
def test_an_event_without_its_subject_or_without_a_template_is_refused(event_type, data):
    with pytest.raises(InvalidEvent):
        Notification.for_event("e-1", event_type, data)
