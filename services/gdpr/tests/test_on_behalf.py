"""GDPR requests opened by staff on behalf of a customer who wrote or called: a deactivation and
an export start the same sagas as the customer's own requests (a pending one absorbs a second), a
correction is kept with its one-month deadline until staff mark it done; each is in the support
actions log with the channel and who verified the person (how stays in gdpr's request row), in
the same transaction as the request; an export's link goes to the address on file unless an
admin gives another with a reason; bad input is a 4xx naming the field."""

from __future__ import annotations

import base64
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

from coc_gdpr.adapters import tables
from coc_gdpr.service import definition
from coc_gdpr.service_layer import on_behalf as on_behalf_uc
from coc_gdpr.service_layer.purges import start_purge_run
from coc_shared.catalogue import ERASING_SERVICES, export_contribution_type
from coc_shared.envelope import Event, utcnow
from coc_shared.tables import support_actions
from coc_shared.testing import handle, opened, staff_headers
from coc_shared.tokens import Actor

SUPPORT = staff_headers("sam", "support")
ADMIN = staff_headers("ada", "admin")
PATH = "/v1/staff/requests-on-behalf"
CORRECTIONS = "/v1/staff/correction-requests"
KEY = base64.b64encode(b"e" * 32).decode()


@pytest.fixture
def runtime(runtime_factory):
    return runtime_factory(definition, extra={"GDPR_EXPORT_KEY": KEY})


def body(kind: str, **changes) -> dict:
    return {
        "kind": kind,
        "account_id": str(uuid.uuid4()),
        "channel": "phone",
        "verification": "called from the account's phone number; confirmed the last order's VIN",
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
            select(support_actions)
            .where(support_actions.c.action == action, support_actions.c.target == subject)
            .order_by(support_actions.c.id)
        ).all()


def rows(rt, table, **where):
    with rt.engine.connect() as conn:
        return conn.execute(select(table).where(*(table.c[k] == v for k, v in where.items()))).all()


def contributions_of(rt, request_id: str, subject: str, orders: dict) -> None:
    """Every service's contribution to the export ``request_id`` (orders' ``orders``)."""
    for service in ERASING_SERVICES:
        data = orders if service == "orders" else {}
        handle(
            rt,
            Event(
                type=export_contribution_type(service),
                producer=service,
                correlation_id=subject,
                subject=subject,
                data={"request_id": request_id, "service": service, "categories": sorted(data)},
                personal={"data": data},
            ),
        )


def test_a_deactivation_by_phone_starts_the_saga_once_and_is_recorded(runtime):
    client = runtime.create_app().test_client()
    asked = body("deactivation", verified_by="lea", email="nadia.customer@example.org")
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
    [row] = rows(runtime, tables.deactivation_requests, account_id=asked["account_id"])
    assert row.email == "nadia.customer@example.org"  # where the summary goes
    assert row.verification == asked["verification"]  # how: in gdpr's row only
    again = client.post(PATH, json={**asked, "channel": "email"}, headers=SUPPORT)
    assert again.status_code == 201 and again.get_json()["joined"] is True
    assert again.get_json()["request_id"] == answer["request_id"]
    assert len(outbox(runtime, "account.erasure_requested", asked["account_id"])) == 1
    actions = recorded(runtime, "gdpr_deactivation_on_behalf", asked["account_id"])
    assert [(a.actor, a.details["channel"], a.details["joined"]) for a in actions] == [
        ("sam", "phone", False),
        ("sam", "email", True),
    ]
    assert (actions[0].details["verified_by"], actions[0].details["verified"]) == ("lea", True)
    assert "verification" not in actions[0].details
    assert "phone number" not in str(actions[0]._mapping)


