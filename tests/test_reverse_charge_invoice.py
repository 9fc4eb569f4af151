"""An order placed by a business of another EU member state, on the real RabbitMQ and PostgreSQL:
orders asks VIES (its sandbox, coc_shared.vies.SandboxVies, on a local port) and prices it under
the reverse charge; payments (its consumer and relay) records the sale from ``order.placed``,
invoices the confirmed payment without VAT (« Autoliquidation », category AE in the Factur-X XML);
orders records ``invoice.issued`` in the order's timeline; and the order's ``links.invoices`` is
payments' customer route, which lists the invoice and serves its PDF with the order's token."""

from __future__ import annotations

import base64
import io
import threading
import uuid
from urllib.parse import urlparse

import pytest
from facturx import get_xml_from_pdf
from pypdf import PdfReader
from sqlalchemy import select

from coc_orders.adapters import tables as orders_tables
from coc_orders.service import definition as orders_definition
from coc_payments.adapters.cii import summary
from coc_payments.service import definition as payments_definition
from coc_shared.testing import forget_unsent, purge_queue, wait_until
from coc_shared.vies import SandboxVies

PAYMENTS_URL = "https://payments.test"
BILLING = {
    "SELLER_NAME": "COC Services SAS",
    "SELLER_STREET": "10 rue de la Paix",
    "SELLER_POSTAL_CODE": "75002",
    "SELLER_CITY": "Paris",
    "SELLER_SIREN": "732829320",
    "SELLER_VAT_NUMBER": "FR44732829320",
    "SELLER_LEGAL_MENTIONS": "SAS au capital de 10 000 € - RCS Paris 732 829 320",
    "INVOICE_KEY": base64.b64encode(b"i" * 32).decode(),
}


@pytest.fixture
def vies():
    sandbox = SandboxVies()
    url = sandbox.start()
    yield sandbox, url
    sandbox.stop()


@pytest.fixture
def services(runtime_factory, vies):
    """orders and payments, each with its consumer and relay as threads, both asking the VIES
    sandbox."""
    _, vies_url = vies
    orders = runtime_factory(
        orders_definition,
        extra={
            "ORDERS_VIES_URL": vies_url,
            "ORDERS_INVOICES_URL": PAYMENTS_URL + "/v1/orders/{order_id}/invoices",
        },
    )
    payments = runtime_factory(
        payments_definition,
        extra={
            **BILLING,
            "PAYMENTS_PUBLIC_URL": PAYMENTS_URL,
            "VIES_API_URL": vies_url,
            "COC_ENVIRONMENT": "development",  # the VIES sandbox on this machine
        },
    )
    stop = threading.Event()
    threads = []
    for rt in (orders, payments):
        rt.declare_topology()
        purge_queue(rt)
        forget_unsent(rt)
    for rt in (orders, payments):
        threads += rt.start_worker_threads(stop)
    yield orders, payments
    stop.set()
    for thread in threads:
        thread.join(timeout=10)


def timeline(orders, order_id: str) -> list[tuple]:
    t = orders_tables.order_events
    with orders.engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(t.c.event_type, t.c.outcome, t.c.status_after)
                .where(t.c.order_id == order_id)
                .order_by(t.c.occurred_at, t.c.id)
            )
        ]


def test_an_order_paid_by_a_business_of_another_member_state_gets_a_reverse_charge_invoice(
    services, storefront_order
):
    orders, payments = services
    body = {
        **storefront_order,
        "customer": {**storefront_order["customer"], "phone": "+33612345678"},
        "shipping_address": {
            "line1": "Friedrichstraße 1",
            "postal_code": "10117",
            "city": "Berlin",
            "country": "DE",
        },
        "company": {"name": "Autohaus Weiß GmbH", "vat_number": "DE136695976"},
    }
    placed = orders.create_app().test_client().post("/v1/orders", json=body)
    assert placed.status_code == 201, placed.get_json()
    order = placed.get_json()
    assert order["total"] == {"amount_cents": 20750, "currency": "EUR"}  # 249 € less its VAT
    assert (order["vat"]["regime"], order["vat"]["amount_cents"]) == ("reverse_charge", 0)

    # the transfer arrives once payments knows the order (its bank webhook would find it due):
    # payments confirms it, of the order's total
    from coc_payments.adapters.tables import sales

    wait_until(
        lambda: _count(payments, sales, sales.c.order_id == order["id"]) == 1,
        timeout=30,
        message="payments recorded the order's sale",
    )
    with payments.unit_of_work(correlation_id=order["id"]) as uow:
        uow.emit(
            "payment.confirmed",
            {
                "order_id": order["id"],
                "order_number": order["number"],
                "method": "transfer",
                "provider": "bank-transfer",
                "provider_transaction_id": uuid.uuid4().hex,
                "amount": order["total"],
            },
            subject=order["id"],
        )
        uow.commit()
    wait_until(
        lambda: ("invoice.issued", "recorded", None) in timeline(orders, order["id"]),
        timeout=60,
        message="the invoice in the order's timeline",
    )
    assert timeline(orders, order["id"]) == [
        ("order.placed", "applied", "placed"),
        ("payment.confirmed", "applied", "paid"),
        ("invoice.issued", "recorded", None),
    ]

    # the order's link to its invoices is payments' customer route, opened with the order's token
    link = urlparse(order["links"]["invoices"])
    assert f"{link.scheme}://{link.netloc}" == PAYMENTS_URL
    client = payments.create_app().test_client()
    token = {"X-Order-Token": order["access_token"]}
    listed = client.get(link.path, headers=token)
    assert listed.status_code == 200, listed.get_json()
    (invoice,) = listed.get_json()["items"]
    assert invoice["vat_regime"] == "reverse_charge"
    assert (invoice["net"], invoice["vat"], invoice["total"]) == (
        {"amount_cents": 20750, "currency": "EUR"},
        {"amount_cents": 0, "currency": "EUR"},
        {"amount_cents": 20750, "currency": "EUR"},
    )
    pdf = client.get(urlparse(invoice["pdf_url"]).path, headers=token)
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    text = " ".join(
        " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.data)).pages).split()
    )
    for expected in ("Autoliquidation", "DE136695976", "Autohaus Weiß GmbH", "207,50"):
        assert expected in text, f"{expected!r} is not on the invoice"
    assert "TVA 20 %" not in text
    _, xml = get_xml_from_pdf(pdf.data, check_xsd=True)
    fx = summary(xml)
    assert (fx["vat_category"], fx["vat"], fx["total"], fx["buyer_vat"]) == (
        "AE",
        "0.00",
        "207.50",
        "DE136695976",
    )


def _count(runtime, table, where) -> int:
    from sqlalchemy import func, select

    with runtime.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(where)).scalar_one()
