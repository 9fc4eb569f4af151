"""The VAT regime decided when an order is placed: a business of another EU member state whose
VAT number VIES confirms (the VIES sandbox, coc_shared.vies.SandboxVies, on a local port) pays the
price without VAT under the reverse charge; VIES down places the order with French VAT (never a
5xx); a number VIES does not know is refused on its field. ``order.placed`` carries what the
payments service invoices (its own ``Sale`` reads it back)."""

from __future__ import annotations

import uuid

import pytest
from orders_helpers import order_body, outbox_events

from coc_orders.domain.brands import load_brands
from coc_orders.domain.vat import (
    REVERSE_CHARGE_MENTION,
    buyer_country,
    price,
    reverse_charge_candidate,
)
from coc_payments.domain.billing import Sale
from coc_shared.vies import UNAVAILABLE, VALID

BERLIN = {"line1": "Friedrichstraße 1", "postal_code": "10117", "city": "Berlin", "country": "DE"}
GERMAN_COMPANY = {"name": "Autohaus Weiß GmbH", "vat_number": "DE 136 695 976"}
PEUGEOT = load_brands().by_name("Peugeot")  # 249,00 € of which 41,50 € VAT


def german_order(**changes) -> dict:
    body = order_body(
        shipping_address=BERLIN, company=GERMAN_COMPANY, customer__phone="+33612345678"
    )
    body.update(changes)
    return body


def placed_event(runtime, order_id: str) -> dict:
    [placed] = outbox_events(runtime, "order.placed", order_id)
    return placed


# the rules (no I/O) ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "company,country,expected",
    [
        ({"name": "A GmbH", "vat_number": "DE136695976"}, "DE", "DE136695976"),
        ({"name": "A AE", "vat_number": "EL094259216"}, "GR", "EL094259216"),
        ({"name": "A SARL", "vat_number": "FR40303265045"}, "FR", None),  # French VAT
        ({"name": "A GmbH", "vat_number": "DE136695976"}, "FR", None),  # established in France
        ({"name": "A GmbH", "vat_number": "DE136695976"}, "AT", None),  # not that state's number
        ({"name": "A AG", "vat_number": "DE136695976"}, "CH", None),  # outside the EU
        ({"name": "A GmbH"}, "DE", None),  # no VAT number
        (None, "DE", None),  # a private buyer
    ],
)
def test_who_may_be_invoiced_under_the_reverse_charge(company, country, expected):
    assert reverse_charge_candidate(company, country) == expected


def test_the_buyer_s_country_is_the_billing_address_s_else_the_shipping_address_s():
    assert buyer_country({"country": "fr"}, BERLIN) == "FR"
    assert buyer_country(None, BERLIN) == "DE"


def test_a_confirmed_number_pays_the_net_price_and_anything_else_french_vat():
    reverse = price(PEUGEOT, VALID)
    assert (reverse.regime, reverse.total_cents, reverse.vat_cents, reverse.vat_rate) == (
        "reverse_charge",
        24900 - 4150,
        0,
        "0.0",
    )
    assert reverse.mention == REVERSE_CHARGE_MENTION and reverse.vat_check == VALID
    for status, check in ((None, None), (UNAVAILABLE, UNAVAILABLE)):
        standard = price(PEUGEOT, status)
        assert (standard.regime, standard.total_cents, standard.vat_cents) == (
            "standard",
            24900,
            4150,
        )
        assert standard.vat_check == check and standard.mention is None


# through the API, with the VIES sandbox ------------------------------------------------------


