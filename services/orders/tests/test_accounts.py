"""Customer accounts: sign-up, argon2, token log-in with expiry, profile read and change, e-mail
change confirmed by a link, orders linked to the account and filled from the profile, the list of
my orders, deactivation request (event), 404 for others' resources, rate-limited log-in (429)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

from orders_helpers import CUSTOMER_SECRET, order_body, outbox_events
from sqlalchemy import inspect, select

from coc_orders.adapters import tables
from coc_shared.tokens import issue_customer_token, verify_customer_token

PROFILE = {
    "customer": {"first_name": "Léa", "last_name": "N'Diaye", "phone": "+33 6 98 76 54 32"},
    "shipping_address": {
        "line1": "3 quai des Chartrons",
        "postal_code": "33000",
        "city": "Bordeaux",
        "country": "FR",
    },
    "marketing_consent": True,
}


def sign_up(client, email=None, password="correct horse battery", profile=PROFILE):
    email = email or f"lea.{uuid.uuid4().hex[:8]}@example.org"
    answer = client.post(
        "/v1/accounts", json={"email": email, "password": password, "profile": profile}
    )
    assert answer.status_code == 202, answer.get_json()
    token = client.post("/v1/auth/token", json={"email": email, "password": password})
    assert token.status_code == 200, token.get_json()
    auth = {"Authorization": f"Bearer {token.get_json()['access_token']}"}
    return client.get("/v1/accounts/me", headers=auth).get_json(), auth


def test_sign_up_log_in_and_see_my_data(runtime, client):
    email = f"Lea.{uuid.uuid4().hex[:8]}@Example.org"
    created = client.post(
        "/v1/accounts",
        json={"email": email, "password": "correct horse battery", "profile": PROFILE},
    )
    assert created.status_code == 202, created.get_json()
    assert created.get_json()["email"] == email.split("@")[0] + "@example.org"
    assert "correct horse battery" not in created.get_data(as_text=True)
    token = client.post(
        "/v1/auth/token", json={"email": email.lower(), "password": "correct horse battery"}
    ).get_json()
    assert token["token_type"] == "Bearer" and token["expires_in"] == 7200
    me = client.get(
        "/v1/accounts/me", headers={"Authorization": f"Bearer {token['access_token']}"}
    ).get_json()
    with runtime.engine.connect() as conn:
        stored = conn.execute(
            select(tables.accounts.c.password_hash).where(tables.accounts.c.id == me["id"])
        ).scalar_one()
    assert stored.startswith("$argon2id$")
    assert (
        me["customer"]["phone"] == "+33698765432" and me["shipping_address"]["city"] == "Bordeaux"
    )
    assert me["marketing_consent"] is True
    assert (
        client.post(
            "/v1/auth/token", json={"email": email, "password": "wrong password!"}
        ).status_code
        == 401
    )
    assert (
        client.post(
            "/v1/auth/token", json={"email": "nobody@example.org", "password": "x"}
        ).status_code
        == 401
    )


def test_a_sign_up_with_an_address_in_use_is_answered_as_any_other_and_creates_nothing(
    runtime, client
):
    """Before: 409 "an account with this e-mail address exists" told anyone which addresses have
    accounts."""
    email = f"taken.{uuid.uuid4().hex[:8]}@example.org"
    first = client.post("/v1/accounts", json={"email": email, "password": "correct horse battery"})
    again = client.post(
        "/v1/accounts", json={"email": email.upper(), "password": "another password", "profile": {}}
    )
    fresh = client.post(
        "/v1/accounts",
        json={"email": f"free.{uuid.uuid4().hex[:8]}@example.org", "password": "another password"},
    )
    assert first.status_code == again.status_code == fresh.status_code == 202
    assert again.get_json()["message"] == fresh.get_json()["message"]
    assert set(again.get_json()) == set(fresh.get_json()) == {"email", "message"}
    with runtime.engine.connect() as conn:
        [account] = conn.execute(
            select(tables.accounts).where(tables.accounts.c.email.ilike(email))
        ).all()
    # the account is the first one's: its password still opens it, the second one's does not
    login = {"email": email, "password": "correct horse battery"}
    assert client.post("/v1/auth/token", json=login).status_code == 200
    login = {"email": email, "password": "another password"}
    assert client.post("/v1/auth/token", json=login).status_code == 401
    assert account.email == email


def test_a_change_to_an_address_in_use_is_answered_as_any_other_and_mailed_to_its_owner(
    runtime, client
):
    """Before: 422 "This e-mail address cannot be used." told a customer that the address has an
    account. Now the change is pending like any other; the mail goes to the address (its owner is
    told, ``address_in_use``), and the confirmation is refused."""
    owner, _ = sign_up(client)
    account, auth = sign_up(client)
    free = f"free.{uuid.uuid4().hex[:8]}@example.org"
    to_free = client.patch("/v1/accounts/me", headers=auth, json={"email": free})
    to_taken = client.patch("/v1/accounts/me", headers=auth, json={"email": owner["email"]})
    assert to_free.status_code == to_taken.status_code == 200
    assert to_taken.get_json() == {**to_free.get_json(), "pending_email": owner["email"]}
    free_event, taken_event = outbox_events(
        runtime, "account.email_change_requested", account["id"]
    )
    assert "address_in_use" not in free_event["data"]
    assert taken_event["data"]["address_in_use"] is True
    assert taken_event["personal"]["email"] == owner["email"]
    token = taken_event["personal"]["confirmation_url"].split("#token=")[1]
    refused = client.post("/v1/accounts/email-confirmation", json={"token": token})
    assert refused.status_code == 409
    assert client.get("/v1/accounts/me", headers=auth).get_json()["email"] == account["email"]


def test_bad_sign_ups_get_422_per_field(client):
    answer = client.post(
        "/v1/accounts",
        json={
            "email": "nope",
            "password": "short",
            "profile": {"customer": {"first_name": "R2D2"}},
        },
    )
    assert answer.status_code == 422
    fields = answer.get_json()["error"]["fields"]
    assert "password" in fields
    bad = client.post(
        "/v1/accounts",
        json={
            "email": "nope",
            "password": "long enough password",
            "profile": {"customer": {"first_name": "R2D2"}},
        },
    ).get_json()["error"]["fields"]
    assert "email" in bad and bad["profile"]["customer"]["first_name"]


def test_an_expired_or_forged_token_gets_401(client):
    expired, _ = issue_customer_token(
        CUSTOMER_SECRET, str(uuid.uuid4()), ttl=timedelta(seconds=-10)
    )
    assert (
        client.get("/v1/accounts/me", headers={"Authorization": f"Bearer {expired}"}).status_code
        == 401
    )
    forged, _ = issue_customer_token("another-secret-" + "z" * 32, str(uuid.uuid4()))
    assert (
        client.get("/v1/accounts/me", headers={"Authorization": f"Bearer {forged}"}).status_code
        == 401
    )
    assert client.get("/v1/accounts/me").status_code == 401


def test_change_my_data_and_my_email_through_the_confirmation_link(runtime, client):
    account, auth = sign_up(client)
    changed = client.patch(
        "/v1/accounts/me",
        headers=auth,
        json={
            "customer": {"last_name": "Martin"},
            "marketing_consent": False,
            "company": {"name": "Léa SAS", "siren": "303265045", "vat_number": "FR40303265045"},
        },
    )
    assert changed.status_code == 200, changed.get_json()
    me = changed.get_json()
    assert me["customer"]["last_name"] == "Martin" and me["customer"]["first_name"] == "Léa"
    assert me["marketing_consent"] is False and me["company"]["vat_number"] == "FR40303265045"
    bad = client.patch(
        "/v1/accounts/me",
        headers=auth,
        json={"company": {"name": "X", "siren": "303265045", "vat_number": "FR12303265045"}},
    )
    assert bad.status_code == 422 and bad.get_json()["error"]["fields"]["company"]["vat_number"]

    new_email = f"lea.new.{uuid.uuid4().hex[:6]}@example.org"
    pending = client.patch("/v1/accounts/me", headers=auth, json={"email": new_email}).get_json()
    assert pending["email"] == account["email"] and pending["pending_email"] == new_email
    # the link goes to the new address through account.email_change_requested, written in the same
    # transaction; the service keeps only the SHA-256 of its one-time token
    [event] = outbox_events(runtime, "account.email_change_requested", account["id"])
    assert event["data"]["account_id"] == account["id"] and event["data"]["expires_at"]
    assert (
        set(event["personal"]) == {"email", "confirmation_url"}
        and event["personal"]["email"] == new_email
    )
    token = event["personal"]["confirmation_url"].split("token=")[1]
    with runtime.engine.connect() as conn:
        [change] = conn.execute(
            select(tables.email_changes).where(tables.email_changes.c.account_id == account["id"])
        ).all()
    assert change.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert token not in {str(v) for v in change}
    assert "pending_notifications" not in inspect(runtime.engine).get_table_names(schema="orders")
    assert (
        client.post("/v1/accounts/email-confirmation", json={"token": "forged"}).status_code == 404
    )
    confirmed = client.post("/v1/accounts/email-confirmation", json={"token": token})
    assert confirmed.status_code == 200 and confirmed.get_json()["email"] == new_email
    assert (
        client.post("/v1/accounts/email-confirmation", json={"token": token}).status_code == 404
    )  # used
    assert (
        client.post(
            "/v1/auth/token", json={"email": new_email, "password": "correct horse battery"}
        ).status_code
        == 200
    )


def test_an_order_with_a_bearer_token_is_linked_and_filled_from_the_profile(runtime, client):
    account, auth = sign_up(client)
    body = {
        "vehicle": {"vin": "VF1RFB00X56789012", "first_registration_date": "2020-01-31"},
        "payment_method": "transfer",
    }
    answer = client.post("/v1/orders", json=body, headers=auth)
    assert answer.status_code == 201, answer.get_json()
    order = answer.get_json()
    assert "access_token" not in order and order["total"]["amount_cents"] == 22900
    [placed] = outbox_events(runtime, "order.placed", order["id"])
    assert (
        placed["data"]["account_id"] == account["id"]
        and placed["data"]["access_token_sha256"] is None
    )
    assert placed["data"]["marketing_consent"] is True
    assert (
        placed["personal"]["email"] == account["email"]
        and placed["personal"]["last_name"] == "N'Diaye"
    )
    assert placed["personal"]["shipping_address"]["city"] == "Bordeaux"
    assert client.get(f"/v1/orders/{order['id']}", headers=auth).status_code == 200
    mine = client.get("/v1/accounts/me/orders", headers=auth).get_json()["items"]
    assert [o["id"] for o in mine] == [order["id"]]


def test_an_order_without_profile_data_lists_what_is_missing(client):
    _, auth = sign_up(client, profile={})
    answer = client.post(
        "/v1/orders",
        json={"vehicle": order_body()["vehicle"], "payment_method": "card"},
        headers=auth,
    )
    assert answer.status_code == 422
    fields = answer.get_json()["error"]["fields"]
    assert fields["customer"]["first_name"] and fields["shipping_address"]
    assert "email" not in fields["customer"]  # the account's e-mail fills it


def test_a_customer_sees_only_their_own_orders_others_answer_404(client):
    _, alice = sign_up(client)
    _, bob = sign_up(client)
    alice_order = client.post("/v1/orders", json=order_body(), headers=alice).get_json()
    guest_order = client.post("/v1/orders", json=order_body()).get_json()
    for order_id in (alice_order["id"], guest_order["id"], str(uuid.uuid4())):
        answer = client.get(f"/v1/orders/{order_id}", headers=bob)
        assert (
            answer.status_code == 404 and answer.get_json()["error"]["message"] == "no such order"
        )
    assert client.get("/v1/accounts/me/orders", headers=bob).get_json()["items"] == []
    upload = client.post(
        f"/v1/orders/{alice_order['id']}/documents",
        headers=bob,
        data={"kind": "id_card"},
        content_type="multipart/form-data",
    )
    assert upload.status_code == 404


def test_deactivation_request_emits_the_event_once(runtime, client):
    account, auth = sign_up(client)
    first = client.post("/v1/accounts/me/deactivation", headers=auth)
    assert first.status_code == 202 and first.get_json()["account_id"] == account["id"]
    assert client.post("/v1/accounts/me/deactivation", headers=auth).status_code == 202
    [event] = outbox_events(runtime, "account.deactivation_requested", account["id"])
    assert event["data"]["account_id"] == account["id"] and event["data"]["requested_at"]
    assert client.get("/v1/accounts/me", headers=auth).get_json()["deactivation_requested_at"]


def test_log_in_is_rate_limited_per_ip_and_per_address(make_runtime):
    client = make_runtime(ORDERS_RATE_LIMIT_LOGIN="3/minute").create_app().test_client()

    def log_in(email, ip):
        return client.post(
            "/v1/auth/token",
            json={"email": email, "password": "guess"},
            environ_base={"REMOTE_ADDR": ip},
        )

    codes = [log_in("x@example.org", "10.0.0.1").status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    limited = log_in("x@example.org", "10.0.0.1")
    assert limited.get_json()["error"]["message"].startswith("too many requests")
    assert int(limited.headers["Retry-After"]) >= 1
    # another address from another IP has its own budgets; the same address from another IP not
    assert log_in("y@example.org", "10.1.1.1").status_code == 401
    assert log_in("X@Example.org ", "10.2.2.2").status_code == 429


def test_without_a_customer_secret_log_in_answers_503(make_runtime):
    client = make_runtime(customer_token_secret=None).create_app().test_client()
    assert (
        client.post(
            "/v1/auth/token", json={"email": "x@example.org", "password": "guess"}
        ).status_code
        == 503
    )
    answer = client.get("/v1/accounts/me", headers={"Authorization": "Bearer some.token.here"})
    assert (
        answer.status_code == 503
        and "CUSTOMER_TOKEN_SECRET" in answer.get_json()["error"]["message"]
    )


def test_the_customer_secret_is_the_shared_setting(make_runtime):
    rt = make_runtime(customer_token_secret="another-customer-secret-" + "w" * 32)
    client = rt.create_app().test_client()
    _, auth = sign_up(client)
    assert client.get("/v1/accounts/me", headers=auth).status_code == 200
    token = auth["Authorization"].split()[1]
    assert verify_customer_token(rt.settings.customer_token_secret, token)
    ours, _ = issue_customer_token(CUSTOMER_SECRET, str(uuid.uuid4()))  # the fixture's usual secret
    assert (
        client.get("/v1/accounts/me", headers={"Authorization": f"Bearer {ours}"}).status_code
        == 401
    )


def test_the_confirmation_link_reaches_the_notifications_service_through_the_broker(
    runtime, client, settings_factory
):
    import threading

    from coc_notifications.service import definition as notifications_definition
    from coc_shared.service import Runtime
    from coc_shared.testing import wait_until

    notifications = Runtime(
        notifications_definition, settings_factory("notifications", outbox_poll_seconds=0.2)
    )
    notifications.migrate()
    notifications.declare_topology()
    stop = threading.Event()
    threads = runtime.start_worker_threads(
        stop, consume=False
    ) + notifications.start_worker_threads(stop, relay=False, loops=False)  # recorded, not sent
    try:
        account, auth = sign_up(client)
        new_email = f"lea.broker.{uuid.uuid4().hex[:6]}@example.org"
        assert (
            client.patch("/v1/accounts/me", headers=auth, json={"email": new_email}).status_code
            == 200
        )
        t = notifications.definition.metadata.tables["notifications.mails"]

        def kept():
            with notifications.engine.connect() as conn:
                return conn.execute(
                    select(t.c.template, t.c.to_address, t.c.secret_url).where(
                        t.c.account_id == account["id"]
                    )
                ).first()

        template, recipient, link = wait_until(kept, message="e-mail change mail recorded to send")
        assert (template, recipient) == ("email_change_confirmation", new_email)
        token = link.split("#token=")[1]
        confirmed = client.post("/v1/accounts/email-confirmation", json={"token": token})
        assert confirmed.status_code == 200 and confirmed.get_json()["email"] == new_email
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        notifications.engine.dispose()


def test_the_mailed_link_carries_its_token_in_the_fragment_and_its_page_posts_it(runtime, client):
    """Before: the link was ``…/email-confirmation?token=…`` (the token in every access log on its
    way) and a GET of it answered 405."""
    account, auth = sign_up(client)
    new_email = f"lea.page.{uuid.uuid4().hex[:6]}@example.org"
    assert (
        client.patch("/v1/accounts/me", headers=auth, json={"email": new_email}).status_code == 200
    )
    [event] = outbox_events(runtime, "account.email_change_requested", account["id"])
    link = event["personal"]["confirmation_url"]
    address, _, fragment = link.partition("#")
    assert fragment.startswith("token=") and "token" not in address
    path = address.split("://", 1)[1].split("/", 1)[1]
    page = client.get(f"/{path}")  # what the browser requests: the fragment is never sent
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert '<script src="email-confirmation.js" defer></script>' in html
    assert html.count("<script") == 1 and "http" not in html.replace("http-equiv", "")
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Cache-Control"] == "no-store"
    script = client.get(f"/{path}.js")
    assert script.status_code == 200 and script.mimetype == "text/javascript"
    source = script.get_data(as_text=True)
    assert "location.hash" in source and "replaceState" in source and '"POST"' in source
    # what the page's script posts
    token = fragment.removeprefix("token=")
    confirmed = client.post(f"/{path}", json={"token": token})
    assert confirmed.status_code == 200 and confirmed.get_json()["email"] == new_email
