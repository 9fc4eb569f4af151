"""Customer support in the console, against the five services served over HTTP: the failures
page's chart of failures per hour (counted by the services' databases), a support record added
from an order's story (kept by orders, shown in the story), a GDPR request opened on behalf of a
customer (gdpr starts it; channel and verification recorded), and the admins' search of orders by
the customer's e-mail address (support refused; each search in the audit log, the address only
as its fingerprint)."""

from __future__ import annotations

import hashlib
import re
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_console_kit import AUDIT_KEY, make_console_stack, park, signed_in_client
from trust_kit import order_body

from coc_console.domain.support import email_fingerprint, hourly_chart
from coc_console.service_layer import audit


@pytest.fixture(scope="module")
def cs(settings_factory, tmp_path_factory):
    made = make_console_stack(settings_factory, tmp_path_factory.mktemp("console-support"))
    yield made
    made.dispose()


def text(answer) -> str:
    return answer.get_data(as_text=True)


def chart_total(html: str) -> int:
    return int(re.search(r"last 24 hours \(UTC\), all services: (\d+)", html).group(1))


def test_the_hourly_chart_adds_the_services_hours_and_scales_to_the_busiest():
    bars = hourly_chart(
        {
            "orders": [{"hour": "2026-12-05T10:00:00+00:00", "count": 1}],
            "payments": [
                {"hour": "2026-12-05T09:00:00+00:00", "count": 0},
                {"hour": "2026-12-05T10:00:00+00:00", "count": 3},
            ],
        }
    )
    assert [(b.hour[11:13], b.count, b.height) for b in bars] == [("09", 0, 0), ("10", 4, 100)]


def test_the_failures_page_charts_failures_per_hour_counted_by_the_services(cs):
    client, _name, _csrf = signed_in_client(cs, "support")
    before = text(client.get("/failures"))
    assert 'id="failures-per-hour"' in before and "<svg" in before and "<script" not in before
    error = f"ValueError{uuid.uuid4().hex[:6]}"
    payments = cs.stack.runtimes["payments"]
    for _ in range(2):
        park(payments, "payments", "payment.confirmed", error, cs.stack.order_id)
    after = text(client.get("/failures"))
    assert chart_total(after) == chart_total(before) + 2
    (row,) = [r for r in after.split("<tr>") if f"<code>{error}</code>" in r]
    assert '<td class="num">2</td>' in row
    group = client.get(
        "/failures/payments",
        query_string={"event_type": "payment.confirmed", "error_type": error},
    )
    assert group.status_code == 200 and text(group).count("the handler failed") == 2
    # the services' summary route is staff-only
    summary = cs.stack.client("payments").get("/v1/staff/parked-summary")
    assert summary.status_code == 401


def test_a_support_record_from_the_story_is_kept_by_orders_and_shown(cs):
    client, name, csrf = signed_in_client(cs, "support")
    order_id = cs.stack.order_id
    blank = client.post(
        f"/orders/{order_id}/support-records", data={"csrf": csrf, "channel": "phone"}
    )
    assert blank.status_code == 422 and 'id="record-errors"' in text(blank)
    forged = client.post(
        f"/orders/{order_id}/support-records",
        data={"csrf": "forged", "channel": "phone", "summary": "x"},
    )
    assert forged.status_code == 403
    added = client.post(
        f"/orders/{order_id}/support-records",
        data={"csrf": csrf, "channel": "phone", "summary": "asked for the tracking number"},
    )
    assert added.status_code == 302, text(added)
    story = text(client.get(added.headers["Location"]))
    assert "support (phone)" in story and f"{name}: asked for the tracking number" in story
    kept = cs.stack.client("orders").get(
        f"/v1/staff/support-records?order_id={order_id}", headers=cs.stack.staff
    )
    assert [(r["staff"], r["channel"]) for r in kept.get_json()["items"]] == [(name, "phone")]
    (entry,) = audit.search(cs.console, staff_name=name, action="support_record")
    assert entry["target"] == order_id


def test_a_gdpr_request_on_behalf_of_the_customer_is_opened_at_gdpr_and_recorded(cs):
    client, name, csrf = signed_in_client(cs, "support")
    order_id = cs.stack.order_id
    form = {
        "csrf": csrf,
        "kind": "export",
        "channel": "email",
        "verification": "wrote from the order's address; named the order number",
        "verified_by": "lea",
    }
    missing = client.post(f"/orders/{order_id}/gdpr-requests", data={**form, "verification": ""})
    assert missing.status_code == 422 and 'id="gdpr-errors"' in text(missing)
    # the link goes to the address on file: support may not give another (gdpr refuses it)
    elsewhere = {**form, "email": "customer.writes@example.org", "address_reason": "asked to"}
    refused = client.post(f"/orders/{order_id}/gdpr-requests", data=elsewhere)
    assert refused.status_code == 422 and 'id="gdpr-errors"' in text(refused)
    assert "only an admin" in text(refused)
    opened = client.post(f"/orders/{order_id}/gdpr-requests", data=form)
    assert opened.status_code == 302, text(opened)
    assert "export request" in text(client.get(opened.headers["Location"]))
    exports = cs.stack.client("gdpr").get(
        f"/v1/staff/export-requests/{cs.stack.account_id}", headers=cs.stack.staff
    )
    assert len(exports.get_json()["items"]) == 1
    (entry,) = audit.search(cs.console, staff_name=name, action="gdpr_export")
    assert entry["target"] == order_id and entry["reason"] is None
    assert (entry["details"]["channel"], entry["details"]["verified_by"]) == ("email", "lea")
    # how the person was verified (free text, maybe personal) stays in gdpr's request row only
    assert "named the order number" not in str(entry)


