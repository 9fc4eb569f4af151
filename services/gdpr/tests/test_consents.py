"""The consent ledger: the consent ticked on the order form, an account's choice at sign-up or in
its settings, and the one-click unsubscribe are recorded (when, channel, text version; the address
as a hash only), once per event, and told to notifications (consent.given / consent.withdrawn with
the address in the personal part)."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from sqlalchemy import select

from coc_gdpr.adapters import tables
from coc_gdpr.service import definition
from coc_shared.testing import fresh_example, handle, staff_headers


@pytest.fixture
def runtime(runtime_factory):
    return runtime_factory(definition)


def ledger(rt, account_id):
    t = tables.marketing_consents
    with rt.engine.connect() as conn:
        return conn.execute(
            select(t).where(t.c.account_id == account_id).order_by(t.c.changed_at)
        ).all()


def told(rt, event_type, subject):
    t = tables.outbox
    with rt.engine.connect() as conn:
        return conn.execute(
            select(t.c.event_type).where(t.c.event_type == event_type, t.c.subject == subject)
        ).all()


def test_consents_given_and_withdrawn_land_in_the_ledger_and_are_told(runtime):
    order = fresh_example("order.placed")
    account_id = str(uuid.uuid4())
    order.data = {**order.data, "marketing_consent": True, "account_id": account_id}
    handle(runtime, order)
    handle(runtime, order)  # once per event
    no_consent = fresh_example("order.placed")
    no_consent.data = {**no_consent.data, "account_id": account_id}
    handle(runtime, no_consent)  # no consent ticked: nothing recorded, nothing withdrawn

    unsubscribed = fresh_example("marketing.unsubscribed")
    unsubscribed.data = {**unsubscribed.data, "account_id": account_id}
    handle(runtime, unsubscribed)

    choice = fresh_example("account.marketing_choice_made")
    choice.data = {**choice.data, "account_id": account_id, "at": "2026-12-11T08:00:00+00:00"}
    handle(runtime, choice)

    rows = ledger(runtime, account_id)
    assert [(r.status, r.source, r.text_version) for r in rows] == [
        ("given", "order_form", "2026-12-05"),
        ("withdrawn", "one_click", None),
        ("given", "account_sign_up", "2026-12-05"),
    ]
    digest = hashlib.sha256(order.personal["email"].strip().lower().encode()).hexdigest()
    assert {r.address_sha256 for r in rows} == {digest}
    assert all(r.consent_id for r in rows) and rows[0].order_id == order.data["order_id"]
    assert "@" not in str([tuple(r) for r in rows])  # never the address itself
    assert len(told(runtime, "consent.given", account_id)) == 2
    assert len(told(runtime, "consent.withdrawn", account_id)) == 1

    client = runtime.create_app().test_client()
    answer = client.get(f"/v1/staff/consents/{account_id}", headers=staff_headers())
    assert answer.status_code == 200
    assert [i["channel"] for i in answer.get_json()["items"]] == [
        "order_form",
        "one_click",
        "account_sign_up",
    ]
