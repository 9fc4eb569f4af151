"""The OpenAPI document: served at /openapi.json, equal to the file kept in the repository, and
the API checked against it by schemathesis (no 5xx, every response as documented)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from orders_helpers import order_body
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from coc_orders.entrypoints.openapi import render

KEPT = Path(__file__).resolve().parent.parent / "openapi.json"


def test_the_served_document_is_the_one_kept_in_the_repository(client):
    served = client.get("/openapi.json")
    assert served.status_code == 200 and served.headers["X-Correlation-ID"]
    assert render(served.get_json()) == KEPT.read_text(encoding="utf-8"), (
        "regenerate it: python -m coc_orders.entrypoints.openapi > services/orders/openapi.json"
    )
    doc = served.get_json()
    assert doc["openapi"].startswith("3.")
    assert {
        "/v1/orders",
        "/v1/orders/{order_id}",
        "/v1/orders/{order_id}/documents",
        "/v1/accounts",
        "/v1/auth/token",
        "/v1/accounts/me",
        "/v1/accounts/me/orders",
        "/v1/accounts/me/deactivation",
    } <= set(doc["paths"])


@pytest.fixture
def api_app(make_runtime):
    rt = make_runtime()
    return rt.create_app()


@pytest.fixture
def api_schema(api_app):
    return schemathesis.openapi.from_wsgi("/openapi.json", api_app)


@pytest.fixture
def credentials(api_app):
    """A real account (bearer token) owning a real order, and a guest order's access token."""
    client = api_app.test_client()
    email = f"st.{uuid.uuid4().hex[:8]}@example.org"
    assert (
        client.post(
            "/v1/accounts", json={"email": email, "password": "schemathesis pw"}
        ).status_code
        == 202
    )
    token = client.post(
        "/v1/auth/token", json={"email": email, "password": "schemathesis pw"}
    ).get_json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    owned = client.post("/v1/orders", json=order_body(), headers=auth).get_json()
    guest = client.post("/v1/orders", json=order_body()).get_json()
    return {"auth": auth, "order_id": owned["id"], "guest_token": guest["access_token"]}


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


def test_every_operation_answers_as_documented_and_never_5xx(api_schema, credentials):
    """schemathesis's generated requests (valid and not) on every operation, with valid tokens;
    schemathesis's pytest plugin (``from_fixture``) does not run under pytest 9, so the loop is
    here."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=True,
        )
        def check(case):
            headers = dict(credentials["auth"])
            if (
                case.path_parameters
                and "order_id" in case.path_parameters
                and len(str(case.path_parameters["order_id"])) % 2
            ):
                case.path_parameters["order_id"] = credentials[
                    "order_id"
                ]  # an order that exists, half the time
            if operation.path == "/v1/accounts/me/deactivation":  # noqa: B023 - check() runs in the loop
                headers = {}  # keep the account usable by the other operations
            if (
                case.headers
                and "X-Order-Token" in case.headers
                and len(case.headers["X-Order-Token"]) % 2
            ):
                case.headers["X-Order-Token"] = credentials["guest_token"]
            case.call_and_validate(headers=headers, checks=CHECKS)

        check()
