"""Rate limits (flask-limiter, moving window, counters in the real Redis): one budget for every
process of the service, per client IP behind the declared proxies, per account, on every route
that creates, logs in, writes to an e-mail address or takes a file."""

from __future__ import annotations

import uuid

import redis
from orders_helpers import REDIS_URL, order_body
from test_accounts import sign_up


def test_every_worker_counts_against_one_budget_in_redis(make_runtime):
    """Two applications (two gunicorn workers, or two instances) with the same storage share the
    counters: the second worker refuses the request the first one's budget left no room for."""
    prefix = "test-" + uuid.uuid4().hex[:12]
    settings = {"ORDERS_RATE_LIMIT_ORDERS": "2/minute", "ORDERS_RATE_LIMIT_PREFIX": prefix}
    first = make_runtime(**settings).create_app().test_client()
    second = make_runtime(**settings).create_app().test_client()
    assert first.post("/v1/orders", json=order_body()).status_code == 201
    assert second.post("/v1/orders", json=order_body()).status_code == 201
    refused = first.post("/v1/orders", json=order_body())
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert second.post("/v1/orders", json=order_body()).status_code == 429
    keys = redis.Redis.from_url(REDIS_URL).keys(f"*{prefix}*")
    assert keys, "the counters are in Redis, under the configured prefix"


def test_behind_the_declared_proxies_each_client_has_its_own_budget(make_runtime):
    client = (
        make_runtime(ORDERS_RATE_LIMIT_ORDERS="1/minute", ORDERS_PROXY_COUNT="1")
        .create_app()
        .test_client()
    )

    def place(forwarded_for):
        return client.post(
            "/v1/orders", json=order_body(), headers={"X-Forwarded-For": forwarded_for}
        ).status_code

    assert [place("198.51.100.1"), place("198.51.100.1"), place("198.51.100.2")] == [201, 429, 201]
    # without a declared proxy, X-Forwarded-For is the client's word and counts for nothing
    direct = make_runtime(ORDERS_RATE_LIMIT_ORDERS="1/minute").create_app().test_client()
    codes = [
        direct.post("/v1/orders", json=order_body(), headers={"X-Forwarded-For": ip}).status_code
        for ip in ("198.51.100.1", "198.51.100.2")
    ]
    assert codes == [201, 429]


def test_orders_are_limited_per_account_whatever_the_ip(make_runtime):
    client = make_runtime(ORDERS_RATE_LIMIT_ORDERS="2/minute").create_app().test_client()
    _, auth = sign_up(client)
    codes = [
        client.post(
            "/v1/orders", json=order_body(), headers=auth, environ_base={"REMOTE_ADDR": ip}
        ).status_code
        for ip in ("10.9.0.1", "10.9.0.2", "10.9.0.3")
    ]
    assert codes == [201, 201, 429]


def test_account_creation_is_limited_per_ip(make_runtime):
    client = make_runtime(ORDERS_RATE_LIMIT_ORDERS="2/minute").create_app().test_client()
    codes = [
        client.post(
            "/v1/accounts",
            json={"email": f"n.{uuid.uuid4().hex[:8]}@example.org", "password": "long password!"},
            environ_base={"REMOTE_ADDR": "10.8.0.1"},
        ).status_code
        for _ in range(3)
    ]
    assert codes[2] == 429 and codes[:2] == [codes[0]] * 2 and codes[0] < 300


def test_changes_of_my_data_are_limited_per_account(make_runtime):
    """PATCH /v1/accounts/me was unlimited."""
    client = make_runtime(ORDERS_RATE_LIMIT_CHANGES="3/minute").create_app().test_client()
    _, auth = sign_up(client)
    codes = [
        client.patch(
            "/v1/accounts/me",
            headers=auth,
            json={"marketing_consent": bool(i % 2)},
            environ_base={"REMOTE_ADDR": f"10.7.0.{i}"},
        ).status_code
        for i in range(4)
    ]
    assert codes == [200, 200, 200, 429]


def test_changes_of_e_mail_are_limited_per_account_as_they_send_mail(make_runtime):
    client = make_runtime(ORDERS_RATE_LIMIT_MAIL="2/minute").create_app().test_client()
    _, auth = sign_up(client)

    def change():
        new = f"new.{uuid.uuid4().hex[:8]}@example.org"
        return client.patch("/v1/accounts/me", headers=auth, json={"email": new}).status_code

    assert [change(), change(), change()] == [200, 200, 429]
    # a change that writes to no one (no e-mail) is not counted against the mail budget
    answer = client.patch("/v1/accounts/me", headers=auth, json={"marketing_consent": True})
    assert answer.status_code == 200


def test_deactivation_requests_are_limited_per_account(make_runtime):
    client = make_runtime(ORDERS_RATE_LIMIT_MAIL="2/minute").create_app().test_client()
    _, auth = sign_up(client)
    codes = [
        client.post("/v1/accounts/me/deactivation", headers=auth).status_code for _ in range(3)
    ]
    assert codes == [202, 202, 429]


def test_while_redis_cannot_be_reached_each_process_still_counts(make_runtime):
    """A limit is never lifted because its storage is down: the process counts in memory."""
    client = (
        make_runtime(
            ORDERS_RATE_LIMIT_STORAGE="redis://127.0.0.1:1/0", ORDERS_RATE_LIMIT_LOGIN="2/minute"
        )
        .create_app()
        .test_client()
    )
    codes = [
        client.post(
            "/v1/auth/token", json={"email": "down@example.org", "password": "guess"}
        ).status_code
        for _ in range(3)
    ]
    assert codes == [401, 401, 429]
