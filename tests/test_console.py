"""The support console (services/console) against the five services served over HTTP on this
run's database: log-in with a password and a TOTP code, CSRF and role refusals, the idle
timeout, failed messages grouped, a message masked then revealed by an admin (recorded), discard
with a reason through the service's staff API, the audit log, one order's story."""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import select, update

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_console_kit import (
    CUSTOMER_EMAIL,
    PASSWORD,
    REPLAYED_TYPE,
    consuming,
    form_csrf,
    log_in,
    make_console_stack,
    new_staff,
    park_replay_group,
    signed_in_client,
)

from coc_console.adapters import tables
from coc_console.domain.model import MASK, group_parked, masked_message
from coc_console.entrypoints.commands import create_admin
from coc_console.service_layer import audit
from coc_shared.envelope import utcnow
from coc_shared.tables import parked_messages, support_actions
from coc_shared.testing import wait_until


@pytest.fixture(scope="module")
def cs(settings_factory, tmp_path_factory):
    made = make_console_stack(settings_factory, tmp_path_factory.mktemp("console"))
    yield made
    made.dispose()


def text(answer) -> str:
    return answer.get_data(as_text=True)


# ------------------------------------------------------------------------------------ domain
def test_groups_count_and_span_per_service_type_and_error():
    items = {
        "payments": [
            {
                "id": 1,
                "event_type": "a",
                "error_type": "E",
                "first_failed_at": "2026-01-02",
                "last_failed_at": "2026-01-03",
            },
            {
                "id": 2,
                "event_type": "a",
                "error_type": "E",
                "first_failed_at": "2026-01-01",
                "last_failed_at": "2026-01-05",
            },
            {
                "id": 3,
                "event_type": "a",
                "error_type": "F",
                "first_failed_at": "2026-01-01",
                "last_failed_at": "2026-01-01",
            },
        ],
        "orders": [
            {
                "id": 4,
                "event_type": "a",
                "error_type": "E",
                "first_failed_at": "x",
                "last_failed_at": "x",
            }
        ],
    }
    groups = group_parked(items)
    assert [(g.service, g.error_type, g.count) for g in groups] == [
        ("payments", "E", 2),
        ("orders", "E", 1),
        ("payments", "F", 1),
    ]
    assert (groups[0].first_seen, groups[0].last_seen, groups[0].ids) == (
        "2026-01-01",
        "2026-01-05",
        (1, 2),
    )


def test_the_personal_part_is_masked_keys_kept():
    shown = masked_message(
        {
            "id": 1,
            "body": {"data": {"x": 1}, "personal": {"email": "a@b.c", "address": {"city": "P"}}},
        }
    )
    assert shown["body"]["data"] == {"x": 1}
    assert shown["body"]["personal"] == {"email": MASK, "address": {"city": MASK}}
    assert masked_message({"id": 1, "body_raw": "emilie@x"})["body_raw"] == MASK


# ------------------------------------------------------------------------------------ log-in
def test_log_in_needs_the_password_and_a_fresh_totp_code(cs):
    name, secret = new_staff(cs.console, "support")
    client = cs.app.test_client()
    assert client.get("/failures").status_code == 302  # no session: to the log-in page
    wrong = log_in(
        client, name, secret, code="000000" if pyotp.TOTP(secret).now() != "000000" else "111111"
    )
    assert wrong.status_code == 401 and "wrong name, password or code" in text(wrong)
    code = pyotp.TOTP(secret).now()
    good = log_in(client, name, secret, code=code)
    assert good.status_code == 302 and good.headers["Location"].endswith("/failures")
    cookie = good.headers["Set-Cookie"]
    assert "coc_console=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # plain HTTP here; see the TLS test
    page = client.get("/failures")
    assert page.status_code == 200 and name in text(page)
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    # the same code a second time (another browser) opens nothing
    replay = log_in(cs.app.test_client(), name, secret, code=code)
    assert replay.status_code == 401
    actions = [e["action"] for e in audit.search(cs.console, staff_name=name)]
    assert actions.count("login") == 1 and actions.count("login_failed") == 2


