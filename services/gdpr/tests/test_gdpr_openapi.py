"""The OpenAPI document of the gdpr API: served at /openapi.json, equal to the file kept
in the repository (regenerate it with ``python -m coc_gdpr.entrypoints.openapi >
services/gdpr/openapi.json``), its staff routes behind a staff token."""

from __future__ import annotations

from pathlib import Path

from coc_gdpr.service import definition
from coc_shared.testing import assert_openapi_document_kept


def test_the_served_document_is_the_one_kept_in_the_repository(runtime_factory):
    assert_openapi_document_kept(
        runtime_factory(definition).create_app().test_client(),
        Path(__file__).resolve().parent.parent / "openapi.json",
        "coc_gdpr",
        {
            "/v1/staff/deactivation-requests/{account_id}",
            "/v1/staff/disclosures",
            "/v1/staff/parked",
            "/healthz",
            "/readyz",
        },
        staff_get=("/v1/staff/deactivation-requests/{account_id}", "/v1/staff/disclosures"),
    )
