"""The OpenAPI document of the payments API: served at /openapi.json, equal to the file kept in
the repository; regenerate it with

    python -m coc_payments.entrypoints.openapi > services/payments/openapi.json
"""

from __future__ import annotations

from pathlib import Path

from coc_shared.openapi import render

KEPT = Path(__file__).resolve().parent.parent / "openapi.json"


def test_the_served_document_is_the_one_kept_in_the_repository(client):
    served = client.get("/openapi.json")
    assert served.status_code == 200 and served.headers["X-Correlation-ID"]
    assert render(served.get_json()) == KEPT.read_text(encoding="utf-8"), (
        "regenerate it: python -m coc_payments.entrypoints.openapi > services/payments/openapi.json"
    )
    doc = served.get_json()
    assert doc["openapi"].startswith("3.")
    assert {
        "/v1/payments/{order_id}/checkout",
        "/v1/callbacks/systempay",
        "/v1/callbacks/paypal",
        "/v1/callbacks/bank-transfer",
        "/v1/payments/review",
        "/v1/payments/statements",
        "/v1/staff/payments-due/{order_id}",
        "/v1/staff/parked",
    } <= set(doc["paths"])
    for path in ("/v1/callbacks/paypal", "/v1/callbacks/bank-transfer", "/v1/callbacks/systempay"):
        assert "413" in doc["paths"][path]["post"]["responses"]
