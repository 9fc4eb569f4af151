"""Each account's last activity (the clock of the retention schedule's two years without
activity): a log-in, an order and a change of the profile start it again, which also voids a
warning sent before; orders_0011 starts existing accounts from their last change or order."""

from __future__ import annotations

import uuid
from datetime import timedelta

from alembic import command
from alembic.config import Config
from orders_helpers import order_body
from sqlalchemy import select, update

from coc_orders.adapters import tables
from coc_orders.service import definition
from coc_shared.envelope import utcnow
from coc_shared.migrate import upgrade

PASSWORD = "correct horse battery"
LONG_AGO = timedelta(days=700)


def sign_up(client) -> tuple[str, str, dict]:
    email = f"active.{uuid.uuid4().hex[:8]}@example.org"
    body = {"email": email, "password": PASSWORD, "profile": {"customer": {"first_name": "Léa"}}}
    assert client.post("/v1/accounts", json=body).status_code == 202
    token = client.post("/v1/auth/token", json={"email": email, "password": PASSWORD}).get_json()
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    return client.get("/v1/accounts/me", headers=auth).get_json()["id"], email, auth


def make_old(runtime, account_id: str) -> None:
    a = tables.accounts
    old = utcnow() - LONG_AGO
    with runtime.engine.begin() as conn:
        conn.execute(
            update(a)
            .where(a.c.id == account_id)
            .values(last_activity_at=old, inactivity_warned_at=old + timedelta(days=1))
        )


def activity(runtime, account_id: str):
    a = tables.accounts
    with runtime.engine.connect() as conn:
        return conn.execute(
            select(a.c.last_activity_at, a.c.inactivity_warned_at).where(a.c.id == account_id)
        ).one()


def test_a_log_in_an_order_and_a_profile_change_are_activity(runtime, client):
    account_id, email, auth = sign_up(client)
    assert activity(runtime, account_id).last_activity_at > utcnow() - timedelta(minutes=5)

    for act in (
        lambda: client.post("/v1/auth/token", json={"email": email, "password": PASSWORD}),
        lambda: client.patch(
            "/v1/accounts/me", json={"customer": {"last_name": "Martin"}}, headers=auth
        ),
        lambda: client.post("/v1/orders", json=order_body(), headers=auth),
    ):
        make_old(runtime, account_id)
        before = utcnow()
        answer = act()
        assert answer.status_code in (200, 201), answer.get_json()
        last, warned = activity(runtime, account_id)
        assert last >= before and warned < last  # the warning sent before no longer counts


def test_a_refused_log_in_is_no_activity(runtime, client):
    account_id, email, _ = sign_up(client)
    make_old(runtime, account_id)
    refused = client.post("/v1/auth/token", json={"email": email, "password": "not the one!"})
    assert refused.status_code == 401
    assert activity(runtime, account_id).last_activity_at < utcnow() - LONG_AGO / 2


def _downgrade(runtime, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", definition.migrations)
    with runtime.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        cfg.attributes["schema"] = "orders"
        command.downgrade(cfg, revision)


def test_orders_0011_starts_existing_accounts_from_their_last_change_or_order(runtime, client):
    a, o = tables.accounts, tables.orders
    now = utcnow()
    changed, _, _ = sign_up(client)
    ordered, _, auth = sign_up(client)
    placed = client.post("/v1/orders", json=order_body(), headers=auth)
    assert placed.status_code == 201, placed.get_json()
    with runtime.engine.begin() as conn:
        conn.execute(
            update(a).where(a.c.id == changed).values(updated_at=now - timedelta(days=300))
        )
        conn.execute(
            update(a).where(a.c.id == ordered).values(updated_at=now - timedelta(days=600))
        )
        conn.execute(
            update(o)
            .where(o.c.id == placed.get_json()["id"])
            .values(placed_at=now - timedelta(days=100))
        )
    _downgrade(runtime, "orders_0010")  # the columns go
    upgrade(runtime.engine, definition.migrations, "orders")
    assert activity(runtime, changed) == (now - timedelta(days=300), None)
    assert activity(runtime, ordered) == (now - timedelta(days=100), None)
