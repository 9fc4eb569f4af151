"""Unit tests of the orders domain (no I/O) and of the handler table's coverage of the catalogue."""

from datetime import UTC, datetime

import pytest

from coc_orders.domain.brands import load_brands
from coc_orders.domain.errors import NotAllowedNow
from coc_orders.domain.model import (
    LIFECYCLE_MILESTONES,
    RECORDED_FACTS,
    Order,
    OrderDocument,
    OrderEvent,
    Refund,
    complete_set,
    missing_documents,
    requested_kinds,
)
from coc_orders.service_layer.handlers import handlers
from coc_shared.catalogue import all_event_types
from coc_shared.deactivation import AccountDeactivation
from coc_shared.errors import InvalidEvent, PermanentError
from coc_shared.tokens import new_order_access_token

WHEN = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def test_handles_exactly_the_event_types_the_catalogue_lists_it_as_a_consumer_of():
    assert set(handlers()) == {e.type for e in all_event_types() if "orders" in e.consumers}


@pytest.mark.parametrize("event_type,milestone", sorted(LIFECYCLE_MILESTONES.items()))
def test_an_order_event_names_its_milestone(event_type, milestone):
    event = OrderEvent.from_message("e-1", event_type, WHEN, {"order_id": "o-1"})
    assert (event.order_id, event.event_id, event.event_type, event.occurred_at) == (
        "o-1",
        "e-1",
        event_type,
        WHEN,
    )
    assert event.milestone == milestone


def test_an_order_event_accepts_an_iso_timestamp():
    event = OrderEvent.from_message(
        "e-1", "payment.confirmed", "2026-11-27T10:00:00+00:00", {"order_id": "o-1"}
    )
    assert event.occurred_at == WHEN


def test_an_event_outside_the_order_life_is_refused():
    with pytest.raises(InvalidEvent):
        OrderEvent.from_message("e-1", "order.placed", WHEN, {"order_id": "o-1"})


@pytest.mark.parametrize("data", [{}, {"order_id": ""}, {"order_id": 12}])
def test_an_order_event_needs_an_order_id(data):
    with pytest.raises(InvalidEvent):
        OrderEvent.from_message("e-1", "payment.failed", WHEN, data)


def test_an_event_that_cannot_be_recorded_is_parked_at_once():
    assert issubclass(InvalidEvent, PermanentError)


def test_an_order_event_needs_an_aware_time():
    with pytest.raises(InvalidEvent):
        OrderEvent.from_message(
            "e-1", "payment.failed", datetime(2026, 11, 27), {"order_id": "o-1"}
        )


def test_an_account_deactivation_reads_the_account_and_the_erasure_time():
    deactivation = AccountDeactivation.from_message(
        "e-2", {"account_id": "a-1", "erased_at": "2026-11-27T10:00:00+00:00"}
    )
    assert deactivation == AccountDeactivation(account_id="a-1", event_id="e-2", erased_at=WHEN)


@pytest.mark.parametrize(
    "data",
    [
        {"erased_at": "2026-11-27T10:00:00+00:00"},
        {"account_id": "a-1"},
        {"account_id": "a-1", "erased_at": "yesterday"},
        {"account_id": "a-1", "erased_at": "2026-11-27T10:00:00"},
    ],
)
def test_an_account_deactivation_needs_an_account_and_an_aware_erasure_time(data):
    with pytest.raises(InvalidEvent):
        AccountDeactivation.from_message("e-2", data)


def test_a_refund_is_an_order_event_that_moves_nothing():
    event = OrderEvent.from_message("e-1", "payment.refunded", WHEN, {"order_id": "o-1"})
    assert (event.milestone, event.moves_the_order) == ("payment_refunded", False)
    assert OrderEvent.from_message(
        "e-2", "documents.rejected_by_supplier", WHEN, {"order_id": "o-1"}
    ).moves_the_order
    assert not set(RECORDED_FACTS) & set(LIFECYCLE_MILESTONES)


