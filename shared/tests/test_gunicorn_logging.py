"""coc_shared.gunicorn: what its access lines and error lines keep of a request (the real
gunicorn process is started by tests/test_gunicorn_access_log.py)."""

from __future__ import annotations

import logging
from datetime import timedelta
from types import SimpleNamespace

import pytest

from coc_shared.gunicorn import (
    AccessLogger,
    _RedactingFormatter,
    access_event,
    redact_secrets,
    scrub_query,
    service_of,
)

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    "query, kept, gone",
    [
        ("token=secret123", "token=[redacted]", "secret123"),
        ("limit=5&access_token=abc.def", "limit=5", "abc.def"),
        ("confirmation_token=t1&order_token=t2", "confirmation_token=[redacted]", "t2"),
        ("api_key=k1&signature=s1&code=c1", "api_key=[redacted]", "k1"),
        ("q=" + JWT, "q=[redacted]", JWT),
        ("token=a%00b&&broken=%zz", "token=[redacted]", "a"),
        ("email=joe%40example.org", "email=joe@example.org", "%40"),
    ],
)
def test_a_query_string_keeps_no_secret(query, kept, gone):
    scrubbed = scrub_query(query)
    assert kept in scrubbed
    assert gone not in scrubbed.replace("[redacted]", "")


def test_an_error_line_with_a_url_is_redacted():
    assert (
        redact_secrets("Error handling request /v1/orders/1?token=s3cret&x=1 HTTP/1.1")
        == "Error handling request /v1/orders/1?token=[redacted]&x=1 HTTP/1.1"
    )
    record = logging.LogRecord(
        "gunicorn.error", logging.ERROR, "", 0, "Error handling request %s", ("/a?token=s",), None
    )
    assert "token=[redacted]" in _RedactingFormatter("%(message)s").format(record)


def test_an_access_event_is_scrubbed_like_the_json_logs():
    response = SimpleNamespace(
        status="404 NOT FOUND", headers=[("X-Correlation-ID", "c-1")], sent=120
    )
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/v1/accounts/joe@example.org",
        "QUERY_STRING": "token=s3cret&contact=joe%40example.org&phone=%2B33612345678",
        "REMOTE_ADDR": "203.0.113.7",
        "HTTP_USER_AGENT": "Mozilla",
        "HTTP_REFERER": "https://shop.test/?token=s3cret",
    }
    event = access_event(response, environ, timedelta(milliseconds=12), "orders")
    text = repr(event)
    assert "s3cret" not in text and "joe@example.org" not in text and "203.0.113.7" not in text
    assert "+33612345678" not in text and "Mozilla" not in text
    assert event["status"] == 404 and event["correlation_id"] == "c-1"
    assert event["service"] == "orders" and event["event"] == "http.access"


def test_the_service_is_named_by_the_application():
    assert service_of(SimpleNamespace(proc_name="coc_supplier_gateway.entrypoints.api:x()")) == (
        "supplier-gateway"
    )
    assert service_of(SimpleNamespace(proc_name="gunicorn")) is None


def test_the_logger_class_is_gunicorn_s():
    from gunicorn.glogging import Logger

    assert issubclass(AccessLogger, Logger)
