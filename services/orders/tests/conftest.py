"""Fixtures of the orders tests: the service on this run's PostgreSQL database and bus prefix
(coc_shared.testing), a Flask test client, a local S3-compatible server (moto in server mode), the
rate limits' counters in the real Redis (REDIS_URL, by default the local one) under a key prefix of
each test's own."""

from __future__ import annotations

import os
import sys
import uuid

import pytest

from coc_orders.service import definition
from coc_shared.service import Runtime

sys.path.insert(0, os.path.dirname(__file__))  # orders_helpers

from orders_helpers import CUSTOMER_SECRET, DOCUMENT_KEY, DOCUMENT_LINK_SECRET, REDIS_URL


@pytest.fixture(scope="session")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    yield f"http://{host}:{port}"
    server.stop()


def orders_extra(s3_endpoint: str, **overrides) -> dict:
    extra = {
        "ORDERS_DOCUMENT_KEY": DOCUMENT_KEY,
        "ORDERS_DOCUMENT_LINK_SECRET": DOCUMENT_LINK_SECRET,
        "ORDERS_DOCUMENT_STORE": "s3",
        "ORDERS_S3_ENDPOINT_URL": s3_endpoint,
        "ORDERS_S3_BUCKET": "coc-test-" + uuid.uuid4().hex[:8],
        "ORDERS_S3_REGION": "eu-west-3",
        "ORDERS_S3_ACCESS_KEY_ID": "testing",
        "ORDERS_S3_SECRET_ACCESS_KEY": "testing",
        "ORDERS_RATE_LIMIT_STORAGE": REDIS_URL,
        "ORDERS_RATE_LIMIT_PREFIX": "test-" + uuid.uuid4().hex[:12],
        "ORDERS_RATE_LIMIT_LOGIN": "1000/minute",
        "ORDERS_RATE_LIMIT_ORDERS": "1000/minute",
        "ORDERS_RATE_LIMIT_UPLOADS": "1000/minute",
        "ORDERS_RATE_LIMIT_CHANGES": "1000/minute",
        "ORDERS_RATE_LIMIT_MAIL": "1000/minute",
    }
    extra.update(overrides)
    return extra


@pytest.fixture(scope="session")
def vies_sandbox():
    """VIES's REST API on a local port (coc_shared.vies.SandboxVies): numbers python-stdnum accepts
    are valid unless a test lists them in ``invalid``, or plays VIES down (``unavailable``)."""
    from coc_shared.vies import SandboxVies

    sandbox = SandboxVies()
    sandbox.url = sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def vies(vies_sandbox):
    """The sandbox, as each test leaves it: answering, with no number listed invalid."""
    yield vies_sandbox
    vies_sandbox.unavailable = False
    vies_sandbox.invalid.clear()


@pytest.fixture(scope="session")
def migrated(settings_factory):
    rt = Runtime(definition, settings_factory("orders"))
    rt.migrate()
    rt.engine.dispose()
    return True


@pytest.fixture
def make_runtime(runtime_factory, s3_endpoint, migrated, vies):
    def make(customer_token_secret: str | None = CUSTOMER_SECRET, **extra_overrides) -> Runtime:
        """An orders runtime; keyword arguments in capitals override the service's own variables."""
        return runtime_factory(
            definition,
            migrate=False,
            customer_token_secret=customer_token_secret,
            extra=orders_extra(s3_endpoint, **{"ORDERS_VIES_URL": vies.url, **extra_overrides}),
        )

    return make


@pytest.fixture
def runtime(make_runtime):
    return make_runtime()


@pytest.fixture
def client(runtime):
    return runtime.create_app().test_client()