def document(id_, kind, rejected=False):
    return OrderDocument(
        id=id_,
        order_id="o-1",
        kind=kind,
        content_type="application/pdf",
        size=1,
        sha256="0" * 64,
        uploaded_at=WHEN,
        rejected_at=WHEN if rejected else None,
    )


def test_a_document_refused_by_the_supplier_no_longer_counts():
    required = ["id_card", "registration_certificate"]
    docs = [
        document("d-1", "id_card"),
        document("d-2", "registration_certificate", rejected=True),
        document("d-3", "other"),
    ]
    assert missing_documents(required, docs) == ["registration_certificate"]
    docs.append(document("d-4", "registration_certificate"))
    assert missing_documents(required, docs) == [] and complete_set(required, docs) == [
        "d-1",
        "d-4",
    ]


def order(**kw):
    values = dict(
        id="o-1",
        status="sent_to_supplier",
        placed_at=WHEN,
        payment_method="card",
        brand="Peugeot",
        vin="VF3ABCDEF12345678",
        first_registration_date=WHEN.date(),
        vehicle_extra={},
        total_cents=24900,
        currency="EUR",
        vat_rate="20.0",
        vat_cents=4150,
        documents_required=["id_card", "registration_certificate"],
        marketing_consent=False,
        customer={},
        shipping_address={},
        documents_completed_at=WHEN,
    )
    values.update(kw)
    return Order(**values)


def test_the_supplier_s_request_makes_the_order_require_the_documents_again():
    o = order()
    result = o.apply("documents.rejected_by_supplier")
    assert result.applied and o.status == "supplier_rejected"
    assert o.request_documents_again(
        ["registration_certificate", "purchase_invoice", "registration_certificate"]
    ) == ["registration_certificate", "purchase_invoice"]
    assert o.documents_required == ["id_card", "registration_certificate", "purchase_invoice"]
    assert o.documents_completed_at is None


def test_a_kind_the_upload_does_not_know_is_asked_for_as_other():
    assert requested_kinds(["certificate_of_insurance", "id_card", "x-ray"]) == ["other", "id_card"]
    assert requested_kinds([]) == [] and requested_kinds(None) == []


def test_a_new_order_takes_its_price_vat_and_documents_from_the_brand_never_the_client():
    peugeot = load_brands().by_name("Peugeot")
    values = dict(
        payment_method="card",
        vin="VF3ABCDEF12345678",
        first_registration_date=WHEN.date(),
        vehicle_extra={},
        marketing_consent=False,
        customer={},
        shipping_address={},
    )
    placed = Order.place(
        id="o-9",
        seq=42,
        placed_at=WHEN,
        brand=peugeot,
        account_id=None,
        access_token_sha256="ab",
        values=values,
    )
    assert (placed.status, placed.brand, placed.total_cents, placed.vat_cents) == (
        "placed",
        "Peugeot",
        24900,
        4150,
    )
    assert placed.documents_required == ["id_card", "registration_certificate"]
    assert placed.number == "COC-2026-000042"


@pytest.mark.parametrize("status", ["placed", "payment_failed", "paid"])
def test_an_order_is_cancelled_before_it_is_sent_to_the_supplier(status):
    o = order(status=status)
    o.cancel()
    assert o.status == "cancelled"


@pytest.mark.parametrize("status", ["sent_to_supplier", "shipped", "cancelled"])
def test_a_cancellation_that_the_state_refuses_says_why(status):
    o = order(status=status)
    with pytest.raises(NotAllowedNow) as refused:
        o.cancel()
    assert refused.value.status == status and str(refused.value).startswith("this order")
    assert o.status == status


def test_a_final_order_takes_no_more_documents():
    order(status="paid").check_accepts_documents()
    with pytest.raises(NotAllowedNow, match="cancelled: it takes no more documents"):
        order(status="cancelled").check_accepts_documents()


def test_the_documents_complete_the_order_once():
    o = order(status="placed", documents_completed_at=None)
    first = [document("d-1", "id_card")]
    assert o.complete_documents(first, WHEN) is None and o.documents_completed_at is None
    both = first + [document("d-2", "registration_certificate")]
    assert o.complete_documents(both, WHEN) == ["d-1", "d-2"] and o.documents_completed_at == WHEN
    assert (
        o.complete_documents(both + [document("d-3", "id_card")], WHEN) is None
    )  # complete already


