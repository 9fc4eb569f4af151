"""Customer support records (staff attach the record of a contact to an order or an account),
erased with the account and in the customer's export; and the admins' search of orders by the
customer's e-mail address."""

from __future__ import annotations

import uuid
from datetime import timedelta

from orders_helpers import order_body
from sqlalchemy import func, select
from test_accounts import sign_up

from coc_orders.adapters import tables
from coc_shared.envelope import Event, utcnow
from coc_shared.testing import fresh_example, handle, opened, staff_headers

SUPPORT = staff_headers("sam", "support")
ADMIN = staff_headers("ada", "admin")


def _record(client, **body):
    return client.post(
        "/v1/staff/support-records",
        json={"channel": "phone", "summary": "asked when the certificate ships", **body},
        headers=SUPPORT,
    )


def _placed(client, auth=None, **customer):
    body = order_body()
    body["customer"] = {**body["customer"], **customer}
    placed = client.post("/v1/orders", json=body, headers=auth or {})
    assert placed.status_code == 201, placed.get_json()
    return placed.get_json()


def _records_left(runtime, **where) -> int:
    t = tables.support_records
    clauses = [t.c[k] == v for k, v in where.items()]
    with runtime.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(t).where(*clauses)).scalar_one()


def test_a_record_on_an_order_is_also_its_accounts_and_shows_with_it(client):
    account, auth = sign_up(client)
    order = _placed(client, auth)
    added = _record(client, order_id=order["id"], channel="email", summary="wants an invoice copy")
    assert added.status_code == 201, added.get_json()
    record = added.get_json()
    assert (record["account_id"], record["staff"], record["channel"]) == (
        account["id"],
        "sam",
        "email",
    )
    on_account = _record(client, account_id=account["id"], channel="chat", summary="new address")
    assert on_account.status_code == 201, on_account.get_json()
    found = client.get(f"/v1/staff/support-records?order_id={order['id']}", headers=SUPPORT)
    assert found.status_code == 200
    assert [r["summary"] for r in found.get_json()["items"]] == [
        "new address",
        "wants an invoice copy",
    ]
    assert client.get(f"/v1/staff/support-records?order_id={order['id']}").status_code == 401


def test_bad_records_are_refused_field_by_field(client):
    order = _placed(client)
    later = (utcnow() + timedelta(hours=2)).isoformat()
    refused = _record(client, order_id=order["id"], channel="fax", summary=" ", contacted_at=later)
    assert refused.status_code == 422
    assert set(refused.get_json()["error"]["fields"]) == {"channel", "summary", "contacted_at"}
    assert _record(client).status_code == 422  # neither order nor account
    assert _record(client, order_id=str(uuid.uuid4())).status_code == 404
    assert _record(client, account_id=str(uuid.uuid4())).status_code == 404


def test_the_erasure_of_the_account_deletes_its_support_records(runtime, client):
    account, auth = sign_up(client)
    order = _placed(client, auth)
    other = _placed(client)  # someone else's: stays
    for body in (
        {"order_id": order["id"]},
        {"account_id": account["id"]},
        {"order_id": other["id"]},
    ):
        assert _record(client, **body).status_code == 201
    assert _records_left(runtime, account_id=account["id"]) == 2
    erasure = fresh_example("account.erasure_requested")
    erasure.data = {**erasure.data, "account_id": account["id"], "order_ids": []}
    handle(runtime, erasure)
    assert _records_left(runtime, account_id=account["id"]) == 0
    assert _records_left(runtime, order_id=order["id"]) == 0
    assert _records_left(runtime, order_id=other["id"]) == 1


def _exported_support_records(runtime, account_id, order_ids) -> list[dict]:
    request = Event(
        type="account.export_requested",
        producer="gdpr",
        correlation_id=account_id or order_ids[0],
        data={"request_id": str(uuid.uuid4()), "account_id": account_id, "order_ids": order_ids},
    )
    handle(runtime, request)
    o = runtime.outbox
    with runtime.engine.connect() as conn:
        [body] = conn.execute(
            select(o.c.body).where(
                o.c.event_type == "account.export_contributed.orders",
                o.c.correlation_id == request.correlation_id,
            )
        ).scalars()
    contribution = opened(runtime, body)
    records = contribution["personal"]["data"]["support_records"]
    assert ("support_records" in contribution["data"]["categories"]) == bool(records)
    return records


def test_the_export_holds_the_support_records_of_the_account_and_its_orders(runtime, client):
    account, auth = sign_up(client)
    order = _placed(client, auth)
    guest, other = _placed(client), _placed(client)
    for body in (
        {"order_id": order["id"], "summary": "wants an invoice copy"},
        {"account_id": account["id"], "summary": "changed the delivery address"},
        {"order_id": guest["id"], "summary": "asked about the delivery date"},
        {"order_id": other["id"], "summary": "someone else's question"},
    ):
        assert _record(client, **body).status_code == 201
    of_account = _exported_support_records(runtime, account["id"], [])
    assert sorted(r["summary"] for r in of_account) == [
        "changed the delivery address",
        "wants an invoice copy",
    ]
    assert {r["staff"] for r in of_account} == {"sam"} and all(
        r["contacted_at"] for r in of_account
    )
    [of_guest] = _exported_support_records(runtime, None, [guest["id"]])
    assert (of_guest["order_id"], of_guest["summary"]) == (
        guest["id"],
        "asked about the delivery date",
    )
    fresh = _placed(client)  # none: the category is not held
    assert _exported_support_records(runtime, None, [fresh["id"]]) == []


def test_admins_find_orders_by_the_customers_email_support_may_not(client):
    email = f"Nadia.{uuid.uuid4().hex[:8]}@Example.org"
    guest = _placed(client, email=email)
    account, auth = sign_up(client, email=f"acc.{uuid.uuid4().hex[:8]}@example.org")
    of_account = _placed(client, auth, email=email.lower())
    by_account = _placed(client, auth)  # the account's address, not the one typed above
    path = "/v1/staff/orders/search"  # the address in the body, in no URL
    found = client.post(path, json={"email": email.upper()}, headers=ADMIN)
    assert found.status_code == 200, found.get_json()
    assert [o["id"] for o in found.get_json()["items"]] == [of_account["id"], guest["id"]]
    mine = client.post(path, json={"email": account["email"]}, headers=ADMIN).get_json()
    assert {o["id"] for o in mine["items"]} == {of_account["id"], by_account["id"]}
    assert client.post(path, json={"email": email}, headers=SUPPORT).status_code == 403
    assert client.post(path, json={"email": "nope"}, headers=ADMIN).status_code == 422
    missing = client.post(path, json={}, headers=ADMIN)
    assert missing.status_code == 422 and "email" in missing.get_json()["error"]["fields"]
    # the query string is no longer read
    assert client.get(f"/v1/staff/orders?email={email}", headers=ADMIN).status_code in (404, 405)
