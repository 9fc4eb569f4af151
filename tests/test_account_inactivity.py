"""Accounts without activity, across the five services on the real RabbitMQ and PostgreSQL: a purge
run (gdpr, from the schedule's account category: two years, warned 30 days before) has orders warn
the owner of an account nearly two years without activity, once (notifications records the
mail); deactivate, through the customer's own saga with the reason "inactivity", an account two
years without activity whose owner was warned at least 30 days before; warn first one never
warned; and leave alone an account whose owner logged in after the warning. The last-activity
dates are crafted in orders' table."""

from __future__ import annotations

import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trust_kit import running_services

from coc_gdpr.adapters import tables as gdpr_tables
from coc_gdpr.service_layer.purges import start_purge_run
from coc_notifications.adapters import tables as notifications_tables
from coc_orders.adapters import tables as orders_tables
from coc_shared.envelope import utcnow
from coc_shared.keystore import own_key_subject
from coc_shared.testing import wait_until

PASSWORD = "a long enough pass phrase"
YEAR = timedelta(days=365)


@pytest.fixture
def services(settings_factory, tmp_path):
    with running_services(settings_factory, tmp_path) as runtimes:
        yield runtimes


def sign_up(client, first_name: str) -> tuple[str, str]:
    email = f"inactive.{uuid.uuid4().hex[:10]}@example.org"
    body = {
        "email": email,
        "password": PASSWORD,
        "profile": {"customer": {"first_name": first_name}},
    }
    assert client.post("/v1/accounts", json=body).status_code in (201, 202)
    login = client.post("/v1/auth/token", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.get_json()
    bearer = {"Authorization": f"Bearer {login.get_json()['access_token']}"}
    return client.get("/v1/accounts/me", headers=bearer).get_json()["id"], email


def craft(orders, account_id: str, last_activity_at, warned_at=None) -> None:
    a = orders_tables.accounts
    with orders.engine.begin() as conn:
        conn.execute(
            update(a)
            .where(a.c.id == account_id)
            .values(last_activity_at=last_activity_at, inactivity_warned_at=warned_at)
        )


def account(orders, account_id: str):
    a = orders_tables.accounts
    with orders.engine.connect() as conn:
        return conn.execute(select(a).where(a.c.id == account_id)).first()


def warning_mails(notifications, account_id: str) -> list:
    m = notifications_tables.mails
    with notifications.engine.connect() as conn:
        return conn.execute(
            select(m).where(
                m.c.template == "inactivity_warning", m.c.recipient_key == f"account:{account_id}"
            )
        ).all()


def request_row(gdpr, account_id: str):
    t = gdpr_tables.deactivation_requests
    with gdpr.engine.connect() as conn:
        return conn.execute(select(t).where(t.c.account_id == account_id)).first()


def run_purge(services) -> dict:
    gdpr = services["gdpr"]
    run_id = start_purge_run(gdpr, "command")
    runs, reports = gdpr_tables.purge_runs, gdpr_tables.purge_reports

    def completed():
        with gdpr.engine.connect() as conn:
            return conn.execute(select(runs.c.completed_at).where(runs.c.run_id == run_id)).scalar()

    wait_until(completed, timeout=60, message="every service reported on the run")
    with gdpr.engine.connect() as conn:
        rows = conn.execute(select(reports).where(reports.c.run_id == run_id)).all()
    return {(row.service, item["category"]): item["count"] for row in rows for item in row.purged}


def test_inactive_accounts_are_warned_once_then_deactivated_and_a_log_in_keeps_them(services):
    orders, notifications, gdpr = services["orders"], services["notifications"], services["gdpr"]
    client = orders.create_app().test_client()
    now = utcnow()
    nearly, _ = sign_up(client, "Nina")  # 2 years less 20 days: within the warning period
    never_warned, _ = sign_up(client, "Noé")  # 3 years, never warned: warned first
    warned, warned_email = sign_up(client, "Wanda")  # 2 years and 5 days, warned 31 days ago
    came_back, came_back_email = sign_up(client, "Côme")  # the same, but logs in again
    active, _ = sign_up(client, "Ada")  # just signed up
    craft(orders, nearly, now - 2 * YEAR + timedelta(days=20))
    craft(orders, never_warned, now - 3 * YEAR)
    for account_id in (warned, came_back):
        craft(orders, account_id, now - 2 * YEAR - timedelta(days=5), now - timedelta(days=31))
    login = client.post("/v1/auth/token", json={"email": came_back_email, "password": PASSWORD})
    assert login.status_code == 200

    counts = run_purge(services)
    assert counts[("orders", "account")] >= 1
    assert counts[("orders", "account_inactivity_warnings")] >= 2

    # warned: the two nearly (or long) inactive accounts, each once, with the date of deletion
    for account_id, name in ((nearly, "Nina"), (never_warned, "Noé")):
        row = account(orders, account_id)
        assert row.inactivity_warned_at is not None and row.deactivation_requested_at is None
        wait_until(
            lambda account_id=account_id: warning_mails(notifications, account_id),
            timeout=30,
            message="notifications recorded the warning mail",
        )
        [mail] = warning_mails(notifications, account_id)
        assert mail.to_name == name and mail.to_address.startswith("inactive.")
        assert mail.data["deletion_date"] == (now + timedelta(days=30)).date().isoformat()
    assert request_row(gdpr, never_warned) is None  # never warned: not deactivated yet

    # deactivated: warned 31 days ago, through the customer's own saga, the reason recorded
    wait_until(
        lambda: (row := request_row(gdpr, warned)) is not None and row.status == "done",
        timeout=60,
        message="every service erased the inactive account",
    )
    assert request_row(gdpr, warned).reason == "inactivity"
    assert account(orders, warned) is None  # erased
    m = notifications_tables.mails

    def summaries() -> list:
        with notifications.engine.connect() as conn:
            return conn.execute(
                select(m).where(
                    m.c.template == "account_deactivated", m.c.to_address == warned_email
                )
            ).all()

    # account.deactivated leaves gdpr as the request is done: notifications records it just after
    wait_until(summaries, timeout=30, message="the summary recorded for the inactive account")
    [summary] = summaries()
    assert summary.data["reason"] == "inactivity"
    assert (
        client.post(
            "/v1/auth/token", json={"email": warned_email, "password": PASSWORD}
        ).status_code
        == 401
    )

    # the log-in after the warning cancelled it: neither deactivated nor warned again
    row = account(orders, came_back)
    assert row.deactivation_requested_at is None and row.last_activity_at > now
    assert row.inactivity_warned_at < row.last_activity_at and not warning_mails(
        notifications, came_back
    )
    assert request_row(gdpr, came_back) is None
    assert account(orders, active).inactivity_warned_at is None

    # a second run: nobody is warned twice, nobody warned less than 30 days ago is deactivated
    warned_at = {a: account(orders, a).inactivity_warned_at for a in (nearly, never_warned)}
    again = run_purge(services)
    assert again[("orders", "account_inactivity_warnings")] == 0
    assert again[("orders", "account")] == 0
    for account_id in (nearly, never_warned):
        row = account(orders, account_id)
        assert row.inactivity_warned_at == warned_at[account_id]
        assert row.deactivation_requested_at is None
        assert len(warning_mails(notifications, account_id)) == 1

    # the never-warned account, 30 days after its warning: deactivated
    craft(orders, never_warned, now - 3 * YEAR, now - timedelta(days=30))
    third = run_purge(services)
    assert third[("orders", "account")] == 1
    wait_until(
        lambda: (row := request_row(gdpr, never_warned)) is not None and row.reason == "inactivity",
        timeout=60,
        message="gdpr opened the inactivity request",
    )


def test_the_summary_key_of_an_erasure_is_destroyed_by_the_purge_run_at_the_latest(services):
    """The summary's own key outlives the account's for its mail only: the workers here send no
    mail, so the purge run destroys it once the request is done for the schedule's 7 days."""
    orders, gdpr = services["orders"], services["gdpr"]
    client = orders.create_app().test_client()
    account_id, email = sign_up(client, "Sam")
    login = client.post("/v1/auth/token", json={"email": email, "password": PASSWORD})
    bearer = {"Authorization": f"Bearer {login.get_json()['access_token']}"}
    assert client.post("/v1/accounts/me/deactivation", headers=bearer).status_code == 202
    wait_until(
        lambda: (row := request_row(gdpr, account_id)) is not None and row.status == "done",
        timeout=60,
        message="the request is done",
    )
    subject = own_key_subject("account.deactivated", account_id)
    assert gdpr.keys.keys([subject]).get(subject)  # the summary was sealed with it

    run_purge(services)  # done today: kept for notifications' mail
    assert not gdpr.keys.destroyed(subject)
    assert request_row(gdpr, account_id).summary_key_destroyed_at is None

    t = gdpr_tables.deactivation_requests
    with gdpr.engine.begin() as conn:
        conn.execute(
            update(t)
            .where(t.c.account_id == account_id)
            .values(completed_at=utcnow() - timedelta(days=8))
        )
    counts = run_purge(services)
    assert counts[("gdpr", "deactivation_summary_keys")] == 1
    assert gdpr.keys.destroyed(subject)
    assert request_row(gdpr, account_id).summary_key_destroyed_at is not None
    assert run_purge(services)[("gdpr", "deactivation_summary_keys")] == 0
