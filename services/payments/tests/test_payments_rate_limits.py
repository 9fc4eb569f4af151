"""Rate limits of the payments API (coc_shared.limits: flask-limiter, moving window, counters in the
real Redis): a checkout is limited per client IP behind the declared proxies, per order and per
account, in one budget for every process of the service; the providers' notifications never are."""

from __future__ import annotations

import uuid

import pytest
import redis
from payments_testkit import (
    CUSTOMER_SECRET,
    REDIS_URL,
    form_body,
    order_placed,
    payments_extra,
    qonto_body,
    qonto_headers,
    record_order,
    systempay_ipn,
)

from coc_payments.service import definition
from coc_shared.limits import MESSAGE
from coc_shared.tokens import issue_customer_token


@pytest.fixture
def limited(runtime_factory, fake_paypal, fake_systempay_api):
    """``limited(**variables)``: a payments runtime counting in Redis under this test's prefix
    (``PAYMENTS_RATE_LIMIT_PREFIX``, shared by every runtime the test makes)."""
    prefix = "test-" + uuid.uuid4().hex[:12]
    made = []

    def make(**variables):
        extra = payments_extra(fake_paypal.url, fake_systempay_api.url)
        extra.update(
            PAYMENTS_RATE_LIMIT_STORAGE=REDIS_URL, PAYMENTS_RATE_LIMIT_PREFIX=prefix, **variables
        )
        rt = runtime_factory(
            definition, migrate=not made, customer_token_secret=CUSTOMER_SECRET, extra=extra
        )
        made.append(rt)
        return rt

    make.prefix = prefix
    return make


def guest_order(runtime, method: str = "card") -> tuple[str, dict]:
    """A recorded guest order: its checkout path and the headers that open it."""
    event, token = order_placed(method, 1000)
    record_order(runtime, event)
    return f"/v1/payments/{event.data['order_id']}/checkout", {"X-Order-Token": token}


def test_over_the_limit_a_checkout_answers_429_with_retry_after_in_the_shared_shape(limited):
    runtime = limited(PAYMENTS_RATE_LIMIT_CHECKOUT="2/minute")
    client = runtime.create_app().test_client()
    path, headers = guest_order(runtime)
    codes = [client.post(path, headers=headers).status_code for _ in range(2)]
    refused = client.post(path, headers=headers)
    assert codes == [200, 200] and refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    error = refused.get_json()["error"]
    assert error["status"] == 429 and error["code"] == "too_many_requests"
    assert error["message"] == MESSAGE and "correlation_id" in error


def test_every_worker_counts_against_one_budget_in_redis(limited):
    """Two applications (two gunicorn workers, or two instances) with the same storage share the
    counters: the second refuses what the first one's budget left no room for."""
    first_runtime = limited(PAYMENTS_RATE_LIMIT_CHECKOUT="2/minute")
    first = first_runtime.create_app().test_client()
    second = limited(PAYMENTS_RATE_LIMIT_CHECKOUT="2/minute").create_app().test_client()
    orders = [guest_order(first_runtime, method) for method in ("card", "transfer", "card")]
    assert first.post(orders[0][0], headers=orders[0][1]).status_code == 200
    assert second.post(orders[1][0], headers=orders[1][1]).status_code == 200
    # a third order from the same client: the client's budget is spent in both workers
    assert first.post(orders[2][0], headers=orders[2][1]).status_code == 429
    assert second.post(orders[2][0], headers=orders[2][1]).status_code == 429
    keys = redis.Redis.from_url(REDIS_URL).keys(f"*{limited.prefix}*")
    assert keys, "the counters are in Redis, under the configured prefix"


def test_a_checkout_is_limited_per_order_whatever_the_ip(limited):
    runtime = limited(PAYMENTS_RATE_LIMIT_CHECKOUT="2/minute")
    client = runtime.create_app().test_client()
    path, headers = guest_order(runtime)
    codes = [
        client.post(path, headers=headers, environ_base={"REMOTE_ADDR": ip}).status_code
        for ip in ("10.6.0.1", "10.6.0.2", "10.6.0.3")
    ]
    assert codes == [200, 200, 429]
    # another order from another client has its own budget
    other, other_headers = guest_order(runtime)
    answer = client.post(other, headers=other_headers, environ_base={"REMOTE_ADDR": "10.6.0.4"})
    assert answer.status_code == 200


def test_a_checkout_is_limited_per_account_whatever_the_ip_and_the_order(limited):
    runtime = limited(PAYMENTS_RATE_LIMIT_CHECKOUT="2/minute")
    client = runtime.create_app().test_client()
    account = str(uuid.uuid4())
    token, _ = issue_customer_token(CUSTOMER_SECRET, account)
    codes = []
    for i in range(3):
        event, _ = order_placed("card", 1000, account_id=account)
        record_order(runtime, event)
        codes.append(
            client.post(
                f"/v1/payments/{event.data['order_id']}/checkout",
                headers={"Authorization": f"Bearer {token}"},
                environ_base={"REMOTE_ADDR": f"10.5.0.{i}"},
            ).status_code
        )
    assert codes == [200, 200, 429]


def test_behind_the_declared_proxies_each_client_has_its_own_budget(limited):
    runtime = limited(PAYMENTS_RATE_LIMIT_CHECKOUT="1/minute", PAYMENTS_PROXY_COUNT="1")
    client = runtime.create_app().test_client()

    def checkout(forwarded_for):
        path, headers = guest_order(runtime)  # a new order each time: only the IP is counted
        return client.post(path, headers={**headers, "X-Forwarded-For": forwarded_for}).status_code

    assert [checkout("198.51.100.1"), checkout("198.51.100.1"), checkout("198.51.100.2")] == [
        200,
        429,
        200,
    ]
    # without a declared proxy, X-Forwarded-For is the client's word and counts for nothing
    direct_runtime = limited(PAYMENTS_RATE_LIMIT_CHECKOUT="1/minute")
    direct = direct_runtime.create_app().test_client()
    codes = []
    for ip in ("198.51.100.3", "198.51.100.4"):
        path, headers = guest_order(direct_runtime)
        codes.append(direct.post(path, headers={**headers, "X-Forwarded-For": ip}).status_code)
    assert codes == [200, 429]


def test_the_providers_notifications_are_never_limited(limited):
    """The bank, PayPal and the business bank call from their few addresses, as often as they
    must; their bodies are size-capped and signed, not counted."""
    runtime = limited(PAYMENTS_RATE_LIMIT_CHECKOUT="1/minute")
    client = runtime.create_app().test_client()
    calls = {
        "/v1/callbacks/systempay": lambda: {
            "data": form_body(systempay_ipn("COC-2026-000000001", 1000, "AUTHORISED")),
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        },
        "/v1/callbacks/paypal": lambda: {"json": {"event_type": "PAYMENT.CAPTURE.COMPLETED"}},
        "/v1/callbacks/bank-transfer": lambda: _signed_bank_webhook(),
    }
    for path, request in calls.items():
        answers = [client.post(path, **request()) for _ in range(5)]
        assert all(a.status_code not in (429, 500) for a in answers), (
            path,
            [a.status_code for a in answers],
        )
        assert not any("X-RateLimit-Limit" in a.headers for a in answers), path
    # and they spent nothing of the client's checkout budget
    path, headers = guest_order(runtime)
    assert client.post(path, headers=headers).status_code == 200


def _signed_bank_webhook() -> dict:
    body = qonto_body(f"COC-2026-{uuid.uuid4().int % 10**9:09d}", 1000)
    return {"data": body, "headers": {**qonto_headers(body), "Content-Type": "application/json"}}
