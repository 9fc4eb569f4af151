"""The orders service's configuration: one typed, frozen object built at start; a value that
cannot be read stops the start with an error naming the variable and what it expects."""

from __future__ import annotations

import base64
import dataclasses
from datetime import timedelta

import pytest

from coc_orders.config import OrdersConfig, RateLimit
from coc_orders.service import definition
from coc_shared.config import ConfigError, Settings
from coc_shared.service import Runtime


def test_defaults_are_typed_values():
    config = OrdersConfig.from_env({})
    assert config.rate_limit_login == RateLimit(10, 60) and config.rate_limit_orders == RateLimit(
        20, 60
    )
    assert config.customer_token_ttl == timedelta(hours=2) and config.idempotency_ttl == timedelta(
        hours=24
    )
    assert config.proxy_count == 0 and config.document_key is None and config.document_store is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.proxy_count = 2


def test_overrides_are_read_like_the_environment():
    key = base64.b64encode(b"k" * 32).decode()
    config = OrdersConfig.from_env(
        {
            "ORDERS_DOCUMENT_KEY": key,
            "ORDERS_RATE_LIMIT_LOGIN": "3/second",
            "ORDERS_IDEMPOTENCY_TTL_HOURS": "1.5",
            "ORDERS_DOCUMENT_STORE": "local",
        }
    )
    assert config.document_key == b"k" * 32 and config.rate_limit_login == RateLimit(3, 1)
    assert config.idempotency_ttl == timedelta(minutes=90) and config.document_store == "local"
    assert key not in repr(config)


@pytest.mark.parametrize(
    "name,value,expected",
    [
        ("ORDERS_DOCUMENT_KEY", "not base64!", "expected 32 bytes encoded in base64"),
        ("ORDERS_DOCUMENT_KEY", base64.b64encode(b"short").decode(), "this is 5 bytes"),
        ("ORDERS_RATE_LIMIT_LOGIN", "10/fortnight", "expected a rate limit"),
        ("ORDERS_DOCUMENT_STORE", "ftp", "expected one of: s3, local"),
        ("ORDERS_PROXY_COUNT", "-1", "expected a whole number of at least 0"),
        ("ORDERS_PAYMENT_URL", "payments/{order_id}", "expected a URL"),
        # a token in the query string would be in every access log the link passes
        ("ORDERS_EMAIL_CONFIRMATION_URL", "https://shop.example/c?token={token}", "fragment"),
        ("ORDERS_RATE_LIMIT_MAIL", "5", "expected a rate limit"),
    ],
)
def test_a_value_that_cannot_be_read_names_its_variable(name, value, expected):
    with pytest.raises(ConfigError) as refused:
        OrdersConfig.from_env({name: value})
    assert name in str(refused.value) and expected in str(refused.value)
    if name == "ORDERS_DOCUMENT_KEY":
        assert value not in str(refused.value)  # a key is never shown


def test_a_malformed_document_key_stops_the_start(tmp_path):
    url = f"sqlite:///{tmp_path}/main.db"
    settings = Settings.from_env(
        "orders",
        database_url=url,
        parking_database_url=url,
        rabbitmq_url="memory://",
        extra={"ORDERS_DOCUMENT_KEY": "c2hvcnQ="},
    )
    with pytest.raises(ConfigError, match="ORDERS_DOCUMENT_KEY"):
        Runtime(definition, settings)
