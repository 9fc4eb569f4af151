"""Stuck orders and disagreements in the support console, on states crafted in the three
services' own tables (this run's PostgreSQL): every kind of disagreement is found, none on
consistent orders; the pages "Stuck orders" and "Disagreements" show them to signed-in staff,
the order's story its stuck flags, and ``coc-console reconcile`` prints them."""

from __future__ import annotations

import json
import re
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, insert

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_console_kit import make_console_stack, signed_in_client

from coc_console.adapters.services_client import StaffApiClient
from coc_console.domain.model import Staff
from coc_console.domain.reconciliation import KINDS
from coc_console.entrypoints.order_checks_commands import reconcile
from coc_console.service_layer.reconciliation import reconcile as reconcile_orders
from coc_orders.adapters import tables as orders_tables
from coc_payments.adapters import tables as payments_tables
from coc_shared.testing import STAFF_KEYS
from coc_supplier_gateway.adapters import tables as gateway_tables

NOW = datetime.now(UTC)
PLACED = NOW - timedelta(days=30)
CHANGED = NOW - timedelta(hours=1)

# name -> (orders' status, payments' status or None, invoice?, gateway's status or None,
#          the disagreements expected)
CASES = {
    "consistent_delivered": ("delivered", "paid", True, "delivered", set()),
    "consistent_placed": ("placed", "due", False, None, set()),
    "consistent_cancelled": ("cancelled", "cancelled", False, "cancelled", set()),
    "paid_not_in_payments": ("paid", "due", True, None, {"paid_not_in_payments"}),
    "paid_in_payments": ("placed", "paid", True, None, {"paid_in_payments_not_in_orders"}),
    "invoice_missing": ("paid", "paid", False, None, {"invoice_missing"}),
    "cancelled_but_paid": ("cancelled", "paid", True, None, {"cancelled_but_paid"}),
    "no_request": ("sent_to_supplier", "paid", True, None, {"at_supplier_without_request"}),
    "certificate": ("sent_to_supplier", "paid", True, "issued", {"certificate_not_in_orders"}),
    "no_shipment": ("shipped", "paid", True, "issued", {"shipped_without_shipment"}),
    "shipment": ("certificate_received", "paid", True, "shipped", {"shipment_not_in_orders"}),
}
GATEWAY_MOMENTS = {
    "issued": ("sent_at", "issued_at"),
    "shipped": ("sent_at", "issued_at", "shipped_at"),
    "delivered": ("sent_at", "issued_at", "shipped_at", "delivered_at"),
}


def craft(stack, name: str, case) -> dict:
    status, payment, invoice, request, _expected = case
    seq = 900_000_000 + uuid.uuid4().int % 90_000_000
    order = {"order_id": str(uuid.uuid4()), "number": f"COC-{PLACED.year}-{seq:06d}", "seq": seq}
    with stack.runtimes["orders"].engine.begin() as conn:
        conn.execute(
            insert(orders_tables.orders).values(
                seq=seq,
                id=order["order_id"],
                status=status,
                placed_at=PLACED,
                updated_at=CHANGED,
                payment_method="card",
                brand="Peugeot",
                vin="VF3ABCDEF12345678",
                first_registration_date=PLACED.date(),
                vehicle_extra={},
                total_cents=24900,
                currency="EUR",
                vat_rate="20",
                vat_cents=4150,
                documents_required=[],
                marketing_consent=False,
                customer={},
                shipping_address={},
            )
        )
    with stack.runtimes["payments"].engine.begin() as conn:
        if payment is not None:
            conn.execute(
                insert(payments_tables.payments_due).values(
                    order_id=order["order_id"],
                    order_number=order["number"],
                    method="card",
                    amount_cents=24900,
                    currency="EUR",
                    status=payment,
                    event_id=str(uuid.uuid4()),
                    created_at=PLACED,
                    paid_at=PLACED if payment == "paid" else None,
                )
            )
        if invoice:
            conn.execute(
                insert(payments_tables.invoices_to_issue).values(
                    seq=seq,
                    number=f"TEST-{seq}",
                    order_id=order["order_id"],
                    issued_at=PLACED,
                    provider="systempay",
                    data={},
                    correlation_id=order["order_id"],
                )
            )
    if request is not None:
        with stack.runtimes["supplier-gateway"].engine.begin() as conn:
            conn.execute(
                insert(gateway_tables.supplier_requests).values(
                    order_id=order["order_id"],
                    order_placed=True,
                    paid=True,
                    documents_completed=True,
                    document_ids=[],
                    status=request,
                    supplier="psa-coc",
                    created_at=PLACED,
                    updated_at=CHANGED,
                    **{m: PLACED for m in GATEWAY_MOMENTS.get(request, ())},
                )
            )
    return order


