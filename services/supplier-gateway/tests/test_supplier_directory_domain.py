"""The supplier directory as data (checked at start with every problem named) and the request's
life with its supplier (pure rules: late, duplicated and out-of-order replies have one effect)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta

import pytest

from coc_shared.config import ConfigError
from coc_supplier_gateway.config import GatewayConfig
from coc_supplier_gateway.domain.directory import (
    DEFAULT_PATH,
    DirectoryError,
    load_directory,
    parse_directory,
)
from coc_supplier_gateway.domain.model import SupplierRequest

SHIPPED = json.loads(DEFAULT_PATH.read_text(encoding="utf-8"))
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def test_the_shipped_directory_has_realistic_suppliers_for_the_brands_sold():
    directory = load_directory()
    assert len(directory.suppliers) >= 3
    assert {s.channel for s in directory.suppliers} == {"amqp", "http"}
    for maker, brand, code in [
        ("Peugeot", "Peugeot", "psa-coc"),
        ("Citroën", "Citroën", "psa-coc"),
        ("Renault Dacia", "Dacia", "renault-coc"),
        ("Škoda", None, "vag-coc"),
        (None, "skoda", "vag-coc"),
        ("BMW", "BMW", "bmw-coc"),
        ("DaimlerChrysler AG/Daimler AG", "Mercedes-Benz", "mercedes-coc"),
    ]:
        assert directory.for_vehicle(maker, brand).code == code
    assert directory.for_vehicle("Fiat Automobiles", "Fiat") is None


def broken(change) -> dict:
    document = copy.deepcopy(SHIPPED)
    change(document["suppliers"])
    return document


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: s[0].update(channel="fax"), "channel must be one of amqp, http"),
        (lambda s: s[1].pop("endpoint"), "an http supplier needs its endpoint"),
        (lambda s: s[0]["needs"].update(documents=["passport"]), "unknown ['passport']"),
        (lambda s: s[0].update(turnaround_hours=-1), "turnaround_hours"),
        (lambda s: s[0].update(code="PSA COC"), "code must be"),
        (lambda s: s[0].update(code="gateway"), "code must be"),
        (lambda s: s[2].update(code="psa-coc"), "the code is used twice"),
        (lambda s: s[2]["makers"].append("Peugeot"), "'Peugeot' is served by both"),
        (
            lambda s: s[1]["needs"].update(shipping_address=False),
            "ships to the customer needs the customer's name and the shipping address",
        ),
    ],
)
def test_a_directory_that_cannot_be_used_is_refused_with_its_problem(change, message):
    with pytest.raises(DirectoryError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_directory(broken(change))


def test_every_problem_is_named_at_once_and_the_start_stops(tmp_path):
    path = tmp_path / "directory.json"
    path.write_text(
        json.dumps(broken(lambda s: (s[0].update(channel="fax"), s[1].pop("endpoint"))))
    )
    with pytest.raises(ConfigError) as refused:
        GatewayConfig.from_env({"SUPPLIER_GATEWAY_DIRECTORY_PATH": str(path)})
    assert "channel must be" in str(refused.value) and "endpoint" in str(refused.value)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="is not JSON"):
        GatewayConfig.from_env({"SUPPLIER_GATEWAY_DIRECTORY_PATH": str(path)})


def test_a_supplier_without_a_broker_user_stops_the_start(tmp_path, monkeypatch):
    monkeypatch.setenv("BUS_SUPPLIER_CODES", "psa-coc")
    with pytest.raises(ConfigError, match="have no broker user"):
        GatewayConfig.from_env({})


def sent(request: SupplierRequest) -> SupplierRequest:
    request.status, request.sent_at, request.due_at = "sent", NOW, NOW + timedelta(hours=72)
    request.request_id, request.supplier, request.round = "r-1", "psa-coc", 1
    return request


def test_replies_in_order_each_apply_once():
    request = sent(SupplierRequest("o-1"))
    accepted = request.accepted(NOW)
    assert (accepted.result, accepted.events) == ("applied", ("supplier.request_accepted",))
    assert (request.accepted(NOW).result, request.accepted(NOW).events) == ("duplicate", ())
    issued = request.issued(NOW, "c-1", original_posted=False)
    assert (issued.result, issued.events, issued.implied) == (
        "applied",
        ("certificate.received",),
        (),
    )
    assert request.issued(NOW, "c-2", original_posted=True).result == "duplicate"
    assert request.accepted(NOW).result == "late" and request.status == "issued"
    assert request.certificate_id == "c-1"


def test_a_later_reply_implies_the_earlier_steps():
    request = sent(SupplierRequest("o-1"))
    shipped = request.shipped(NOW, "supplier", "colissimo", "6A12345678901", None, "c-9")
    assert shipped.events == ("certificate.received", "certificate.shipped")
    assert shipped.implied == ("accepted", "issued") and request.original_posted is True
    assert request.issued(NOW, "c-1", False).result == "late"
    assert request.rejected(NOW).result == "late"
    assert request.delivered(NOW).events == ("certificate.delivered",)
    assert request.customer_name is None and request.shipping_address is None


def test_a_rejection_waits_for_new_documents_and_ends_the_round():
    request = sent(SupplierRequest("o-1"))
    request.documents_completed = True
    assert request.rejected(NOW).events == ("documents.rejected_by_supplier",)
    assert request.documents_completed is False and request.status == "rejected"
    assert request.rejected(NOW).result == "duplicate"
    assert request.accepted(NOW).result == "ignored"


def test_an_overdue_request_falls_due_once():
    request = sent(SupplierRequest("o-1"))
    assert request.falls_due(NOW + timedelta(hours=71)) is False
    assert request.falls_due(NOW + timedelta(hours=73)) is True and request.overdue
    assert request.falls_due(NOW + timedelta(hours=74)) is False
    request.issued(NOW, "c-1", True)
    assert not request.overdue