def test_an_order_is_opened_by_its_owner_or_its_access_token_only():
    token, token_hash = new_order_access_token()
    guest = order(access_token_sha256=token_hash)
    assert (
        guest.opened_by(None, token)
        and not guest.opened_by(None, token + "x")
        and not guest.opened_by("a-1", None)
    )
    owned = order(account_id="a-1")
    assert (
        owned.opened_by("a-1", None)
        and not owned.opened_by("a-2", None)
        and not owned.opened_by(None, None)
    )


@pytest.mark.parametrize(
    "amount,refused",
    [
        ({"amount_cents": 24900, "currency": "EUR"}, False),
        ({"amount_cents": 1, "currency": "EUR"}, True),
        ({"amount_cents": 24901, "currency": "EUR"}, True),
        ({"amount_cents": 24900, "currency": "USD"}, True),
        ({"amount_cents": "24900", "currency": "EUR"}, True),
        ({"amount_cents": True, "currency": "EUR"}, True),
        (None, True),
    ],
)
def test_only_the_order_s_total_in_its_currency_pays_it(amount, refused):
    assert order(total_cents=24900, currency="EUR").payment_refusal(amount) == (
        "amount_mismatch" if refused else None
    )


def refund_data(**changes):
    data = {
        "order_id": "o-1",
        "refund_id": "r-1",
        "reason": "supplier_unable",
        "amount": {"amount_cents": 24900, "currency": "EUR"},
        "credit_note_number": "AV-00000001",
    }
    data.update(changes)
    return data


def test_a_refund_that_gives_the_sale_back_refunds_the_order_in_either_order_of_its_events():
    for first, second in (
        ("refund.requested", "refund.completed"),
        ("refund.completed", "refund.requested"),
    ):
        o = order()
        refund = Refund.learn(None, first, refund_data(), WHEN)
        assert o.refund_settled(refund) is None and o.status == "sent_to_supplier"
        refund = Refund.learn(refund, second, refund_data(), WHEN)
        assert (refund.status, refund.reason, refund.credit_note_number) == (
            "completed",
            "supplier_unable",
            "AV-00000001",
        )
        assert o.refund_settled(refund).applied and o.status == "refunded"


@pytest.mark.parametrize(
    "changes,status",
    [
        ({"reason": "duplicate_payment"}, "paid"),  # the sale stands
        ({"amount": {"amount_cents": 100, "currency": "EUR"}}, "paid"),  # a part of it
        ({"amount": {"amount_cents": 24900, "currency": "USD"}}, "paid"),
    ],
)
def test_a_refund_that_leaves_the_sale_moves_nothing(changes, status):
    o = order(status=status)
    refund = Refund.learn(None, "refund.requested", refund_data(**changes), WHEN)
    refund = Refund.learn(refund, "refund.completed", refund_data(**changes), WHEN)
    assert o.refund_settled(refund) is None and o.status == status


def test_a_sale_given_back_after_the_certificate_came_does_not_fit():
    o = order(status="delivered")
    refund = Refund.learn(None, "refund.requested", refund_data(), WHEN)
    refund = Refund.learn(refund, "refund.completed", refund_data(), WHEN)
    assert not o.refund_settled(refund).applied and o.status == "delivered"


@pytest.mark.parametrize(
    "data",
    [
        refund_data(refund_id=None),
        refund_data(amount=None),
        refund_data(amount={"amount_cents": "100", "currency": "EUR"}),
    ],
)
def test_a_refund_event_without_its_refund_or_amount_is_refused(data):
    with pytest.raises(InvalidEvent):
        Refund.learn(None, "refund.requested", data, WHEN)


def test_a_refund_is_one_order_s():
    refund = Refund.learn(None, "refund.requested", refund_data(), WHEN)
    with pytest.raises(InvalidEvent):
        Refund.learn(refund, "refund.completed", refund_data(order_id="o-2"), WHEN)
