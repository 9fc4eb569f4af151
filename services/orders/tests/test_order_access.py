"""GET /v1/orders/{id}: the guest's access token (header X-Order-Token, never ``?token=``) or the
owner's bearer token open it; anything else answers 404 (no hint whether it exists); every answer
carries X-Correlation-ID, errors one shape."""

from __future__ import annotations

import uuid

from orders_helpers import order_body


def test_the_access_token_opens_the_order_in_its_header_never_in_the_url(client):
    placed = client.post("/v1/orders", json=order_body()).get_json()
    by_header = client.get(
        f"/v1/orders/{placed['id']}", headers={"X-Order-Token": placed["access_token"]}
    )
    assert by_header.status_code == 200
    body = by_header.get_json()
    assert (
        body["status"] == "placed"
        and body["number"] == placed["number"]
        and "access_token" not in body
    )
    assert body["documents"] == [] and body["documents_required"] == [
        "id_card",
        "registration_certificate",
    ]
    assert [e["event"] for e in body["timeline"]] == ["order.placed"]
    # a token in the URL ends up in access logs and histories: refused, even a valid one
    by_query = client.get(f"/v1/orders/{placed['id']}?token={placed['access_token']}")
    assert by_query.status_code == 401
    assert "X-Order-Token header only" in by_query.get_json()["error"]["message"]
    both = client.get(
        f"/v1/orders/{placed['id']}?token={placed['access_token']}",
        headers={"X-Order-Token": placed["access_token"]},
    )
    assert both.status_code == 401


def test_another_token_or_an_unknown_id_gets_the_same_404(client):
    mine = client.post("/v1/orders", json=order_body()).get_json()
    other = client.post("/v1/orders", json=order_body()).get_json()
    wrong = client.get(f"/v1/orders/{other['id']}", headers={"X-Order-Token": mine["access_token"]})
    unknown = client.get(
        f"/v1/orders/{uuid.uuid4()}", headers={"X-Order-Token": mine["access_token"]}
    )
    assert wrong.status_code == unknown.status_code == 404
    assert wrong.get_json()["error"]["message"] == unknown.get_json()["error"]["message"]
    assert client.get(f"/v1/orders/{other['id']}").status_code == 401


def test_correlation_id_is_echoed_or_made_and_errors_have_one_shape(client):
    answer = client.get(
        f"/v1/orders/{uuid.uuid4()}", headers={"X-Order-Token": "x", "X-Correlation-ID": "abc-123"}
    )
    assert answer.headers["X-Correlation-ID"] == "abc-123"
    assert answer.get_json() == {
        "error": {
            "status": 404,
            "code": "not_found",
            "message": "no such order",
            "correlation_id": "abc-123",
        }
    }
    made = client.post("/v1/orders", json={})
    assert made.status_code == 422 and made.headers["X-Correlation-ID"]
    assert made.get_json()["error"]["correlation_id"] == made.headers["X-Correlation-ID"]
    assert set(made.get_json()["error"]) == {
        "status",
        "code",
        "message",
        "correlation_id",
        "fields",
    }