@pytest.fixture(scope="module")
def crafted(settings_factory, tmp_path_factory):
    cs = make_console_stack(settings_factory, tmp_path_factory.mktemp("console-stuck"))
    orders = {name: craft(cs.stack, name, case) for name, case in CASES.items()}
    yield cs, orders
    ids = [o["order_id"] for o in orders.values()]
    for service, table in (
        ("orders", orders_tables.orders),
        ("payments", payments_tables.payments_due),
        ("payments", payments_tables.invoices_to_issue),
        ("supplier-gateway", gateway_tables.supplier_requests),
    ):
        column = table.c.id if table is orders_tables.orders else table.c.order_id
        with cs.stack.runtimes[service].engine.begin() as conn:
            conn.execute(delete(table).where(column.in_(ids)))
    cs.dispose()


def rows_of(html: str, number: str) -> list[str]:
    return [row for row in html.split("<tr") if f">{number}</a>" in row]


def every_page(client, path: str, **query) -> str:
    """The pages of ``path``, following their "Next orders" links; their HTML together."""
    html, after = "", None
    for _ in range(200):
        answer = client.get(path, query_string={**query, **({"after": after} if after else {})})
        assert answer.status_code == 200, answer.get_data(as_text=True)
        html += answer.get_data(as_text=True)
        found = re.search(r'id="next" href="[^"]*after=(\d+)', answer.get_data(as_text=True))
        if found is None:
            return html
        after = found.group(1)
    raise AssertionError(f"{path}: more than 200 pages")


def test_every_disagreement_found_and_none_on_consistent_orders(crafted):
    cs, orders = crafted
    client, _name, _csrf = signed_in_client(cs, "support")
    html = every_page(client, "/disagreements")
    found_kinds = set()
    for name, case in CASES.items():
        rows = rows_of(html, orders[name]["number"])
        kinds = {kind for kind in KINDS for row in rows if f"kind-{kind}" in row}
        assert kinds == case[-1], name
        found_kinds |= kinds
    assert found_kinds == set(KINDS)  # every kind of disagreement is covered
    # orders changed within the settling time are left out
    settling = client.get("/disagreements", query_string={"settle_minutes": "120"})
    assert rows_of(settling.get_data(as_text=True), orders["invoice_missing"]["number"]) == []
    refused = client.get("/disagreements", query_string={"settle_minutes": "x"})
    assert refused.status_code == 422


def test_stuck_orders_page_and_the_storys_flags(crafted):
    cs, orders = crafted
    client, _name, _csrf = signed_in_client(cs, "support")
    html = client.get("/failures").get_data(as_text=True)
    assert 'href="/stuck"' in html and 'href="/disagreements"' in html  # in the nav
    seen = every_page(client, "/stuck")
    for name, state in (("no_shipment", "not delivered"), ("consistent_placed", "unpaid")):
        (row,) = rows_of(seen, orders[name]["number"])
        assert state in row and "not yet" in row
    for name in ("consistent_delivered", "consistent_cancelled"):
        assert rows_of(seen, orders[name]["number"]) == []
    story = client.get("/orders", query_string={"q": orders["no_shipment"]["number"]})
    body = story.get_data(as_text=True)
    assert story.status_code == 200 and 'id="stuck-flags"' in body and "not delivered" in body
    calm = client.get("/orders", query_string={"q": orders["consistent_delivered"]["number"]})
    assert 'id="stuck-flags"' not in calm.get_data(as_text=True)
    # not signed in: to the log-in page
    assert cs.app.test_client().get("/stuck").status_code == 302
    assert cs.app.test_client().get("/disagreements").status_code == 302


def test_a_view_compares_a_bounded_slice_and_the_slices_cover_every_order(crafted):
    cs, orders = crafted
    client = StaffApiClient(cs.urls, STAFF_KEYS[0])
    staff = Staff(0, "slices", "support")
    ids = {o["order_id"] for o in orders.values()}
    start = min(o["seq"] for o in orders.values()) - 1
    whole = reconcile_orders(client, staff, after=start)
    assert whole.next_after is None and whole.orders_checked >= len(CASES)
    sliced, after, views = [], start, 0
    while after is not None:
        part = reconcile_orders(client, staff, page=2, after=after, max_orders=4)
        assert part.orders_checked <= 4
        sliced += part.disagreements
        after, views = part.next_after, views + 1
    assert views >= len(CASES) // 4
    assert {(d.order_id, d.kind) for d in sliced if d.order_id in ids} == {
        (d.order_id, d.kind) for d in whole.disagreements if d.order_id in ids
    }


def test_the_reconcile_command_prints_each_disagreement(crafted, capsys):
    cs, orders = crafted
    assert reconcile(cs.console, ["--page", "50"]) == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    summary = lines[-1]
    assert summary["disagreements"] == len(lines) - 1 and summary["orders_checked"] >= len(CASES)
    by_order = {}
    for line in lines[:-1]:
        by_order.setdefault(line["order_id"], set()).add(line["kind"])
    for name, case in CASES.items():
        assert by_order.get(orders[name]["order_id"], set()) == case[-1], name