def test_ten_failures_in_a_row_lock_the_account(cs):
    name, secret = new_staff(cs.console, "support")
    client = cs.app.test_client()
    for _ in range(10):
        page = client.get("/login")
        wrong = client.post(
            "/login",
            data={
                "csrf": form_csrf(text(page)),
                "name": name,
                "password": "not it at all",
                "code": pyotp.TOTP(secret).now(),
            },
        )
        assert wrong.status_code == 401
    assert log_in(client, name, secret).status_code == 401  # the right password, locked
    with cs.console.engine.begin() as conn:
        conn.execute(
            update(tables.staff_accounts)
            .where(tables.staff_accounts.c.name == name)
            .values(locked_until=utcnow() - timedelta(seconds=1))
        )
    assert log_in(client, name, secret).status_code == 302


def test_the_session_cookie_is_secure_over_tls(cs):
    name, secret = new_staff(cs.console, "support")
    client = cs.app.test_client()
    page = client.get("/login", base_url="https://console.test")
    answer = client.post(
        "/login",
        base_url="https://console.test",
        data={
            "csrf": form_csrf(text(page)),
            "name": name,
            "password": "correct horse battery staple",
            "code": pyotp.TOTP(secret).now(),
        },
    )
    assert answer.status_code == 302
    assert "Secure" in answer.headers["Set-Cookie"]


def test_behind_a_proxy_ending_tls_the_cookie_is_secure(settings_factory, cs):
    from coc_console.service import definition
    from coc_shared.service import Runtime

    rt = Runtime(definition, settings_factory("console", extra={"CONSOLE_PROXY_COUNT": "1"}))
    try:
        name, secret = new_staff(rt, "support")
        client = rt.create_app().test_client()
        proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
        page = client.get("/login", headers=proxied)
        answer = client.post(
            "/login",
            headers=proxied,
            data={
                "csrf": form_csrf(text(page)),
                "name": name,
                "password": PASSWORD,
                "code": pyotp.TOTP(secret).now(),
            },
        )
        assert answer.status_code == 302 and "Secure" in answer.headers["Set-Cookie"]
    finally:
        rt.dispose()


def test_missing_login_fields_are_422_with_field_messages(cs):
    client = cs.app.test_client()
    page = client.get("/login")
    answer = client.post("/login", data={"csrf": form_csrf(text(page)), "name": "x"})
    assert answer.status_code == 422 and "required" in text(answer)


def test_a_form_without_the_right_csrf_token_is_refused(cs):
    client, _name, csrf = signed_in_client(cs, "admin")
    service, parked_id = cs.parked["payments-0"]
    for token in ("", csrf[:-1] + ("A" if csrf[-1] != "A" else "B")):
        answer = client.post(
            f"/failures/{service}/{parked_id}/discard", data={"csrf": token, "reason": "x"}
        )
        assert answer.status_code == 403 and "CSRF" in text(answer)
    still = cs.stack.client(service).get(
        f"/v1/staff/parked?order_id={cs.stack.order_id}", headers=cs.stack.staff
    )
    assert parked_id in [i["id"] for i in still.get_json()["items"]]
    # the log-in form too: no double-submit cookie, no log-in
    fresh = cs.app.test_client()
    refused = fresh.post(
        "/login", data={"csrf": "forged", "name": "a", "password": "b", "code": "1"}
    )
    assert refused.status_code == 403


def test_an_idle_session_ends(cs):
    client, name, _csrf = signed_in_client(cs, "support")
    assert client.get("/audit").status_code == 200
    with cs.console.engine.begin() as conn:
        conn.execute(
            update(tables.sessions)
            .where(
                tables.sessions.c.staff_id.in_(
                    select(tables.staff_accounts.c.id).where(tables.staff_accounts.c.name == name)
                )
            )
            .values(last_seen_at=utcnow() - timedelta(minutes=16))
        )
    answer = client.get("/audit")
    assert answer.status_code == 302 and "expired=1" in answer.headers["Location"]
    assert "Log in again" in text(client.get(answer.headers["Location"]))
    assert client.get("/audit").status_code == 302  # the session is gone, not only refused once


# ------------------------------------------------------------------------------ failed messages
def test_failed_messages_are_grouped_by_service_type_and_error(cs):
    client, _name, _csrf = signed_in_client(cs, "support")
    page = text(client.get("/failures"))
    (row,) = [r for r in page.split("<tr>") if f"<code>{cs.error_type}</code>" in r]
    assert "payments" in row and "order.placed" in row and '<td class="num">3</td>' in row
    group = client.get(
        "/failures/payments",
        query_string={"event_type": "order.placed", "error_type": cs.error_type},
    )
    assert group.status_code == 200
    ids = {cs.parked[f"payments-{n}"][1] for n in range(3)}
    assert all(f">{i}</a>" in text(group) for i in ids)
    assert client.get("/failures/nowhere", query_string={"event_type": "x"}).status_code == 422


