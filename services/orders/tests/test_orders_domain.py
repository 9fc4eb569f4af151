"""Unit tests of the orders domain (no I/O) and of the handler table's coverage of the catalogue."""
from datetime import datetime, timezone

import pytest

from coc_orders.domain.model import (
    LIFECYCLE_MILESTONES, RECORDED_FACTS, AccountDeactivation, InvalidEvent, Order, OrderDocument, OrderEvent,
    complete_set, missing_documents, requested_kinds,
)
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


def test_a_refund_is_an_order_event_that_moves_nothing():
    event = OrderEvent.from_message("e-1", "payment.refunded", WHEN, {"order_id": "o-1"})
    assert (event.milestone, event.moves_the_order) == ("payment_refunded", False)
    assert OrderEvent.from_message("e-2", "documents.rejected_by_supplier", WHEN, {"order_id": "o-1"}).moves_the_order
    assert not set(RECORDED_FACTS) & set(LIFECYCLE_MILESTONES)


def document(id_, kind, rejected=False):
    return OrderDocument(id=id_, order_id="o-1", kind=kind, content_type="application/pdf", size=1, sha256="0" * 64,
                         uploaded_at=WHEN, rejected_at=WHEN if rejected else None)


def test_a_document_refused_by_the_supplier_no_longer_counts():
    required = ["id_card", "registration_certificate"]
    docs = [document("d-1", "id_card"), document("d-2", "registration_certificate", rejected=True),
            document("d-3", "other")]
    assert missing_documents(required, docs) == ["registration_certificate"]
    docs.append(document("d-4", "registration_certificate"))
    assert missing_documents(required, docs) == [] and complete_set(required, docs) == ["d-1", "d-4"]


def order(**kw):
    values = dict(id="o-1", status="sent_to_supplier", placed_at=WHEN, payment_method="card", brand="Peugeot",
                  vin="VF3ABCDEF12345678", first_registration_date=WHEN.date(), vehicle_extra={}, total_cents=24900,
                  currency="EUR", vat_rate="20.0", vat_cents=4150, documents_required=["id_card", "registration_certificate"],
                  marketing_consent=False, customer={}, shipping_address={}, documents_completed_at=WHEN)
    values.update(kw)
    return Order(**values)


def test_the_supplier_s_request_makes_the_order_require_the_documents_again():
    o = order()
    result = o.apply("documents.rejected_by_supplier")
    assert result.applied and o.status == "supplier_rejected"
    assert o.request_documents_again(["registration_certificate", "purchase_invoice",
                                      "registration_certificate"]) == ["registration_certificate", "purchase_invoice"]
    assert o.documents_required == ["id_card", "registration_certificate", "purchase_invoice"]
    assert o.documents_completed_at is None


def test_a_kind_the_upload_does_not_know_is_asked_for_as_other():
    assert requested_kinds(["certificate_of_insurance", "id_card", "x-ray"]) == ["other", "id_card"]
    assert requested_kinds([]) == [] and requested_kinds(None) == []