@pytest.mark.parametrize("role_headers", [SUPPORT, ADMIN], ids=["support", "admin"])
def test_an_account_s_export_goes_to_the_address_on_file(runtime, role_headers):
    client = runtime.create_app().test_client()
    asked = body("export", order_id=str(uuid.uuid4()), channel="email")
    made = client.post(PATH, json=asked, headers=role_headers)
    assert made.status_code == 201, made.get_json()
    request_id = made.get_json()["request_id"]
    assert made.get_json()["address"] == "on_file"
    [export] = outbox(runtime, "account.export_requested", asked["account_id"])
    assert export["data"]["request_id"] == request_id
    [row] = rows(runtime, tables.data_exports, request_id=request_id)
    assert (row.email, row.verification) == (None, asked["verification"])
    orders = {"account": [{"id": asked["account_id"], "email": "on.file@example.org"}]}
    contributions_of(runtime, request_id, asked["account_id"], orders)
    [ready] = outbox(runtime, "account.data_export_ready", asked["account_id"])
    assert ready["personal"]["email"] == "on.file@example.org"
    [action] = recorded(runtime, "gdpr_export_on_behalf", asked["account_id"])
    assert (action.details["address"], action.details["verified"]) == ("on_file", True)
    assert "verification" not in action.details


def test_a_guest_s_export_goes_to_the_order_s_address(runtime):
    client = runtime.create_app().test_client()
    order_id = str(uuid.uuid4())
    asked = body("export", account_id=None, order_id=order_id, channel="email")
    made = client.post(PATH, json=asked, headers=SUPPORT)
    assert made.status_code == 201, made.get_json()
    request_id = made.get_json()["request_id"]
    [export] = outbox(runtime, "account.export_requested", order_id)
    assert export["data"]["order_ids"] == [order_id]
    listed = client.get(f"/v1/staff/export-requests/{order_id}", headers=SUPPORT).get_json()
    assert [i["request_id"] for i in listed["items"]] == [request_id]
    orders = {
        "order_customer": [
            {"order_id": str(uuid.uuid4()), "customer": {"email": "someone.else@example.org"}},
            {"order_id": order_id, "customer": {"email": "guest@example.org"}},
        ]
    }
    contributions_of(runtime, request_id, order_id, orders)
    [ready] = outbox(runtime, "account.data_export_ready", order_id)
    assert ready["personal"]["email"] == "guest@example.org"
    [action] = recorded(runtime, "gdpr_export_on_behalf", order_id)
    assert (action.actor, action.details["verified_by"]) == ("sam", "sam")  # the caller


def test_support_may_not_send_an_export_elsewhere_and_nothing_is_opened(runtime):
    client = runtime.create_app().test_client()
    asked = body("export", email="attacker@example.org", address_reason="asked me to")
    refused = client.post(PATH, json=asked, headers=SUPPORT)
    assert refused.status_code == 403, refused.get_json()
    assert "email" in refused.get_json()["error"]["fields"]
    assert outbox(runtime, "account.export_requested", asked["account_id"]) == []
    assert rows(runtime, tables.data_exports, subject=asked["account_id"]) == []
    assert recorded(runtime, "gdpr_export_on_behalf", asked["account_id"]) == []


def test_an_admin_sends_an_export_elsewhere_only_with_a_reason_recorded(runtime):
    client = runtime.create_app().test_client()
    asked = body("export", email="new.mailbox@example.org")
    refused = client.post(PATH, json=asked, headers=ADMIN)
    assert refused.status_code == 422 and "address_reason" in str(refused.get_json())
    assert rows(runtime, tables.data_exports, subject=asked["account_id"]) == []
    reason = "the customer lost access to the old mailbox; confirmed by letter with ID"
    made = client.post(PATH, json={**asked, "address_reason": reason}, headers=ADMIN)
    assert made.status_code == 201, made.get_json()
    request_id = made.get_json()["request_id"]
    [row] = rows(runtime, tables.data_exports, request_id=request_id)
    assert row.email == "new.mailbox@example.org"
    orders = {"account": [{"id": asked["account_id"], "email": "old@example.org"}]}
    contributions_of(runtime, request_id, asked["account_id"], orders)
    [ready] = outbox(runtime, "account.data_export_ready", asked["account_id"])
    assert ready["personal"]["email"] == "new.mailbox@example.org"
    [action] = recorded(runtime, "gdpr_export_on_behalf", asked["account_id"])
    assert (action.actor, action.role) == ("ada", "admin")
    assert (action.details["address"], action.details["address_reason"]) == (
        "given_by_admin",
        reason,
    )


