"""Unit tests of the payments domain (no I/O) and of the handler table's coverage of the
catalogue."""

from datetime import UTC, datetime

import pytest

from coc_payments.domain.model import InvalidEvent, OrderCancellation, PaymentDue
from coc_payments.service_layer.handlers import handlers
from coc_shared.catalogue import all_event_types, lookup
from coc_shared.deactivation import AccountDeactivation
from coc_shared.errors import PermanentError

ORDER_PLACED = lookup("order.placed", 1).example_data


def test_handles_exactly_the_event_types_the_catalogue_lists_it_as_a_consumer_of():
    assert set(handlers()) == {e.type for e in all_event_types() if "payments" in e.consumers}


def test_an_order_placed_makes_its_total_due():
    due = PaymentDue.from_order_placed(ORDER_PLACED)
    assert due == PaymentDue(
        order_id=ORDER_PLACED["order_id"],
        order_number="COC-2026-000123",
        method="card",
        amount_cents=24900,
        currency="EUR",
        status="due",
        account_id=None,
        access_token_sha256=ORDER_PLACED["access_token_sha256"],
        reference="RF73COC2026000123",
    )


def test_a_payment_due_keeps_nothing_personal():
    due = PaymentDue.from_order_placed({**ORDER_PLACED, "email": "someone@example.org"})
    # identifiers only: the account id, the SHA-256 of the order's access token, the transfer
    # reference
    assert set(vars(due)) == {
        "order_id",
        "order_number",
        "method",
        "amount_cents",
        "currency",
        "status",
        "account_id",
        "access_token_sha256",
        "reference",
        "correlation_id",
        "paid_provider",
        "paid_transaction_id",
    }


@pytest.mark.parametrize(
    "change",
    [
        {"order_id": ""},
        {"order_number": None},
        {"payment_method": "cash"},
        {"total": {"amount_cents": -1, "currency": "EUR"}},
        {"total": {"amount_cents": 1.5, "currency": "EUR"}},
        {"total": {"amount_cents": True, "currency": "EUR"}},
        {"total": {"amount_cents": 100, "currency": "eur"}},
        {"total": None},
    ],
)
def test_a_payment_due_refuses_what_cannot_be_paid(change):
    with pytest.raises(InvalidEvent):
        PaymentDue.from_order_placed({**ORDER_PLACED, **change})


def test_an_event_that_cannot_be_recorded_is_parked_at_once():
    assert issubclass(InvalidEvent, PermanentError)


def test_a_free_order_is_due_for_zero():
    assert (
        PaymentDue.from_order_placed(
            {**ORDER_PLACED, "total": {"amount_cents": 0, "currency": "EUR"}}
        ).amount_cents
        == 0
    )


def test_an_account_deactivation_reads_the_account_and_the_erasure_time():
    deactivation = AccountDeactivation.from_message(
        "e-2", {"account_id": "a-1", "erased_at": "2026-11-27T10:00:00+00:00"}
    )
    assert deactivation == AccountDeactivation("a-1", "e-2", datetime(2026, 11, 27, 10, tzinfo=UTC))


@pytest.mark.parametrize(
    "data",
    [
        {"erased_at": "2026-11-27T10:00:00+00:00"},
        {"account_id": "a-1"},
        {"account_id": "a-1", "erased_at": "2026-11-27T10:00:00"},
    ],
)
def test_an_account_deactivation_needs_an_account_and_an_aware_erasure_time(data):
    with pytest.raises(InvalidEvent):
        AccountDeactivation.from_message("e-2", data)


def test_an_order_cancellation_keeps_who_and_when_but_not_the_free_text_reason():
    data = lookup("order.cancelled", 1).example_data
    cancellation = OrderCancellation.from_message("e-3", "2026-11-27T10:00:00+00:00", data)
    assert cancellation == OrderCancellation(
        data["order_id"], "e-3", "customer", datetime(2026, 11, 27, 10, tzinfo=UTC)
    )
    assert data["reason"] not in {str(v) for v in vars(cancellation).values()}


@pytest.mark.parametrize(
    "data,occurred_at",
    [
        ({"cancelled_by": "customer"}, "2026-11-27T10:00:00+00:00"),
        ({"order_id": "o-1", "cancelled_by": "robot"}, "2026-11-27T10:00:00+00:00"),
        ({"order_id": "o-1", "cancelled_by": "staff"}, "2026-11-27T10:00:00"),
    ],
)
def test_an_order_cancellation_needs_an_order_who_and_an_aware_time(data, occurred_at):
    with pytest.raises(InvalidEvent):
        OrderCancellation.from_message("e-3", occurred_at, data)