def test_a_service_that_does_not_answer_is_named_not_a_500(settings_factory, tmp_path):
    from coc_console.config import url_variable
    from coc_console.service import definition
    from coc_shared.service import Runtime
    from coc_shared.testing import STAFF_KEYS

    extra = {
        url_variable(s): "http://127.0.0.1:9"
        for s in ("orders", "payments", "supplier-gateway", "notifications", "gdpr")
    }
    rt = Runtime(
        definition,
        settings_factory(
            "console",
            extra={**extra, "STAFF_TOKEN_PRIVATE_KEY": STAFF_KEYS[0], "CONSOLE_HTTP_TIMEOUT": "1"},
        ),
    )
    rt.migrate()
    try:
        name, secret = new_staff(rt, "support")
        client = rt.create_app().test_client()
        assert log_in(client, name, secret).status_code == 302
        page = client.get("/failures")
        assert page.status_code == 200 and "payments does not answer" in text(page)
        assert client.get("/orders", query_string={"q": "COC-2026-000001"}).status_code == 503
        # the replay pages too: a page naming the service, not a 500
        group = {"csrf": form_csrf(text(page)), "event_type": "x.y", "error_type": "E"}
        dry = client.post("/failures/payments/dry-run", data=group)
        assert dry.status_code == 503 and "payments does not answer" in text(dry)
        started = client.post("/failures/payments/replays", data={**group, "reason": "retry"})
        assert started.status_code == 503 and "payments does not answer" in text(started)
        report = client.get(f"/failures/payments/replays/{'0' * 32}")
        assert report.status_code == 503 and "payments does not answer" in text(report)
    finally:
        rt.dispose()


def test_support_sees_the_message_masked_and_may_not_reveal(cs):
    client, _name, csrf = signed_in_client(cs, "support")
    service, parked_id = cs.parked["payments-1"]
    page = client.get(f"/failures/{service}/{parked_id}")
    assert page.status_code == 200
    shown = text(page)
    assert CUSTOMER_EMAIL not in shown, shown[shown.find(CUSTOMER_EMAIL) - 400 :][:600]
    assert "personal data masked" in shown and MASK in shown
    assert "needs the admin role" in text(page)
    refused = client.post(
        f"/failures/{service}/{parked_id}/reveal", data={"csrf": csrf, "reason": "customer called"}
    )
    assert refused.status_code == 403 and CUSTOMER_EMAIL not in text(refused)


def test_an_admin_reveals_with_a_reason_recorded(cs):
    client, name, csrf = signed_in_client(cs, "admin")
    service, parked_id = cs.parked["payments-1"]
    blank = client.post(
        f"/failures/{service}/{parked_id}/reveal", data={"csrf": csrf, "reason": "  "}
    )
    assert blank.status_code == 422 and "a reason is required" in text(blank)
    assert CUSTOMER_EMAIL not in text(blank)
    shown = client.post(
        f"/failures/{service}/{parked_id}/reveal",
        data={"csrf": csrf, "reason": "customer asked which address we hold"},
    )
    assert shown.status_code == 200 and CUSTOMER_EMAIL in text(shown)
    (entry,) = audit.search(cs.console, staff_name=name, action="reveal")
    assert entry["target"] == f"{service}:parked:{parked_id}"
    assert entry["reason"] == "customer asked which address we hold"
    # the service recorded the read of the body by the same person, through its staff API
    with cs.stack.runtimes[service].parking_engine.connect() as conn:
        reads = (
            conn.execute(
                select(support_actions.c.actor).where(
                    support_actions.c.action == "read_parked",
                    support_actions.c.target == str(parked_id),
                )
            )
            .scalars()
            .all()
        )
    assert name in reads
    log = client.get("/audit", query_string={"action": "reveal", "staff_name": name})
    assert "customer asked which address we hold" in text(log)