def test_a_correction_is_kept_listed_with_its_deadline_and_marked_done(runtime):
    client = runtime.create_app().test_client()
    order_id = str(uuid.uuid4())
    # the console's form: kind=correction, with the order it was opened from
    asked = body(
        "correction",
        order_id=order_id,
        channel="chat",
        email=None,
        first_name=None,
        verified_by=None,
        correction="the last name is Dupont, not Dupond",
    )
    made = client.post(PATH, json=asked, headers=SUPPORT)
    assert made.status_code == 201, made.get_json()
    answer = made.get_json()
    assert answer["correction"] == asked["correction"]
    [row] = rows(runtime, tables.correction_requests, request_id=answer["request_id"])
    assert (row.subject, row.order_id, row.status) == (asked["account_id"], order_id, "open")
    assert (row.correction, row.verification) == (asked["correction"], asked["verification"])
    assert row.due_by - row.requested_at == timedelta(days=30)
    [action] = recorded(runtime, "gdpr_correction_on_behalf", asked["account_id"])
    assert action.details["channel"] == "chat" and action.details["verified"] is True
    assert "Dupont" not in str(action._mapping) and "VIN" not in str(action._mapping)
    assert outbox(runtime, "account.erasure_requested", asked["account_id"]) == []

    assert client.get(CORRECTIONS).status_code == 401
    listed = client.get(CORRECTIONS, headers=SUPPORT).get_json()["items"]
    [mine] = [i for i in listed if i["request_id"] == answer["request_id"]]
    assert (mine["late"], mine["status"], mine["correction"]) == (
        False,
        "open",
        asked["correction"],
    )
    assert mine["due_by"] == row.due_by.isoformat()
    with runtime.engine.begin() as conn:  # opened 40 days ago: past its month
        t, then = tables.correction_requests, utcnow() - timedelta(days=40)
        conn.execute(
            update(t)
            .where(t.c.request_id == answer["request_id"])
            .values(requested_at=then, due_by=then + timedelta(days=30))
        )
    listed = client.get(CORRECTIONS, headers=SUPPORT).get_json()["items"]
    assert listed[0]["request_id"] == answer["request_id"]  # the oldest deadline first
    assert listed[0]["late"] is True

    done_path = f"{CORRECTIONS}/{answer['request_id']}/done"
    blank = client.post(done_path, json={"changed": " "}, headers=SUPPORT)
    assert blank.status_code == 422 and "changed" in str(blank.get_json())
    changed = "last name set to Dupont on the account and on the order's invoice address"
    done = client.post(done_path, json={"changed": changed}, headers=SUPPORT)
    assert done.status_code == 200, done.get_json()
    assert (done.get_json()["status"], done.get_json()["done_by"]) == ("done", "sam")
    assert (done.get_json()["changed"], done.get_json()["late"]) == (changed, True)
    again = client.post(done_path, json={"changed": "again"}, headers=ADMIN)
    assert again.status_code == 409
    unknown = client.post(f"{CORRECTIONS}/nope/done", json={"changed": "x"}, headers=SUPPORT)
    assert unknown.status_code == 404
    open_ids = [i["request_id"] for i in client.get(CORRECTIONS, headers=SUPPORT).json["items"]]
    assert answer["request_id"] not in open_ids
    done_ids = client.get(CORRECTIONS, query_string={"status": "done"}, headers=SUPPORT)
    assert answer["request_id"] in [i["request_id"] for i in done_ids.json["items"]]
    [action] = recorded(runtime, "gdpr_correction_done", asked["account_id"])
    assert (action.actor, action.details["late"]) == ("sam", True)
    assert "Dupont" not in str(action._mapping)


