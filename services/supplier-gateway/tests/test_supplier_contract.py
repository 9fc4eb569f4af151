"""The contract for integrators: docs/supplier-asyncapi.json is generated from the marshmallow
schemas the gateway builds and checks messages with (regenerate it with
``python -m coc_supplier_gateway.contract > docs/supplier-asyncapi.json``), the HTTP callback is in
the kept OpenAPI document, and the guide is linked from the README."""

from __future__ import annotations

import json
from pathlib import Path

from coc_supplier_gateway.contract import REPLY_SCHEMA, asyncapi, render

ROOT = Path(__file__).resolve().parents[3]


def test_the_asyncapi_document_is_generated_from_the_message_schemas():
    kept = (ROOT / "docs" / "supplier-asyncapi.json").read_text(encoding="utf-8")
    assert kept == render(), (
        "regenerate it: python -m coc_supplier_gateway.contract > docs/supplier-asyncapi.json"
    )
    doc = asyncapi()
    assert set(doc["channels"]) == {"coc.supplier.{code}", "coc.supplier-replies"}
    reply = doc["components"]["schemas"]["Reply"]
    assert set(reply["required"]) == {"reply_id", "request_id", "supplier", "kind", "occurred_at"}
    assert reply["properties"]["kind"]["enum"] == ["accepted", "rejected", "issued", "shipped"]
    assert "documents" in doc["components"]["schemas"]["SupplierRequest"]["required"]


def test_the_callback_is_documented_with_the_same_reply_schema():
    openapi = json.loads((ROOT / "services/supplier-gateway/openapi.json").read_text())
    operation = openapi["paths"]["/v1/suppliers/{code}/replies"]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    documented = openapi["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert set(documented["properties"]) == set(REPLY_SCHEMA.fields)
    assert {"401", "422"} <= set(operation["responses"])


def test_the_guide_is_linked_from_the_readme_and_names_the_contract():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/supplier-integration.md" in readme
    guide = (ROOT / "docs" / "supplier-integration.md").read_text(encoding="utf-8")
    for word in (
        "supplier-asyncapi.json",
        "X-COC-Signature",
        "X-COC-Timestamp",
        "reply_id",
        "coc.supplier-replies",
        "user_id",
        "Idempotency-Key",
        "openapi.json",
    ):
        assert word in guide, word
