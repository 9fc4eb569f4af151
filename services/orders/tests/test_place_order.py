"""POST /v1/orders: validation per field, prices from the catalogue, order.placed in the outbox,
Idempotency-Key, guest access token, client IP and user agent recorded but never shown."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from orders_helpers import order_body, outbox_events
from sqlalchemy import func, select

from coc_orders.adapters import tables
from coc_shared.catalogue import lookup
from coc_shared.tokens import hash_access_token


def post(client, body, **headers):
    return client.post("/v1/orders", json=body, headers=headers)


@pytest.mark.parametrize("method", ["card", "paypal", "transfer"])
def test_a_valid_order_of_each_payment_method_is_placed(runtime, client, method):
    answer = client.post(
        "/v1/orders",
        json=order_body(payment_method=method),
        headers={"User-Agent": "pytest-agent/1.0"},
        environ_base={"REMOTE_ADDR": "203.0.113.7"},
    )
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    assert body["status"] == "placed" and body["payment_method"] == method
    assert body["number"].startswith(f"COC-{date.today().year}-") and len(body["number"]) >= 15
    assert body["total"] == {
        "amount_cents": 24900,
        "currency": "EUR",
    }  # Peugeot's price in the catalogue
    assert body["vat"] == {
        "rate": "20.0",
        "amount_cents": 4150,
        "regime": "standard",
        "vat_number_check": None,
    }
    assert body["documents_required"] == ["id_card", "registration_certificate"]
    assert body["links"]["documents"] == f"/v1/orders/{body['id']}/documents"
    assert body["id"] in body["links"]["payment"]
    assert len(body["access_token"]) >= 40
    assert answer.headers["X-Correlation-ID"]
    text = answer.get_data(as_text=True)
    assert "203.0.113.7" not in text and "pytest-agent" not in text

    with runtime.engine.connect() as conn:
        row = conn.execute(select(tables.orders).where(tables.orders.c.id == body["id"])).one()
    assert row.access_token_sha256 == hash_access_token(body["access_token"])
    assert body["access_token"] not in str(tuple(row))  # only the hash is stored
    assert (row.client_ip, row.user_agent) == ("203.0.113.7", "pytest-agent/1.0")
    assert row.customer["phone"] == "+33612345678"  # E.164

    [placed] = outbox_events(runtime, "order.placed", body["id"])
    data, personal = placed["data"], placed["personal"]
    assert data["order_id"] == body["id"] and data["order_number"] == body["number"]
    assert data["payment_method"] == method and data["total"] == {
        "amount_cents": 24900,
        "currency": "EUR",
    }
    assert (
        data["vat_rate"] == "20.0"
        and data["brand"] == "Peugeot"
        and data["vin"] == "VF3ABCDEF12345678"
    )
    assert data["first_registration_date"] == "2019-05-14" and data["marketing_consent"] is False
    assert data["account_id"] is None and data["access_token_sha256"] == hash_access_token(
        body["access_token"]
    )
    assert data["documents_required"] == ["id_card", "registration_certificate"]
    assert personal["email"] == "emilie@example.org" and personal["first_name"] == "Émilie"
    assert not {"email", "first_name", "last_name", "phone"} & set(data)
    lookup("order.placed", 1).data_schema().load(data)
    assert placed["correlation_id"] == body["id"] and placed["subject"] == body["id"]


def test_the_price_is_the_catalogue_s_never_the_client_s(client):
    answer = post(
        client,
        {
            **order_body(
                vehicle__vin="WBA3A5C51CF256985",
                vehicle__extra={"type_approval_number": "e1*2001/116*0313*07"},
            ),
            "total": {"amount_cents": 1, "currency": "EUR"},
            "price_cents": 1,
        },
    )
    assert answer.status_code == 201, answer.get_json()
    assert answer.get_json()["total"]["amount_cents"] == 31900
    assert answer.get_json()["vehicle"]["brand"] == "BMW"


def test_a_company_buyer_with_a_french_vat_number_matching_its_siren(runtime, client):
    answer = post(
        client,
        order_body(
            company={
                "name": "Garage Martin SARL",
                "siren": "303 265 045",
                "vat_number": "FR 40 303265045",
            },
            billing_address={
                "line1": "2 av. Foch",
                "postal_code": "69006",
                "city": "Lyon",
                "country": "FR",
            },
            marketing_consent=True,
        ),
    )
    assert answer.status_code == 201, answer.get_json()
    [placed] = outbox_events(runtime, "order.placed", answer.get_json()["id"])
    assert placed["personal"]["company"] == {
        "name": "Garage Martin SARL",
        "siren": "303265045",
        "vat_number": "FR40303265045",
    }
    assert placed["personal"]["billing_address"]["city"] == "Lyon"
    assert placed["data"]["marketing_consent"] is True


def test_names_in_any_script_with_accents_hyphens_and_apostrophes(client):
    for first, last in [
        ("Zoë", "O'Connor"),
        ("Jean-Édouard", "d’Alembert"),
        ("Łukasz", "Żółć"),
        ("Ἀλέξανδρος", "Παπαδόπουλος"),
    ]:
        answer = post(client, order_body(customer__first_name=first, customer__last_name=last))
        assert answer.status_code == 201, (first, last, answer.get_json())


def test_an_eu_vin_with_a_wrong_check_digit_is_accepted_a_north_american_one_is_not(client):
    assert post(client, order_body(vehicle__vin="WVWZZZ1JZXW000001")).status_code == 201
    answer = post(client, order_body(vehicle__vin="1FAHP3F20CL123456"))
    assert answer.status_code == 422
    assert "check digit" in answer.get_json()["error"]["fields"]["vehicle"]["vin"][0]


TOMORROW = (date.today() + timedelta(days=1)).isoformat()

BAD_FIELDS = [
    ("customer__first_name", "Jean3", ("customer", "first_name"), "Only letters"),
    ("customer__last_name", "", ("customer", "last_name"), "Missing data"),
    ("customer__email", "not-an-address", ("customer", "email"), "Not a valid e-mail address"),
    ("customer__phone", "12", ("customer", "phone"), "Not a valid phone number"),
    (
        "shipping_address__postal_code",
        "7500",
        ("shipping_address", "postal_code"),
        "Not a valid postal code for FR",
    ),
    ("shipping_address__country", "XX", ("shipping_address", "country"), "ISO 3166"),
    ("shipping_address__city", ..., ("shipping_address", "city"), "Missing data"),
    ("company", {"name": "X", "siren": "123456789"}, ("company", "siren"), "Not a valid SIREN"),
    (
        "company",
        {"name": "X", "siren": "303265045", "vat_number": "FR41303265045"},
        ("company", "vat_number"),
        "Not a valid VAT number",
    ),
    (
        "company",
        {"name": "X", "siren": "732829320", "vat_number": "FR40303265045"},
        ("company", "vat_number"),
        "does not belong to the SIREN",
    ),
    (
        "company",
        {"name": "X", "vat_number": "DE136695977"},
        ("company", "vat_number"),
        "Not a valid VAT number",
    ),
    (
        "company",
        {"name": "X", "vat_number": "US123456789"},
        ("company", "vat_number"),
        "Not an intra-EU",
    ),
    ("vehicle__vin", "VF3ABCDEF1234567", ("vehicle", "vin"), "17"),
    ("vehicle__vin", "VF3ABCDEF1234567O", ("vehicle", "vin"), "'I', 'O', and 'Q'"),
    ("vehicle__vin", "SALAB12345A123456", ("vehicle", "vin"), "do not sell"),
    ("vehicle__brand", "Renault", ("vehicle", "brand"), "belongs to a vehicle of Peugeot"),
    (
        "vehicle__first_registration_date",
        TOMORROW,
        ("vehicle", "first_registration_date"),
        "future",
    ),
    (
        "vehicle__first_registration_date",
        "2019-02-30",
        ("vehicle", "first_registration_date"),
        "Not a valid date",
    ),
    (
        "vehicle__extra",
        {"colour": "red"},
        ("vehicle", "extra", "colour"),
        "Unknown field for Peugeot",
    ),
    ("payment_method", "cash", ("payment_method",), "Must be one of"),
    ("payment_method", ..., ("payment_method",), "Missing data"),
    ("marketing_consent", "maybe", ("marketing_consent",), "Not a valid boolean"),
    ("vehicle", ..., ("vehicle",), "Missing data"),
]


@pytest.mark.parametrize(
    "path,value,where,message", BAD_FIELDS, ids=[f"{p}={v!r}"[:60] for p, v, *_ in BAD_FIELDS]
)
def test_each_bad_field_gets_422_with_its_message(runtime, client, path, value, where, message):
    before = len(outbox_events(runtime, "order.placed"))
    answer = post(client, order_body(**{path: value}))
    assert answer.status_code == 422, answer.get_json()
    error = answer.get_json()["error"]
    assert error["status"] == 422 and error["code"] == "unprocessable_entity"
    node = error["fields"]
    for part in where:
        node = node[part]
    assert any(message in m for m in node), node
    assert len(outbox_events(runtime, "order.placed")) == before


def test_a_brand_s_required_extra_field(client):
    answer = post(client, order_body(vehicle__vin="WBA3A5C51CF256985"))
    assert answer.status_code == 422
    assert answer.get_json()["error"]["fields"]["vehicle"]["extra"]["type_approval_number"] == [
        "Missing data for required field."
    ]


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", "null", '{"vehicle": 12}'])
def test_malformed_bodies_never_get_a_5xx(client, raw):
    answer = client.post("/v1/orders", data=raw, content_type="application/json")
    assert answer.status_code in (400, 422)
    assert "error" in answer.get_json()


def test_the_same_idempotency_key_returns_the_first_order_and_places_one_order(runtime, client):
    body = order_body()
    first = post(client, body, **{"Idempotency-Key": "key-123"})
    again = post(client, body, **{"Idempotency-Key": "key-123"})
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    # the same order, without the access token: only the first answer shows it
    assert again.get_json() == {k: v for k, v in first.get_json().items() if k != "access_token"}
    assert len(outbox_events(runtime, "order.placed", first.get_json()["id"])) == 1
    with runtime.engine.connect() as conn:
        assert (
            conn.execute(
                select(func.count())
                .select_from(tables.orders)
                .where(tables.orders.c.id == first.get_json()["id"])
            ).scalar_one()
            == 1
        )
    third = post(client, body, **{"Idempotency-Key": "key-456"})
    assert third.status_code == 201 and third.get_json()["id"] != first.get_json()["id"]


def test_a_second_guest_with_the_same_key_and_body_does_not_get_the_first_guest_s_token(client):
    """Before: a second guest sending the first one's Idempotency-Key and body was answered the
    first guest's access_token, which opens the order (documents, cancellation)."""
    body = order_body()
    key = {"Idempotency-Key": f"guest-key-{uuid.uuid4()}"}
    first = post(client, body, **key).get_json()
    second = client.post(
        "/v1/orders", json=body, headers=key, environ_base={"REMOTE_ADDR": "203.0.113.66"}
    )
    assert second.status_code == 201 and "access_token" not in second.get_json()
    assert first["access_token"] not in second.get_data(as_text=True)
    # a guest using the same key for another order is not refused, nor told the key was used
    other = post(client, order_body(payment_method="paypal"), **key)
    assert other.status_code == 201 and other.get_json()["id"] != first["id"]
    assert other.get_json()["access_token"] != first["access_token"]