def test_correction_requests_go_with_the_account_and_after_three_years_once_done(runtime):
    client = runtime.create_app().test_client()
    asked = body("correction", correction="the street is rue Neuve")
    made = client.post(PATH, json=asked, headers=SUPPORT).get_json()
    erasure = client.post(
        PATH, json=body("deactivation", account_id=asked["account_id"]), headers=SUPPORT
    )
    assert erasure.status_code == 201
    assert rows(runtime, tables.correction_requests, request_id=made["request_id"]) == []

    old_done, still_open = (
        client.post(PATH, json=body("correction", correction="a"), headers=SUPPORT).json
        for _ in range(2)
    )
    done_path = f"{CORRECTIONS}/{old_done['request_id']}/done"
    assert client.post(done_path, json={"changed": "b"}, headers=SUPPORT).status_code == 200
    with runtime.engine.begin() as conn:
        t, then = tables.correction_requests, utcnow() - timedelta(days=4 * 365)
        conn.execute(
            update(t)
            .where(t.c.request_id.in_([old_done["request_id"], still_open["request_id"]]))
            .values(requested_at=then, due_by=then + timedelta(days=30))
        )
        conn.execute(update(t).where(t.c.request_id == old_done["request_id"]).values(done_at=then))
    start_purge_run(runtime, "command")
    assert rows(runtime, tables.correction_requests, request_id=old_done["request_id"]) == []
    assert len(rows(runtime, tables.correction_requests, request_id=still_open["request_id"])) == 1


FAILING_REQUEST = {  # a value the request's row refuses, the support action's would not
    "deactivation": {"email": "x" * 330 + "@example.org"},
    "export": {"email": "x" * 330 + "@example.org", "address_reason": "the customer asked"},
    "correction": {"verified_by": "v" * 201, "correction": "the first name is Zoé"},
}


@pytest.mark.parametrize("kind", ["deactivation", "export", "correction"])
def test_a_failure_keeps_neither_the_request_nor_its_support_action(runtime, kind):
    use_case = on_behalf_uc.OPEN_BY_KIND[kind]
    admin, broken_actor = Actor("ada", "admin"), Actor("ada", "r" * 51)  # role: 50 at most
    fields = body(kind, correction="the first name is Zoé")

    def nothing_kept(subject: str) -> None:
        for table in (
            tables.deactivation_requests,
            tables.data_exports,
            tables.correction_requests,
        ):
            column = table.c.account_id
            assert rows(runtime, table, **{column.name: subject}) == []
        with runtime.engine.connect() as conn:
            o = tables.outbox
            assert conn.execute(select(o).where(o.c.subject == subject)).all() == []
            s = support_actions
            assert conn.execute(select(s).where(s.c.target == subject)).all() == []

    with pytest.raises(DBAPIError):  # the support action fails: no request
        use_case(runtime, broken_actor, fields)
    nothing_kept(fields["account_id"])
    failing = {**fields, **FAILING_REQUEST[kind]}
    with pytest.raises(DBAPIError):  # the request fails: no support action
        use_case(runtime, admin, failing)
    nothing_kept(fields["account_id"])
    use_case(runtime, admin, fields)  # and both when nothing fails
    assert len(recorded(runtime, f"gdpr_{kind}_on_behalf", fields["account_id"])) == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"kind": "forget"}, "kind"),
        ({"channel": "fax"}, "channel"),
        ({"verification": "  "}, "verification"),
        ({"account_id": None}, "account_id"),
        ({"kind": "correction", "correction": ""}, "correction"),
        ({"email": "not-an-address"}, "email"),
    ],
)
def test_a_refused_request_names_the_field(runtime, changes, field):
    client = runtime.create_app().test_client()
    refused = client.post(PATH, json={**body("deactivation"), **changes}, headers=SUPPORT)
    assert refused.status_code == 422, refused.get_json()
    assert field in str(refused.get_json()["error"]), refused.get_json()
