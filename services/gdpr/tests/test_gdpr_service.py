"""Integration tests of the gdpr service on the real PostgreSQL and RabbitMQ (this run's own
database and bus prefix, from coc_shared.testing)."""

import pytest
from sqlalchemy import select

from coc_gdpr.adapters import tables
from coc_gdpr.service import definition
from coc_gdpr.service_layer.purges import start_purge_run
from coc_orders.service import definition as orders_definition
from coc_shared.catalogue import (
    ERASING_SERVICES,
    erasure_report_type,
    export_contribution_type,
    purge_report_type,
)
from coc_shared.envelope import Event
from coc_shared.service import Runtime
from coc_shared.testing import (
    assert_handlers_work_on_sqlite,
    assert_migrated,
    assert_migrations_match_metadata,
    assert_one_effect_when_published_twice,
    assert_recorded_once,
    count_rows,
    fresh_example,
    handle,
    opened,
    staff_client,
)


@pytest.fixture
def runtime(runtime_factory):
    return runtime_factory(definition)


def effects(rt: Runtime, event) -> int:
    """How many rows the handling of ``event`` left in the service's own tables."""
    if event.type in ("marketing.unsubscribed", "order.placed", "account.marketing_choice_made"):
        table = tables.marketing_consents
        return count_rows(rt, table, table.c.event_id == event.id)
    if event.type.startswith("retention.purged."):
        table = tables.purge_reports  # the service's report (gdpr's own is the run's)
        return count_rows(
            rt,
            table,
            (table.c.run_id == event.data["run_id"]) & (table.c.service == event.data["service"]),
        )
    if event.type.startswith("account.export_contributed."):
        table = tables.export_contributions
        return count_rows(rt, table, table.c.request_id == event.data["request_id"])
    if event.type == "account.data_export_requested":
        table = tables.data_exports
        return count_rows(rt, table, table.c.subject == event.data["account_id"])
    if event.type.startswith("account.erasure_reported."):
        table = tables.erasure_reports
        return count_rows(rt, table, table.c.request_id == event.data["request_id"])
    table = tables.deactivation_requests
    return count_rows(rt, table, table.c.account_id == event.data["account_id"])


def test_migrate_creates_the_schema_and_runs_again_without_change(runtime):
    assert_migrated(
        runtime,
        {
            "deactivation_requests",
            "marketing_consents",
            "erasure_reports",
            "purge_runs",
            "purge_reports",
            "disclosures",
            "data_exports",
            "export_contributions",
            "export_downloads",
            "correction_requests",
        },
        "gdpr_0012",
    )


def test_migrations_create_exactly_the_tables_of_the_metadata(runtime):
    assert_migrations_match_metadata(runtime)


def example(event_type: str, rt) -> Event:
    """The catalogue's example; a report answers a request (or a purge run) opened first."""
    if event_type.startswith("retention.purged."):
        [service] = [s for s in ERASING_SERVICES if purge_report_type(s) == event_type]
        event = fresh_example(event_type)
        event.data = {**event.data, "run_id": start_purge_run(rt), "service": service}
        return event
    if event_type == "order.placed":  # an order with the consent to marketing mails
        event = fresh_example(event_type)
        event.data = {**event.data, "marketing_consent": True}
        return event
    if event_type.startswith("account.export_contributed."):
        request = fresh_example("account.data_export_requested")
        handle(rt, request)
        [service] = [s for s in ERASING_SERVICES if export_contribution_type(s) == event_type]
        return contribution(request, service)
    if not event_type.startswith("account.erasure_reported."):
        return fresh_example(event_type)
    request = fresh_example("account.deactivation_requested")
    handle(rt, request)
    [service] = [s for s in ERASING_SERVICES if erasure_report_type(s) == event_type]
    return report(request, service)


def test_migrations_and_handlers_work_on_sqlite(tmp_path):
    assert_handlers_work_on_sqlite(definition, tmp_path, effects, example)


@pytest.mark.parametrize("event_type", sorted(definition.handlers(None)))
def test_each_consumed_event_type_is_recorded_once(runtime, event_type):
    assert_recorded_once(runtime, example(event_type, runtime), effects)


def test_health_readiness_and_staff_only_routes(runtime):
    client, auth = staff_client(runtime)
    event = fresh_example("account.deactivation_requested")
    path = f"/v1/staff/deactivation-requests/{event.data['account_id']}"
    handle(runtime, event)
    assert client.get(path).status_code == 401
    answer = client.get(path, headers=auth)
    assert answer.status_code == 200
    [item] = answer.get_json()["items"]
    assert (item["event_id"], item["status"]) == (event.id, "pending")
    assert item["due_by"].startswith("2026-12-27T10:00:00")


def test_a_second_request_while_one_is_pending_joins_it(runtime):
    first = fresh_example("account.deactivation_requested")
    again = fresh_example("account.deactivation_requested")
    again.data = {**first.data, "requested_at": "2026-11-28T10:00:00+00:00"}
    for e in (first, again):
        handle(runtime, e)
    with runtime.engine.connect() as conn:
        rows = conn.execute(
            select(tables.deactivation_requests).where(
                tables.deactivation_requests.c.account_id == first.data["account_id"]
            )
        ).all()
    assert [(r.event_id, r.status) for r in rows] == [(first.id, "pending")]


@pytest.fixture
def producer(runtime, start_with_producer):
    """The consumer and relay of the gdpr service, and the relay of orders (the producer of
    the event used below), as threads on the real broker."""
    return start_with_producer(runtime, orders_definition)


