"""Exports of a subject's personal data (GDPR 15 and 20) on the gdpr side: a request asks every
service; once all have contributed, the document holds every category of the retention schedule
(described, with the data of the services that hold some), is stored encrypted, and opens with the
mailed link's token until it expires; each download is recorded."""

from __future__ import annotations

import base64
import json

import pytest
from sqlalchemy import select

from coc_gdpr.adapters import tables
from coc_gdpr.service import definition
from coc_gdpr.service_layer import exports
from coc_shared.catalogue import ERASING_SERVICES, export_contribution_type
from coc_shared.envelope import Event
from coc_shared.testing import fresh_example, handle, staff_headers

KEY = base64.b64encode(b"e" * 32).decode()
TOKEN = "a-token-of-the-link-" + "t" * 24


@pytest.fixture
def runtime(runtime_factory, monkeypatch):
    monkeypatch.setattr(exports.secrets, "token_urlsafe", lambda _n: TOKEN)
    return runtime_factory(definition, extra={"GDPR_EXPORT_KEY": KEY})


def contribution(request: Event, service: str, data: dict) -> Event:
    subject = request.data.get("account_id") or request.data.get("order_id")
    return Event(
        type=export_contribution_type(service),
        producer=service,
        correlation_id=subject,
        subject=subject,
        data={"request_id": request.id, "service": service, "categories": sorted(data)},
        personal={"data": data},
    )


CONTRIBUTIONS = {
    "orders": {
        "account": [{"email": "emilie@example.org"}],
        "order_customer": [{"order_id": "o1", "customer": {"last_name": "Martin"}}],
        "order_evidence": [{"order_id": "o1", "vin": "VF3ABCDEF12345678"}],
        "order_client_traces": [{"order_id": "o1", "client_ip": "192.0.2.7"}],
        "identity_documents": [{"order_id": "o1", "kind": "id_card"}],
    },
    "payments": {"invoices": [{"number": "FA-00000001"}], "provider_callbacks": []},
    "supplier-gateway": {"order_customer": [{"order_id": "o1", "customer_name": "E. Martin"}]},
    "notifications": {
        "mail_recipients": [{"order_id": "o1", "email": "emilie@example.org"}],
        "marketing_contact": [{"consented_at": "2026-11-27T10:00:00+00:00"}],
    },
}


def row(rt, request_id):
    t = tables.data_exports
    with rt.engine.connect() as conn:
        return conn.execute(select(t).where(t.c.request_id == request_id)).one()


def test_an_export_holds_every_category_of_the_schedule_and_opens_with_the_link(runtime):
    request = fresh_example("account.data_export_requested")
    account_id = request.data["account_id"]
    handle(runtime, request)
    again = fresh_example("account.data_export_requested")
    again.data = {**request.data}
    handle(runtime, again)  # joins the pending one
    for service in ERASING_SERVICES:
        assert row(runtime, request.id).status == "pending"
        event = contribution(request, service, CONTRIBUTIONS[service])
        handle(runtime, event)
        handle(runtime, event)  # once per service
    ready = row(runtime, request.id)
    assert ready.status == "ready" and ready.expires_at is not None
    assert (ready.email, ready.first_name) == (None, None)  # the link went; the address goes
    assert b"Martin" not in ready.document  # stored encrypted
    with runtime.engine.connect() as conn:
        t = tables.export_contributions
        kept = conn.execute(select(t.c.data).where(t.c.request_id == request.id)).scalars().all()
        assert kept == [None] * len(ERASING_SERVICES)  # the contributions' data is dropped
        assert conn.execute(
            select(tables.data_exports).where(tables.data_exports.c.subject == account_id)
        ).all() == [ready]

    client = runtime.create_app().test_client()
    path = f"/v1/exports/{request.id}"
    assert client.get(path).status_code == 403
    assert client.get(path, headers={"X-Export-Token": "wrong"}).status_code == 403
    assert client.get("/v1/exports/nope", headers={"X-Export-Token": TOKEN}).status_code == 404
    answer = client.get(path, headers={"X-Export-Token": TOKEN})
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    assert "attachment" in answer.headers["Content-Disposition"]
    document = json.loads(answer.data)
    listed = [c["category"] for c in document["categories"]]
    assert listed == [c.category for c in runtime.config.schedule.categories]
    by_name = {c["category"]: c for c in document["categories"]}
    held = {c for c in by_name if by_name[c]["held"]}
    assert held == {c for data in CONTRIBUTIONS.values() for c, records in data.items() if records}
    assert by_name["order_customer"]["data"] == {
        "orders": CONTRIBUTIONS["orders"]["order_customer"],
        "supplier-gateway": CONTRIBUTIONS["supplier-gateway"]["order_customer"],
    }
    assert by_name["invoices"]["retention"]["archive"] == "P9Y"
    assert "notifications" in by_name["order_customer"]["recipients"]["internal"]
    assert by_name["card_data"]["held"] is False
    summary = client.get(path + "/summary", headers={"X-Export-Token": TOKEN})
    assert summary.status_code == 200 and summary.mimetype == "text/plain"
    assert "Finalité" in summary.get_data(as_text=True)

    staff = client.get(
        f"/v1/staff/export-requests/{account_id}", headers=staff_headers("alice", "support")
    )
    [item] = staff.get_json()["items"]
    assert (item["status"], [d["part"] for d in item["downloads"]]) == (
        "ready",
        ["document", "summary"],
    )


