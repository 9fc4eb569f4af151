"""The disclosure log: admins record disclosures to authorities and list them; support staff get
403; a disclosure is in the support actions log; the table refuses any change or deletion."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from coc_gdpr.adapters import tables
from coc_gdpr.domain.disclosures import InvalidDisclosure, new_disclosure
from coc_gdpr.service import definition
from coc_shared.tables import support_actions
from coc_shared.testing import staff_headers

ADMIN = staff_headers("root", "admin")
SUPPORT = staff_headers("alice", "support")


@pytest.fixture
def runtime(runtime_factory):
    return runtime_factory(definition)


def disclosure_body(**changes) -> dict:
    return {
        "authority": "Tribunal judiciaire de Lyon, juge d'instruction",
        "legal_basis": "Réquisition judiciaire (art. 99-3 code de procédure pénale)",
        "reference": f"REQ-{uuid.uuid4().hex[:8]}",
        "categories": ["order_customer", "invoices"],
        "disclosed_on": "2026-12-01",
        "subject": "order-123",
        **changes,
    }


def test_an_admin_records_a_disclosure_and_lists_it_support_gets_403(runtime):
    client = runtime.create_app().test_client()
    body = disclosure_body()
    assert client.post("/v1/staff/disclosures", json=body).status_code == 401
    assert client.post("/v1/staff/disclosures", json=body, headers=SUPPORT).status_code == 403
    made = client.post("/v1/staff/disclosures", json=body, headers=ADMIN)
    assert made.status_code == 201, made.get_json()
    recorded = made.get_json()
    assert (recorded["staff"], recorded["staff_role"], recorded["categories"]) == (
        "root",
        "admin",
        ["order_customer", "invoices"],
    )
    assert client.get("/v1/staff/disclosures", headers=SUPPORT).status_code == 403
    listed = client.get(
        "/v1/staff/disclosures", query_string={"subject": "order-123"}, headers=ADMIN
    )
    assert listed.status_code == 200
    assert recorded in listed.get_json()["items"]
    with runtime.engine.connect() as conn:
        action = conn.execute(
            select(support_actions).where(
                support_actions.c.action == "record_disclosure",
                support_actions.c.target == recorded["id"],
            )
        ).one()
    assert (action.actor, action.role) == ("root", "admin")
    assert body["reference"] in action.reason
    assert action.details["categories"] == ["order_customer", "invoices"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"authority": "   "}, "authority"),
        ({"legal_basis": ""}, "legal_basis"),
        ({"categories": []}, "categories"),
        ({"categories": ["everything"]}, "categories"),
        ({"disclosed_on": "2999-01-01"}, "disclosed_on"),
        ({"disclosed_on": "yesterday"}, "disclosed_on"),
        ({"reference": None}, "reference"),
    ],
)
def test_a_refused_disclosure_is_a_422_naming_the_field(runtime, changes, field):
    client = runtime.create_app().test_client()
    answer = client.post("/v1/staff/disclosures", json=disclosure_body(**changes), headers=ADMIN)
    assert answer.status_code == 422, answer.get_json()
    assert field in answer.get_json()["error"]["fields"]


def test_the_log_is_append_only_in_the_database(runtime):
    client = runtime.create_app().test_client()
    made = client.post("/v1/staff/disclosures", json=disclosure_body(), headers=ADMIN).get_json()
    t = tables.disclosures
    for statement in (
        sa.update(t).where(t.c.disclosure_id == made["id"]).values(authority="someone else"),
        sa.delete(t).where(t.c.disclosure_id == made["id"]),
        sa.text("TRUNCATE gdpr.disclosures"),
    ):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            with runtime.engine.begin() as conn:
                conn.execute(statement)
    with runtime.engine.connect() as conn:
        row = conn.execute(select(t).where(t.c.disclosure_id == made["id"])).one()
    assert row.authority == made["authority"]


def test_the_domain_names_every_refused_field():
    from datetime import UTC, datetime

    with pytest.raises(InvalidDisclosure) as refused:
        new_disclosure({"categories": ["nope"]}, "root", "admin", ("invoices",), datetime.now(UTC))
    assert set(refused.value.fields) == {
        "authority",
        "legal_basis",
        "reference",
        "categories",
        "disclosed_on",
    }
