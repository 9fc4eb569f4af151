"""A purge run applies the schedule's ends to the gdpr service's own tables too (on the real
PostgreSQL): deactivation requests done more than 3 years ago with their reports, records of
exports asked for more than 3 years ago with their contributions and downloads, and the consent
ledger's entries of a person whose last action is more than 3 years old; fresh rows are kept, the
run records gdpr's report, and a second run finds nothing. The run also tells orders the
inactivity cutoffs of accounts, from the schedule."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from coc_gdpr.adapters import tables
from coc_gdpr.service import definition
from coc_gdpr.service_layer.purges import start_purge_run
from coc_shared.envelope import utcnow

YEAR = timedelta(days=365)


@pytest.fixture
def runtime(runtime_factory):
    return runtime_factory(definition)


def gdpr_report(runtime, run_id: str) -> dict:
    t = tables.purge_reports
    with runtime.engine.connect() as conn:
        [purged] = conn.execute(
            select(t.c.purged).where(t.c.run_id == run_id, t.c.service == "gdpr")
        ).scalars()
    return {item["category"]: item["count"] for item in purged}


def add_request(conn, completed_ago: timedelta) -> str:
    event_id, done = str(uuid.uuid4()), utcnow() - completed_ago
    conn.execute(
        insert(tables.deactivation_requests).values(
            account_id=str(uuid.uuid4()),
            event_id=event_id,
            requested_at=done,
            due_by=done + timedelta(days=30),
            status="done",
            received_at=done,
            completed_at=done,
            summary_key_destroyed_at=done,
        )
    )
    conn.execute(
        insert(tables.erasure_reports).values(
            request_id=event_id, service="orders", erased=[], retained=[], reported_at=done
        )
    )
    return event_id


def add_export(conn, asked_ago: timedelta) -> str:
    request_id, asked = str(uuid.uuid4()), utcnow() - asked_ago
    conn.execute(
        insert(tables.data_exports).values(
            request_id=request_id,
            account_id=str(uuid.uuid4()),
            order_ids=[],
            subject=request_id,
            requested_at=asked,
            due_by=asked + timedelta(days=30),
            received_at=asked,
            status="expired",
        )
    )
    conn.execute(
        insert(tables.export_contributions).values(
            request_id=request_id, service="orders", categories=[], contributed_at=asked
        )
    )
    conn.execute(
        insert(tables.export_downloads).values(
            request_id=request_id, part="document", downloaded_at=asked
        )
    )
    return request_id


def add_consent(conn, address_sha256: str, ago: timedelta) -> None:
    at = utcnow() - ago
    conn.execute(
        insert(tables.marketing_consents).values(
            event_id=str(uuid.uuid4()),
            address_sha256=address_sha256,
            purpose="marketing_email",
            status="given",
            changed_at=at,
            source="order_form",
            recorded_at=at,
        )
    )


def add_disclosure(conn, ago: timedelta) -> str:
    disclosure_id, at = str(uuid.uuid4()), utcnow() - ago
    conn.execute(
        insert(tables.disclosures).values(
            disclosure_id=disclosure_id,
            authority="Tribunal judiciaire de Paris",
            legal_basis="réquisition judiciaire",
            reference=f"RJ-{disclosure_id[:8]}",
            categories=["invoices"],
            disclosed_on=at.date(),
            staff="root",
            staff_role="admin",
            recorded_at=at,
            note="",
        )
    )
    return disclosure_id


def rows(runtime, table, column, values) -> set:
    with runtime.engine.connect() as conn:
        return set(conn.execute(select(column).where(column.in_(values))).scalars())


def test_a_purge_run_applies_the_schedule_to_gdpr_s_own_tables_and_twice_does_nothing(runtime):
    gone_person, kept_person = uuid.uuid4().hex * 2, uuid.uuid4().hex * 2
    with runtime.engine.begin() as conn:
        old_request, fresh_request = (
            add_request(conn, 4 * YEAR),
            add_request(conn, timedelta(days=10)),
        )
        old_export, fresh_export = add_export(conn, 4 * YEAR), add_export(conn, timedelta(days=10))
        add_consent(conn, gone_person, 4 * YEAR)
        add_consent(conn, gone_person, 3 * YEAR + timedelta(days=10))
        add_consent(conn, kept_person, 5 * YEAR)  # the same person acted again since: kept
        add_consent(conn, kept_person, timedelta(days=10))
        old_disclosure = add_disclosure(conn, 5 * YEAR + timedelta(days=30))
        fresh_disclosure = add_disclosure(conn, 4 * YEAR)

    run_id = start_purge_run(runtime, "command")
    purged = gdpr_report(runtime, run_id)
    assert purged["deactivation_requests"] >= 1
    assert purged["export_records"] >= 1
    assert purged["marketing_contact"] >= 2
    assert purged["disclosures"] >= 1

    r, e = tables.deactivation_requests, tables.erasure_reports
    assert rows(runtime, r, r.c.event_id, [old_request, fresh_request]) == {fresh_request}
    assert rows(runtime, e, e.c.request_id, [old_request, fresh_request]) == {fresh_request}
    x = tables.data_exports
    c, d = tables.export_contributions, tables.export_downloads
    for table, column in ((x, x.c.request_id), (c, c.c.request_id), (d, d.c.request_id)):
        assert rows(runtime, table, column, [old_export, fresh_export]) == {fresh_export}
    s = tables.disclosures
    kept = rows(runtime, s, s.c.disclosure_id, [old_disclosure, fresh_disclosure])
    assert kept == {fresh_disclosure}  # the append-only table let only the old one go
    m = tables.marketing_consents
    with runtime.engine.connect() as conn:
        left = conn.execute(
            select(m.c.address_sha256).where(m.c.address_sha256.in_([gone_person, kept_person]))
        ).scalars()
        assert sorted(left) == [kept_person, kept_person]

    # the run also tells orders the accounts' inactivity cutoffs, from the schedule
    o = tables.outbox
    with runtime.engine.connect() as conn:
        [body] = conn.execute(
            select(o.c.body).where(
                o.c.event_type == "retention.purge_requested", o.c.subject == run_id
            )
        ).scalars()
    data = json.loads(bytes(body))["data"]
    today = utcnow().date()
    inactivity = data["inactivity"]
    assert inactivity["category"] == "account"
    assert inactivity["deletion_date"] == (today + timedelta(days=30)).isoformat()
    assert inactivity["deactivate_before"] == data["cutoffs"]["account"]

    again = gdpr_report(runtime, start_purge_run(runtime, "command"))
    for category in ("deactivation_requests", "export_records", "marketing_contact", "disclosures"):
        assert again[category] == 0, category