def test_an_expired_link_answers_410_and_the_document_is_dropped(runtime):
    from datetime import timedelta

    from coc_gdpr.adapters.repository import ExportRepository
    from coc_shared.envelope import utcnow

    request = fresh_example("account.data_export_requested")
    handle(runtime, request)
    for service in ERASING_SERVICES:
        handle(runtime, contribution(request, service, {}))
    with runtime.unit_of_work() as uow:
        assert ExportRepository(uow).expire(utcnow() + timedelta(days=4)) >= 1
        uow.commit()
    gone = row(runtime, request.id)
    assert (gone.status, gone.document) == ("expired", None)
    client = runtime.create_app().test_client()
    answer = client.get(f"/v1/exports/{request.id}", headers={"X-Export-Token": TOKEN})
    assert answer.status_code == 410


def test_without_a_key_the_last_contribution_fails_and_nothing_is_kept(runtime_factory):
    rt = runtime_factory(definition)
    request = fresh_example("account.data_export_requested")
    handle(rt, request)
    for service in ERASING_SERVICES[:-1]:
        handle(rt, contribution(request, service, {}))
    with pytest.raises(exports.ExportNotConfigured):
        handle(rt, contribution(request, ERASING_SERVICES[-1], {}))
    assert row(rt, request.id).status == "pending"


def test_the_ledger_is_in_the_export_and_a_deactivation_forgets_the_exports(runtime):
    request = fresh_example("account.data_export_requested")
    account_id = request.data["account_id"]
    choice = fresh_example("account.marketing_choice_made")
    choice.data = {**choice.data, "account_id": account_id}
    handle(runtime, choice)
    handle(runtime, request)
    for service in ERASING_SERVICES:
        handle(runtime, contribution(request, service, {}))
    client = runtime.create_app().test_client()
    answer = client.get(f"/v1/exports/{request.id}", headers={"X-Export-Token": TOKEN})
    by_name = {c["category"]: c for c in json.loads(answer.data)["categories"]}
    [given] = by_name["marketing_contact"]["data"]["gdpr"]
    assert (given["status"], given["channel"]) == ("given", "account_sign_up")

    deactivation = fresh_example("account.deactivation_requested")
    deactivation.data = {**deactivation.data, "account_id": account_id}
    handle(runtime, deactivation)
    gone = row(runtime, request.id)
    assert (gone.status, gone.document) == ("expired", None)
    answer = client.get(f"/v1/exports/{request.id}", headers={"X-Export-Token": TOKEN})
    assert answer.status_code == 410