def test_an_account_s_key_with_another_body_gets_409(client):
    from test_accounts import sign_up

    _, auth = sign_up(client)
    key = {"Idempotency-Key": f"account-key-{uuid.uuid4()}"}
    assert post(client, order_body(), **auth, **key).status_code == 201
    assert post(client, order_body(), **auth, **key).headers["Idempotent-Replayed"] == "true"
    assert post(client, order_body(payment_method="paypal"), **auth, **key).status_code == 409


def test_order_numbers_are_distinct_and_human_readable(client):
    numbers = {post(client, order_body()).get_json()["number"] for _ in range(3)}
    assert len(numbers) == 3


def test_placing_orders_is_rate_limited_per_ip(make_runtime):
    client = make_runtime(ORDERS_RATE_LIMIT_ORDERS="2/minute").create_app().test_client()
    codes = [
        post(client, order_body(), **{"X-Forwarded-For": "1.2.3.4"}).status_code for _ in range(3)
    ]
    assert codes == [201, 201, 429]
    other_ip = client.post(
        "/v1/orders", json=order_body(), environ_base={"REMOTE_ADDR": "10.0.0.9"}
    )
    assert other_ip.status_code == 201
    limited = post(client, order_body())
    assert limited.get_json()["error"]["status"] == 429 and int(limited.headers["Retry-After"]) >= 1


