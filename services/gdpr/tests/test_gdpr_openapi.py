"""The OpenAPI document of the gdpr API: served at /openapi.json, equal to the file kept
in the repository; regenerate it with

    python -m coc_gdpr.entrypoints.openapi > services/gdpr/openapi.json
"""

from __future__ import annotations

from pathlib import Path

import pytest

from coc_gdpr.service import definition
from coc_shared.openapi import render

KEPT = Path(__file__).resolve().parent.parent / "openapi.json"


@pytest.fixture
def client(runtime_factory):
    return runtime_factory(definition).create_app().test_client()


def test_the_served_document_is_the_one_kept_in_the_repository(client):
    served = client.get("/openapi.json")
    assert served.status_code == 200 and served.headers["X-Correlation-ID"]
    assert render(served.get_json()) == KEPT.read_text(encoding="utf-8"), (
        "regenerate it: python -m coc_gdpr.entrypoints.openapi > services/gdpr/openapi.json"
    )
    doc = served.get_json()
    assert doc["openapi"].startswith("3.")
    assert {
        "/v1/staff/deactivation-requests/{account_id}",
        "/v1/staff/parked",
        "/healthz",
        "/readyz",
    } <= set(doc["paths"])
    assert doc["paths"]["/v1/staff/deactivation-requests/{account_id}"]["get"]["security"] == [
        {"staffAuth": []}
    ]
