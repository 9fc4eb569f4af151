"""Unit tests of the supplier gateway's domain (no I/O) and of the handler table's coverage of the
catalogue."""

import itertools

import pytest

from coc_shared.catalogue import all_event_types, lookup
from coc_shared.errors import InvalidEvent
from coc_supplier_gateway.domain.directory import load_directory
from coc_supplier_gateway.domain.model import (
    CANCELLED,
    PENDING,
    READY,
    SupplierRequest,
    order_id_of,
)
from coc_supplier_gateway.service_layer.handlers import handlers

PLACED = lookup("order.placed", 1).example_data
PERSONAL = lookup("order.placed", 1).example_personal
COMPLETED = lookup("order.documents_completed", 1).example_data
DIRECTORY = load_directory()


def test_handles_exactly_the_event_types_the_catalogue_lists_it_as_a_consumer_of():
    assert set(handlers()) == {
        e.type for e in all_event_types() if "supplier-gateway" in e.consumers
    }


def test_a_new_request_waits_for_everything():
    request = SupplierRequest("o-1")
    assert (request.status, request.missing) == (PENDING, ["order", "payment", "documents"])


STEPS = {
    "order": lambda r: r.order_was_placed(PLACED, PERSONAL, "Peugeot"),
    "payment": lambda r: r.payment_was_confirmed(),
    "documents": lambda r: r.documents_were_completed(COMPLETED),
}


@pytest.mark.parametrize("order", list(itertools.permutations(STEPS)))
def test_a_request_is_ready_once_order_payment_and_documents_are_known_in_any_order(order):
    request = SupplierRequest("o-1")
    for i, step in enumerate(order):
        assert request.status == PENDING
        STEPS[step](request)
        request.prepare(DIRECTORY)
        assert request.missing == [s for s in STEPS if s not in order[: i + 1]]
    assert request.status == READY and request.supplier == "psa-coc" and request.round == 1
    assert (request.brand, request.document_ids) == ("Peugeot", tuple(COMPLETED["document_ids"]))


def test_the_same_fact_twice_changes_nothing():
    request = SupplierRequest("o-1")
    request.payment_was_confirmed()
    request.payment_was_confirmed()
    assert (request.paid, request.status, request.missing) == (
        True,
        PENDING,
        ["order", "documents"],
    )


@pytest.mark.parametrize("cancel_after", range(4))
@pytest.mark.parametrize("order", list(itertools.permutations(STEPS)))
def test_a_cancelled_request_never_becomes_ready_whatever_arrives_after(order, cancel_after):
    request = SupplierRequest("o-1")
    for step in order[:cancel_after]:
        STEPS[step](request)
        request.prepare(DIRECTORY)
    assert request.order_was_cancelled() is True
    for step in order[cancel_after:]:
        STEPS[step](request)
        request.prepare(DIRECTORY)
        assert request.status == CANCELLED
    assert request.cancelled and request.status == CANCELLED


def test_a_cancellation_twice_changes_nothing_the_second_time():
    request = SupplierRequest("o-1")
    assert request.order_was_cancelled() is True
    assert request.order_was_cancelled() is False
    assert request.status == CANCELLED


def test_a_ready_request_not_yet_sent_is_cancelled_too():
    request = SupplierRequest("o-1")
    for step in STEPS.values():
        step(request)
    request.prepare(DIRECTORY)
    assert request.status == READY
    assert request.order_was_cancelled() is True and request.status == CANCELLED


@pytest.mark.parametrize("data", [{}, {"brand": " "}, {"brand": None}])
def test_an_order_needs_a_brand(data):
    with pytest.raises(InvalidEvent):
        SupplierRequest("o-1").order_was_placed(data, None, None)


@pytest.mark.parametrize(
    "data", [{}, {"document_ids": "d-1"}, {"document_ids": ["d-1", ""]}, {"document_ids": [3]}]
)
def test_completed_documents_need_their_ids(data):
    with pytest.raises(InvalidEvent):
        SupplierRequest("o-1").documents_were_completed(data)


@pytest.mark.parametrize("data", [{}, {"order_id": ""}, {"order_id": 5}])
def test_an_event_without_order_is_refused(data):
    with pytest.raises(InvalidEvent):
        order_id_of("payment.confirmed", data)
