"""The OpenAPI document of the payments API: served at /openapi.json, equal to the file kept in
the repository (regenerate it with ``python -m coc_payments.entrypoints.openapi >
services/payments/openapi.json``); the providers' callbacks document their body limit (413)."""

from __future__ import annotations

from pathlib import Path

from coc_shared.testing import assert_openapi_document_kept

CALLBACKS = ("/v1/callbacks/paypal", "/v1/callbacks/bank-transfer", "/v1/callbacks/systempay")


def test_the_served_document_is_the_one_kept_in_the_repository(client):
    doc = assert_openapi_document_kept(
        client,
        Path(__file__).resolve().parent.parent / "openapi.json",
        "coc_payments",
        {
            "/v1/payments/{order_id}/checkout",
            *CALLBACKS,
            "/v1/payments/review",
            "/v1/payments/statements",
            "/v1/staff/payments-due/{order_id}",
            "/v1/staff/parked",
        },
    )
    for path in CALLBACKS:
        assert "413" in doc["paths"][path]["post"]["responses"]
