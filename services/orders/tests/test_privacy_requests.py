"""The customer's data-protection requests carried out by the gdpr service: a copy of their
personal data (``account.data_export_requested``) for an account with its orders (bearer token) or
for a guest's order (its access token in X-Order-Token); nobody else's."""

from __future__ import annotations

from orders_helpers import order_body, outbox_events
from test_accounts import sign_up


def test_an_account_asks_for_its_export_with_its_orders(runtime, client):
    account, auth = sign_up(client)
    body = order_body()
    placed = client.post("/v1/orders", json=body, headers=auth)
    assert placed.status_code == 201, placed.get_json()
    assert client.post("/v1/accounts/me/export").status_code == 401
    answer = client.post("/v1/accounts/me/export", headers=auth)
    assert answer.status_code == 202, answer.get_json()
    assert answer.get_json()["account_id"] == account["id"]
    [event] = outbox_events(runtime, "account.data_export_requested", account["id"])
    assert event["data"]["order_ids"] == [placed.get_json()["id"]]
    assert event["personal"]["email"] == account["email"]
    # the owner asking from the order asks for the account's export
    again = client.post(f"/v1/orders/{placed.get_json()['id']}/export", headers=auth)
    assert again.status_code == 202 and again.get_json()["account_id"] == account["id"]


def test_a_guest_asks_for_the_export_of_its_order_with_the_order_token(runtime, client):
    body = order_body()
    placed = client.post("/v1/orders", json=body).get_json()
    path = f"/v1/orders/{placed['id']}/export"
    assert client.post(path).status_code == 401
    assert client.post(path, headers={"X-Order-Token": "not-the-token"}).status_code == 404
    answer = client.post(path, headers={"X-Order-Token": placed["access_token"]})
    assert answer.status_code == 202, answer.get_json()
    assert (answer.get_json()["order_id"], answer.get_json()["account_id"]) == (placed["id"], None)
    [event] = outbox_events(runtime, "account.data_export_requested", placed["id"])
    assert (event["data"]["account_id"], event["data"]["order_ids"]) == (None, [placed["id"]])
    assert event["personal"]["email"] == body["customer"]["email"]


def test_the_marketing_choice_of_an_account_goes_to_the_consent_ledger(runtime, client):
    account, auth = sign_up(client)  # its profile consents to marketing mails
    [given] = outbox_events(runtime, "account.marketing_choice_made", account["id"])
    assert (given["data"]["given"], given["data"]["channel"]) == (True, "account_sign_up")
    assert given["personal"]["email"] == account["email"]
    changed = client.patch("/v1/accounts/me", json={"marketing_consent": False}, headers=auth)
    assert changed.status_code == 200, changed.get_json()
    unchanged = client.patch("/v1/accounts/me", json={"marketing_consent": False}, headers=auth)
    assert unchanged.status_code == 200
    choices = outbox_events(runtime, "account.marketing_choice_made", account["id"])
    assert [(c["data"]["given"], c["data"]["channel"]) for c in choices] == [
        (True, "account_sign_up"),
        (False, "account_settings"),
    ]