def test_a_business_of_another_member_state_with_a_valid_number_pays_no_french_vat(
    runtime, client, vies
):
    asked = vies.calls
    answer = client.post("/v1/orders", json=german_order())
    assert answer.status_code == 201, answer.get_json()
    order = answer.get_json()
    assert vies.calls == asked + 1
    assert order["total"] == {"amount_cents": 20750, "currency": "EUR"}
    assert order["vat"] == {
        "rate": "0.0",
        "amount_cents": 0,
        "regime": "reverse_charge",
        "vat_number_check": "valid",
        "mention": REVERSE_CHARGE_MENTION,
    }
    shown = client.get(
        f"/v1/orders/{order['id']}", headers={"X-Order-Token": order["access_token"]}
    ).get_json()
    assert (shown["total"], shown["vat"]) == (order["total"], order["vat"])

    placed = placed_event(runtime, order["id"])
    data = placed["data"]
    assert (data["vat_regime"], data["vat"], data["total"]) == (
        "reverse_charge",
        {"amount_cents": 0, "currency": "EUR"},
        {"amount_cents": 20750, "currency": "EUR"},
    )
    assert placed["personal"]["company"]["vat_number"] == "DE136695976"
    # the payments service invoices it as such: net 207,50 €, no VAT, category AE
    sale = Sale.from_order_placed(data, placed["personal"], "20.0")
    assert sale.amounts.as_dict() == {
        "net_cents": 20750,
        "vat_cents": 0,
        "total_cents": 20750,
        "currency": "EUR",
        "vat_rate": "0.00",
        "vat_regime": "reverse_charge",
        "vat_category": "AE",
    }


def test_a_private_or_french_buyer_pays_french_vat_without_asking_vies(runtime, client, vies):
    asked = vies.calls
    french = order_body(
        company={"name": "Garage Martin SARL", "vat_number": "FR40303265045"},
    )
    private_german = order_body(shipping_address=BERLIN, customer__phone="+33612345678")
    billed_in_france = german_order(
        billing_address={
            "line1": "2 av. Foch",
            "postal_code": "69006",
            "city": "Lyon",
            "country": "FR",
        }
    )
    for body in (french, private_german, billed_in_france):
        answer = client.post("/v1/orders", json=body)
        assert answer.status_code == 201, answer.get_json()
        order = answer.get_json()
        assert order["total"]["amount_cents"] == 24900
        assert order["vat"] == {
            "rate": "20.0",
            "amount_cents": 4150,
            "regime": "standard",
            "vat_number_check": None,
        }
        data = placed_event(runtime, order["id"])["data"]
        assert (data["vat_regime"], data["vat"]) == (
            "standard",
            {"amount_cents": 4150, "currency": "EUR"},
        )
    assert vies.calls == asked


def test_vies_down_places_the_order_with_french_vat_and_says_so(runtime, client, vies):
    vies.unavailable = True  # every member state answers MS_UNAVAILABLE
    answer = client.post("/v1/orders", json=german_order())
    assert answer.status_code == 201, answer.get_json()
    order = answer.get_json()
    assert order["total"]["amount_cents"] == 24900
    assert order["vat"]["regime"] == "standard"
    assert order["vat"]["vat_number_check"] == "unavailable"
    data = placed_event(runtime, order["id"])["data"]
    assert data["vat_regime"] == "standard" and data["vat"]["amount_cents"] == 4150


def test_vies_unreachable_places_the_order_with_french_vat(make_runtime):
    rt = make_runtime(ORDERS_VIES_URL="http://127.0.0.1:9", ORDERS_VIES_TIMEOUT="1")
    answer = rt.create_app().test_client().post("/v1/orders", json=german_order())
    assert answer.status_code == 201, answer.get_json()
    assert answer.get_json()["vat"]["vat_number_check"] == "unavailable"
    assert answer.get_json()["total"]["amount_cents"] == 24900


def test_a_number_vies_does_not_know_is_refused_on_its_field(runtime, client, vies):
    vies.invalid.add("DE136695976")
    answer = client.post("/v1/orders", json=german_order())
    assert answer.status_code == 422, answer.get_json()
    messages = answer.get_json()["error"]["fields"]["company"]["vat_number"]
    assert "VIES" in messages[0]
    # without the number, the same buyer orders with French VAT
    company = {"name": GERMAN_COMPANY["name"]}
    again = client.post("/v1/orders", json=german_order(company=company))
    assert again.status_code == 201 and again.get_json()["vat"]["regime"] == "standard"


def test_a_replayed_order_is_not_checked_again(runtime, client, vies):
    headers = {"Idempotency-Key": f"vat-replay-{uuid.uuid4()}"}
    first = client.post("/v1/orders", json=german_order(), headers=headers)
    asked = vies.calls
    vies.unavailable = True
    again = client.post("/v1/orders", json=german_order(), headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert vies.calls == asked
    assert again.get_json()["vat"] == first.get_json()["vat"]
    assert again.get_json()["vat"]["regime"] == "reverse_charge"