def test_an_event_from_the_broker_has_one_effect_even_when_published_twice(runtime, producer):
    assert_one_effect_when_published_twice(
        runtime,
        producer,
        lambda: fresh_example("account.deactivation_requested"),
        effects,
        "deactivation request recorded",
    )


def test_a_withdrawal_of_marketing_consent_is_recorded_without_the_address(runtime):
    import hashlib

    event = fresh_example("marketing.unsubscribed")
    event.personal = {"email": " Emilie@Example.org "}
    handle(runtime, event)
    table = tables.marketing_consents
    with runtime.engine.connect() as conn:
        row = conn.execute(select(table).where(table.c.event_id == event.id)).one()
    assert (row.account_id, row.purpose, row.status, row.source) == (
        event.data["account_id"],
        "marketing_email",
        "withdrawn",
        "one_click",
    )
    assert row.address_sha256 == hashlib.sha256(b"emilie@example.org").hexdigest()
    assert "emilie" not in str(tuple(row)).lower()


def contribution(request: Event, service: str, data: dict | None = None) -> Event:
    subject = request.data.get("account_id") or request.data.get("order_id")
    return Event(
        type=export_contribution_type(service),
        producer=service,
        correlation_id=subject,
        subject=subject,
        data={"request_id": request.id, "service": service, "categories": sorted(data or {})},
        personal={"data": data or {}},
    )


def report(request: Event, service: str, **data) -> Event:
    return Event(
        type=erasure_report_type(service),
        producer=service,
        correlation_id=request.data["account_id"],
        subject=request.data["account_id"],
        data={
            "request_id": request.id,
            "account_id": request.data["account_id"],
            "service": service,
            **data,
        },
    )


def outbox_events(rt, event_type: str, account_id: str) -> list[dict]:
    t = tables.outbox
    with rt.engine.connect() as conn:
        rows = conn.execute(
            select(t.c.body).where(t.c.event_type == event_type, t.c.subject == account_id)
        ).all()
    return [opened(rt, r.body) for r in rows]  # the personal part opened, as a consumer sees it


def test_the_saga_asks_every_service_and_sends_the_summary_once_all_have_reported(runtime):
    request = fresh_example("account.deactivation_requested")
    account_id = request.data["account_id"]
    handle(runtime, request)
    [asked] = outbox_events(runtime, "account.erasure_requested", account_id)
    assert asked["data"]["request_id"] == request.id
    invoices = {"category": "invoices", "legal_basis": "L123-22", "until": "2036-12-31"}
    evidence = {"category": "order_evidence", "legal_basis": "L110-4", "until": "2031-11-27"}
    answers = {
        "orders": {"erased": [{"category": "account", "count": 1}], "retained": [evidence]},
        "payments": {
            "erased": [{"category": "uninvoiced_sales", "count": 0}],
            "retained": [invoices],
        },
        "supplier-gateway": {"erased": [], "retained": []},
        "notifications": {"erased": [{"category": "contacts", "count": 2}], "retained": []},
    }
    for service in ERASING_SERVICES[:-1]:
        handle(runtime, report(request, service, **answers[service]))
        handle(runtime, report(request, service, **answers[service]))  # a repeated report
    assert outbox_events(runtime, "account.deactivated", account_id) == []
    client, auth = staff_client(runtime)
    [pending] = client.get(
        f"/v1/staff/deactivation-requests/{account_id}", headers=auth
    ).get_json()["items"]
    assert (pending["status"], pending["waiting_for"]) == ("pending", ["notifications"])

    last = ERASING_SERVICES[-1]
    handle(runtime, report(request, last, **answers[last]))
    handle(runtime, report(request, last, **answers[last]))
    [summary] = outbox_events(runtime, "account.deactivated", account_id)
    assert summary["data"]["erased"] == [
        {"service": "notifications", "category": "contacts", "count": 2},
        {"service": "orders", "category": "account", "count": 1},
    ]
    assert summary["data"]["retained"] == [invoices, evidence]
    assert summary["personal"] == request.personal  # the address the summary goes to
    [done] = client.get(f"/v1/staff/deactivation-requests/{account_id}", headers=auth).get_json()[
        "items"
    ]
    assert (done["status"], done["waiting_for"], len(done["reports"])) == ("done", [], 4)
    table = tables.deactivation_requests
    with runtime.engine.connect() as conn:
        row = conn.execute(select(table).where(table.c.account_id == account_id)).one()
    assert (row.email, row.first_name) == (None, None)  # forgotten once the summary is sent


def test_a_request_a_service_has_not_answered_within_the_hour_is_listed_late(runtime):
    from datetime import UTC, datetime, timedelta

    late = fresh_example("account.deactivation_requested")
    late.data = {**late.data, "requested_at": (datetime.now(UTC) - timedelta(hours=2)).isoformat()}
    fresh = fresh_example("account.deactivation_requested")
    fresh.data = {**fresh.data, "requested_at": datetime.now(UTC).isoformat()}
    for event in (late, fresh):
        handle(runtime, event)
    handle(runtime, report(late, "orders"))
    client, auth = staff_client(runtime)
    items = client.get("/v1/staff/deactivation-requests/late", headers=auth).get_json()["items"]
    mine = [
        i for i in items if i["account_id"] in (late.data["account_id"], fresh.data["account_id"])
    ]
    assert [(i["event_id"], i["waiting_for"]) for i in mine] == [
        (late.id, ["notifications", "payments", "supplier-gateway"])
    ]