def test_admins_search_orders_by_email_recorded_support_refused(cs):
    email = f"Search.{uuid.uuid4().hex[:8]}@example.org"
    body = order_body()
    body["customer"] = {**body["customer"], "email": email}
    placed = cs.stack.client("orders").post("/v1/orders", json=body)
    assert placed.status_code == 201, placed.get_json()
    number = (
        cs.stack.client("orders")
        .get(f"/v1/staff/orders/{placed.get_json()['id']}", headers=cs.stack.staff)
        .get_json()["number"]
    )
    support, support_name, support_csrf = signed_in_client(cs, "support")
    refused = support.post("/orders/by-email", data={"csrf": support_csrf, "email": email})
    assert refused.status_code == 403 and number not in text(refused)
    assert audit.search(cs.console, staff_name=support_name, action="search_by_email") == []
    admin, admin_name, csrf = signed_in_client(cs, "admin")
    form = admin.get("/orders/by-email")
    assert form.status_code == 200 and 'method="post"' in text(form)
    # a POST, CSRF-checked: the address is in no URL
    forged = admin.post("/orders/by-email", data={"csrf": "x" + csrf, "email": email})
    assert forged.status_code == 403
    assert audit.search(cs.console, staff_name=admin_name, action="search_by_email") == []
    found = admin.post("/orders/by-email", data={"csrf": csrf, "email": email.upper()})
    assert found.status_code == 200 and number in text(found)
    (entry,) = audit.search(cs.console, staff_name=admin_name, action="search_by_email")
    assert entry["details"] == {
        "email_hmac": email_fingerprint(email, AUDIT_KEY),
        "found": [number],
    }
    # keyed: a list of candidate addresses hashed without the secret matches nothing
    assert hashlib.sha256(email.lower().encode()).hexdigest() not in str(entry)
    assert email_fingerprint(email, "another-secret-of-32-characters-at-least") not in str(entry)
    assert email.lower() not in str(entry).lower()
    bad = admin.post("/orders/by-email", data={"csrf": csrf, "email": "not-an-address"})
    assert bad.status_code == 422
    # the orders service no longer reads an address from a query string
    orders = cs.stack.client("orders")
    assert orders.get(f"/v1/staff/orders?email={email}", headers=cs.stack.staff).status_code != 200


def test_the_parked_summary_counts_on_sqlite_too(tmp_path):
    """make run's embedded mode keeps the parked messages in SQLite."""
    from coc_orders.service import definition
    from coc_shared.config import Settings
    from coc_shared.envelope import utcnow
    from coc_shared.parked_summary import group_messages, groups, per_hour
    from coc_shared.service import Runtime

    url = f"sqlite:///{tmp_path}/main.db"
    rt = Runtime(
        definition,
        Settings.from_env(
            "orders", database_url=url, parking_database_url=url, rabbitmq_url="memory://"
        ),
    )
    try:
        rt.migrate()
        for error in ("KeyError", "KeyError", "TypeError"):
            park(rt, "orders", "payment.confirmed", error, str(uuid.uuid4()))
        engine = rt.parking_engine
        assert [(g["error_type"], g["count"]) for g in groups(engine, "orders")] == [
            ("KeyError", 2),
            ("TypeError", 1),
        ]
        hours = per_hour(engine, "orders", utcnow())
        assert len(hours) == 24 and sum(h["count"] for h in hours) == 3
        assert len(group_messages(engine, "orders", "payment.confirmed", "KeyError")) == 2
    finally:
        rt.dispose()


def test_without_its_audit_key_the_console_refuses_the_search_by_email(settings_factory, cs):
    from test_console_kit import log_in, new_staff

    from coc_console.config import url_variable
    from coc_console.service import definition
    from coc_shared.service import Runtime
    from coc_shared.testing import STAFF_KEYS

    extra = {url_variable(s): u for s, u in cs.urls.items()}
    keyless = Runtime(
        definition,
        settings_factory("console", extra={**extra, "STAFF_TOKEN_PRIVATE_KEY": STAFF_KEYS[0]}),
    )
    try:
        client = keyless.create_app().test_client()
        name, secret = new_staff(keyless, "admin")
        assert log_in(client, name, secret).status_code == 302
        csrf = re.search(r'name="csrf" value="([^"]*)"', text(client.get("/failures"))).group(1)
        refused = client.post("/orders/by-email", data={"csrf": csrf, "email": "a@example.org"})
        assert refused.status_code == 503 and "CONSOLE_AUDIT_KEY" in text(refused)
        assert audit.search(keyless, staff_name=name, action="search_by_email") == []
    finally:
        keyless.dispose()


def test_make_run_gives_the_console_an_audit_key_kept_between_runs(tmp_path):
    from coc_console.config import ConsoleConfig
    from coc_console.service import development_defaults

    first = development_defaults(str(tmp_path))["CONSOLE_AUDIT_KEY"]
    assert development_defaults(str(tmp_path))["CONSOLE_AUDIT_KEY"] == first
    assert ConsoleConfig.from_env({"CONSOLE_AUDIT_KEY": first}).audit_key == first
    assert (tmp_path / "console-audit.key").stat().st_mode & 0o077 == 0