def test_discard_with_a_reason_through_the_service(cs):
    client, name, csrf = signed_in_client(cs, "support")
    service, parked_id = cs.parked["notifications"]
    blank = client.post(
        f"/failures/{service}/{parked_id}/discard", data={"csrf": csrf, "reason": ""}
    )
    assert blank.status_code == 422 and "a reason is required" in text(blank)
    done = client.post(
        f"/failures/{service}/{parked_id}/discard",
        data={"csrf": csrf, "reason": "test order, mailed by hand"},
    )
    assert done.status_code == 302
    shown = cs.stack.client(service).get(f"/v1/staff/parked/{parked_id}", headers=cs.stack.staff)
    assert shown.get_json()["status"] == "discarded"
    assert shown.get_json()["resolved_by"] == name
    again = client.post(
        f"/failures/{service}/{parked_id}/discard", data={"csrf": csrf, "reason": "twice"}
    )
    assert again.status_code == 409
    (entry,) = audit.search(cs.console, staff_name=name, action="discard")
    assert entry["reason"] == "test order, mailed by hand"


# ------------------------------------------------------------------------------- order story
def test_an_orders_story_found_by_number(cs):
    client, _name, _csrf = signed_in_client(cs, "support")
    page = client.get("/orders", query_string={"q": cs.order_number})
    assert page.status_code == 200, text(page)
    body = text(page)
    assert cs.stack.order_id in body and 'id="timeline"' in body
    assert "order.placed" in body  # orders' own record of the order's events
    assert "parked order.placed" in body  # the order's parked messages, from payments
    # the console's own actions on its parked messages (the discard test's, before this one)
    assert "kind-support" in body and "test order, mailed by hand" in body
    assert "no supplier request" in body and "no payment due" in body or "payments" in body
    by_id = client.get("/orders", query_string={"q": cs.stack.order_id})
    assert by_id.status_code == 200 and cs.order_number in text(by_id)
    assert client.get("/orders", query_string={"q": "COC-1999-999999"}).status_code == 404
    bad = client.get("/orders", query_string={"q": "a/b"})
    assert bad.status_code == 422 and "order number" in text(bad)


# ---------------------------------------------------------------------------- command line
def test_create_admin_prints_the_totp_secret_and_uri(cs, capsys):
    assert create_admin(cs.console, ["--name", "boss-cli-test"]) == 0
    out = capsys.readouterr().out
    assert "otpauth://totp/" in out and "TOTP secret:" in out and "password:" in out
    assert create_admin(cs.console, ["--name", "boss-cli-test"]) == 2  # exists


# ------------------------------------------------------------------------------- safe replay
def replay_report_page(client, location: str) -> str:
    """The run's report page once the run is over (it reloads itself while running)."""

    def finished():
        shown = text(client.get(location))
        return shown if 'id="run-status"' in shown and "Running:" not in shown else None

    return wait_until(finished, timeout=90, interval=0.2, message="the replay's end")


def parked_statuses(cs, ids) -> list[str]:
    with cs.stack.runtimes["orders"].parking_engine.connect() as conn:
        found = dict(
            conn.execute(
                select(parked_messages.c.id, parked_messages.c.status).where(
                    parked_messages.c.id.in_(ids)
                )
            ).all()
        )
    return [found[i] for i in ids]


def test_a_group_is_dried_then_replayed_and_the_replay_stops_at_a_new_failure(cs):
    client, name, csrf = signed_in_client(cs, "support")
    error_type, parked = park_replay_group(cs, 12, known_order=False)
    group = {"event_type": REPLAYED_TYPE, "error_type": error_type}
    page = text(client.get("/failures/orders", query_string=group))
    assert 'id="dry-run-form"' in page and 'id="replay-form"' in page
    dry = client.post("/failures/orders/dry-run", data={"csrf": csrf, **group})
    assert dry.status_code == 200, text(dry)
    assert "12 would fail again" in text(dry) and "0 would succeed" in text(dry)
    assert "PermanentError" in text(dry) and "unknown order" in text(dry)
    ids = [p for p, _ in parked]
    assert parked_statuses(cs, ids) == ["parked"] * 12  # the dry run kept nothing
    no_reason = client.post("/failures/orders/replays", data={"csrf": csrf, **group})
    assert no_reason.status_code == 422 and "a reason is required" in text(no_reason)
    forged = client.post(
        "/failures/orders/replays", data={"csrf": "x" + csrf, "reason": "go", **group}
    )
    assert forged.status_code == 403
    assert parked_statuses(cs, ids) == ["parked"] * 12
    with consuming(cs.stack.runtimes["orders"]):
        started = client.post(
            "/failures/orders/replays",
            data={"csrf": csrf, "reason": "supplier fixed their ids", **group},
        )
        assert started.status_code == 302, text(started)
        report = replay_report_page(client, started.headers["Location"])
    assert "stopped (failed again)" in report and "1 of 12" in report
    assert 'id="failed-again"' in report and "unknown order" in report
    assert parked_statuses(cs, ids) == ["replayed"] + ["parked"] * 11
    run = started.headers["Location"].rsplit("/", 1)[1]
    entries = audit.search(cs.console, staff_name=name)
    assert {e["action"] for e in entries} >= {"dry_run", "replay", "replay_outcome"}
    (outcome,) = [e for e in entries if e["action"] == "replay_outcome"]
    assert outcome["target"] == f"orders:replay:{run}"
    assert outcome["details"]["status"] == "stopped" and outcome["details"]["replayed"] == 1
    (replay,) = [e for e in entries if e["action"] == "replay"]
    assert replay["reason"] == "supplier fixed their ids"