def test_the_order_links_its_invoices_on_payments_at_the_configured_address(make_runtime):
    """links.invoices: payments' customer endpoint listing the order's invoices and credit notes
    (ORDERS_INVOICES_URL), in the answer to the placing and to every GET of the order."""
    configured = "https://api.example.com/payments/v1/orders/{order_id}/invoices"
    client = make_runtime(ORDERS_INVOICES_URL=configured).create_app().test_client()
    placed = post(client, order_body()).get_json()
    expected = f"https://api.example.com/payments/v1/orders/{placed['id']}/invoices"
    assert placed["links"]["invoices"] == expected
    shown = client.get(
        f"/v1/orders/{placed['id']}", headers={"X-Order-Token": placed["access_token"]}
    ).get_json()
    assert shown["links"]["invoices"] == expected
    # the default: the payments service of `make run`
    default = make_runtime().create_app().test_client()
    other = post(default, order_body()).get_json()
    assert other["links"]["invoices"] == (f"http://127.0.0.1:8002/v1/orders/{other['id']}/invoices")


def test_an_invoices_address_that_is_not_a_url_stops_the_start():
    from coc_orders.config import OrdersConfig
    from coc_shared.config import ConfigError

    with pytest.raises(ConfigError, match="ORDERS_INVOICES_URL"):
        OrdersConfig.from_env({"ORDERS_INVOICES_URL": "payments/{order_id}/invoices"})
