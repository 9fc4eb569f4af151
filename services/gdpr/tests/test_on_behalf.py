"""GDPR requests opened by staff on behalf of a customer who wrote or called: a deactivation and
an export start the same sagas as the customer's own requests (a pending one absorbs a second),
a correction is recorded; each is in the support actions log with the channel and who verified
the person, and how; bad input is a 422 naming the field."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from coc_gdpr.adapters import tables
from coc_gdpr.service import definition
from coc_shared.tables import support_actions
from coc_shared.testing import opened, staff_headers

SUPPORT = staff_headers("sam", "support")
PATH = "/v1/staff/requests-on-behalf"


@pytest.fixture
def runtime(runtime_factory):
    return runtime_factory(definition)


def body(kind: str, **changes) -> dict:
    return {
        "kind": kind,
        "account_id": str(uuid.uuid4()),
        "channel": "phone",
        "verification": "called from the account's phone number; confirmed the last order's VIN",
        "email": "nadia.customer@example.org",
        "first_name": "Nadia",
        **changes,
    }


def outbox(rt, event_type: str, subject: str) -> list[dict]:
    t = tables.outbox
    with rt.engine.connect() as conn:
        rows = conn.execute(
            select(t.c.body).where(t.c.event_type == event_type, t.c.subject == subject)
        ).all()
    return [opened(rt, r.body) for r in rows]


def recorded(rt, action: str, subject: str):
    with rt.engine.connect() as conn:
        return conn.execute(
            select(support_actions).where(
                support_actions.c.action == action, support_actions.c.target == subject
            )
        ).all()


def test_a_deactivation_by_phone_starts_the_saga_once_and_is_recorded(runtime):
    client = runtime.create_app().test_client()
    asked = body("deactivation", verified_by="lea")
    assert client.post(PATH, json=asked).status_code == 401
    made = client.post(PATH, json=asked, headers=SUPPORT)
    assert made.status_code == 201, made.get_json()
    answer = made.get_json()
    assert (answer["opened_by"], answer["verified_by"], answer["joined"]) == ("sam", "lea", False)
    [erasure] = outbox(runtime, "account.erasure_requested", asked["account_id"])
    assert erasure["data"]["request_id"] == answer["request_id"]
    listed = client.get(f"/v1/staff/deactivation-requests/{asked['account_id']}", headers=SUPPORT)
    [pending] = listed.get_json()["items"]
    assert (pending["event_id"], pending["status"]) == (answer["request_id"], "pending")
    with runtime.engine.connect() as conn:
        t = tables.deactivation_requests
        row = conn.execute(select(t).where(t.c.account_id == asked["account_id"])).one()
    assert row.email == "nadia.customer@example.org"  # where the summary goes
    again = client.post(PATH, json={**asked, "channel": "email"}, headers=SUPPORT)
    assert again.status_code == 201 and again.get_json()["joined"] is True
    assert again.get_json()["request_id"] == answer["request_id"]
    assert len(outbox(runtime, "account.erasure_requested", asked["account_id"])) == 1
    actions = recorded(runtime, "gdpr_deactivation_on_behalf", asked["account_id"])
    assert [(a.actor, a.details["channel"]) for a in actions] == [
        ("sam", "phone"),
        ("sam", "email"),
    ]
    assert actions[0].details["verified_by"] == "lea"
    assert actions[0].details["verification"] == asked["verification"]


def test_an_export_by_email_for_a_guests_order_starts_the_export_saga(runtime):
    client = runtime.create_app().test_client()
    order_id = str(uuid.uuid4())
    asked = body("export", account_id=None, order_id=order_id, channel="email")
    made = client.post(PATH, json=asked, headers=SUPPORT)
    assert made.status_code == 201, made.get_json()
    [export] = outbox(runtime, "account.export_requested", order_id)
    assert export["data"]["order_ids"] == [order_id]
    assert export["data"]["request_id"] == made.get_json()["request_id"]
    listed = client.get(f"/v1/staff/export-requests/{order_id}", headers=SUPPORT).get_json()
    assert [i["request_id"] for i in listed["items"]] == [made.get_json()["request_id"]]
    [action] = recorded(runtime, "gdpr_export_on_behalf", order_id)
    assert (action.actor, action.details["verified_by"]) == ("sam", "sam")  # the caller


def test_a_correction_is_recorded_without_its_text_in_the_log(runtime):
    client = runtime.create_app().test_client()
    asked = body("correction", channel="chat", correction="the last name is Dupont, not Dupond")
    made = client.post(PATH, json=asked, headers=SUPPORT)
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["correction"] == asked["correction"]
    [action] = recorded(runtime, "gdpr_correction_on_behalf", asked["account_id"])
    assert action.details["channel"] == "chat" and "Dupont" not in str(action.details)
    assert outbox(runtime, "account.erasure_requested", asked["account_id"]) == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"kind": "forget"}, "kind"),
        ({"channel": "fax"}, "channel"),
        ({"verification": "  "}, "verification"),
        ({"account_id": None}, "account_id"),
        ({"kind": "export", "email": None}, "email"),
        ({"kind": "correction", "correction": ""}, "correction"),
    ],
)
def test_a_refused_request_names_the_field(runtime, changes, field):
    client = runtime.create_app().test_client()
    refused = client.post(PATH, json={**body("deactivation"), **changes}, headers=SUPPORT)
    assert refused.status_code == 422, refused.get_json()
    assert field in str(refused.get_json()["error"]), refused.get_json()