def test_a_group_whose_fix_works_is_replayed_in_full(cs):
    client, _name, csrf = signed_in_client(cs, "admin")
    error_type, parked = park_replay_group(cs, 15, known_order=True)
    group = {"event_type": REPLAYED_TYPE, "error_type": error_type}
    dry = client.post("/failures/orders/dry-run", data={"csrf": csrf, **group})
    assert "15 would succeed" in text(dry) and "0 would fail again" in text(dry)
    with consuming(cs.stack.runtimes["orders"]):
        started = client.post(
            "/failures/orders/replays", data={"csrf": csrf, "reason": "order restored", **group}
        )
        report = replay_report_page(client, started.headers["Location"])
    assert "completed" in report and "15 of 15 (15 handled)" in report
    assert parked_statuses(cs, [p for p, _ in parked]) == ["replayed"] * 15


def test_the_replay_pages_refuse_ordinary_failures_with_a_page_not_a_500(cs):
    client, _name, csrf = signed_in_client(cs, "support")
    group = {"csrf": csrf, "event_type": REPLAYED_TYPE, "error_type": "NoSuchError"}
    unknown = client.post("/failures/nowhere/dry-run", data=group)
    assert unknown.status_code == 422 and "one of orders" in text(unknown)
    unknown = client.post("/failures/nowhere/replays", data={**group, "reason": "retry"})
    assert unknown.status_code == 422 and "one of orders" in text(unknown)
    assert client.get(f"/failures/nowhere/replays/{'0' * 32}").status_code == 422
    # a group already emptied: orders answers 404, the console says so
    emptied = client.post("/failures/orders/replays", data={**group, "reason": "retry"})
    assert emptied.status_code == 404 and "no parked message in this group" in text(emptied)
    assert client.get(f"/failures/orders/replays/{'0' * 32}").status_code == 404


def test_a_replays_outcome_is_recorded_once_however_often_its_report_is_read(cs):
    client, _name, csrf = signed_in_client(cs, "admin")
    error_type, _parked = park_replay_group(cs, 2, known_order=True)
    group = {"event_type": REPLAYED_TYPE, "error_type": error_type}
    orders = cs.stack.client("orders")
    with consuming(cs.stack.runtimes["orders"]):
        started = client.post(
            "/failures/orders/replays", data={"csrf": csrf, "reason": "order restored", **group}
        )
        location = started.headers["Location"]
        run = location.rsplit("/", 1)[1]
        wait_until(
            lambda: orders.get(f"/v1/staff/parked/replays/{run}", headers=cs.stack.staff)
            .get_json()
            .get("status")
            == "completed",
            timeout=90,
            message="the replay's end",
        )
    # several staff read the finished report at the same moment, twice each: one outcome
    readers = [client] + [signed_in_client(cs, "support")[0] for _ in range(3)]
    with ThreadPoolExecutor(len(readers)) as pool:
        pages = list(pool.map(lambda c: [c.get(location) for _ in range(2)], readers))
    assert {p.status_code for read in pages for p in read} == {200}
    outcomes = audit.search(cs.console, action="replay_outcome", target=f"orders:replay:{run}")
    assert len(outcomes) == 1 and outcomes[0]["details"]["status"] == "completed"


def test_each_thread_calls_the_services_with_its_own_http_session():
    """requests.Session is not thread-safe: call_many's threads (and the server's) each use one."""
    from coc_console.adapters.services_client import StaffApiClient

    client = StaffApiClient({"orders": "http://127.0.0.1:9"}, None)
    seen: list = []
    threads = [threading.Thread(target=lambda: seen.append(client.http)) for _ in range(3)]
    for thread in threads:
        thread.start()
        thread.join()
    assert len({id(s) for s in seen}) == 3 and client.http is client.http
    assert all(client.http is not s for s in seen)
