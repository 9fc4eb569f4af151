"""Configuration from environment variables: every variable read, nothing undeclared."""

import pytest

import coc_shared.config as config
from coc_shared.config import (
    ENV_VARS,
    SERVICE_NAMES,
    ConfigError,
    Settings,
    Variable,
    env,
    integer,
    load,
    port_variable,
)
from coc_shared.tokens import new_staff_keys

PUBLIC = new_staff_keys()[1]

# Variables of the shared library that Settings does not hold (read with env() where needed).
NOT_IN_SETTINGS = {
    "STAFF_TOKEN",
    "STAFF_TOKEN_PRIVATE_KEY",
    "RUN_DATA_DIR",
    "CI",
    "PROMETHEUS_MULTIPROC_DIR",
}
SHARED_VARIABLES = {
    "DATABASE_URL",
    "PARKING_DATABASE_URL",
    "RABBITMQ_URL",
    "BUS_PREFIX",
    "SERVICE_HOST",
    "ORDERS_PORT",
    "PAYMENTS_PORT",
    "SUPPLIER_GATEWAY_PORT",
    "NOTIFICATIONS_PORT",
    "GDPR_PORT",
    "LOG_LEVEL",
    "CONSUMER_PREFETCH",
    "CONSUMER_BATCH_SIZE",
    "RETRY_QUICK_ATTEMPTS",
    "RETRY_DELAYS",
    "QUEUE_DELIVERY_LIMIT",
    "OUTBOX_BATCH_SIZE",
    "OUTBOX_POLL_SECONDS",
    "OUTBOX_CONFIRM_TIMEOUT",
    "OUTBOX_RETENTION_SECONDS",
    "STAFF_TOKEN_PUBLIC_KEY",
    "STAFF_TOKEN_PRIVATE_KEY",
    "STAFF_TOKEN",
    "CUSTOMER_TOKEN_SECRET",
    "RUN_DATA_DIR",
    "RABBITMQ_CA_FILE",
    "BUS_VERIFY_PUBLISHERS",
    "CI",
    "WORKER_PORT",
    "PROMETHEUS_MULTIPROC_DIR",
    "PERSONAL_DATA_KEK",
    "PERSONAL_DATA_KEK_PREVIOUS",
    "PERSONAL_DATA_KEY_CACHE_SECONDS",
}

CUSTOM = {
    "DATABASE_URL": "postgresql://app@db.internal:5433/coc_prod",
    "PARKING_DATABASE_URL": "postgresql://ops@ops-db.internal:5432/ops",
    "RABBITMQ_URL": "amqp://coc:secret@mq.internal:5673/coc",
    "BUS_PREFIX": "staging.",
    "SERVICE_HOST": "0.0.0.0",
    "ORDERS_PORT": "9001",
    "PAYMENTS_PORT": "9002",
    "SUPPLIER_GATEWAY_PORT": "9003",
    "NOTIFICATIONS_PORT": "9004",
    "GDPR_PORT": "9005",
    "LOG_LEVEL": "DEBUG",
    "CONSUMER_PREFETCH": "17",
    "CONSUMER_BATCH_SIZE": "7",
    "RETRY_QUICK_ATTEMPTS": "4",
    "RETRY_DELAYS": "1, 2.5,60",
    "QUEUE_DELIVERY_LIMIT": "3",
    "OUTBOX_BATCH_SIZE": "50",
    "OUTBOX_POLL_SECONDS": "0.25",
    "OUTBOX_CONFIRM_TIMEOUT": "4.5",
    "STAFF_TOKEN_PUBLIC_KEY": PUBLIC,
}
PORTS = {
    "orders": 9001,
    "payments": 9002,
    "supplier-gateway": 9003,
    "notifications": 9004,
    "gdpr": 9005,
}


@pytest.fixture
def clean_env(monkeypatch):
    for name in list(ENV_VARS):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_shared_variables_are_declared():
    assert SHARED_VARIABLES <= set(ENV_VARS)
    for name in SHARED_VARIABLES:
        assert ENV_VARS[name].meaning.strip(), f"{name} has no meaning"


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_from_env_reads_every_variable(clean_env, service):
    for name, value in CUSTOM.items():
        clean_env.setenv(name, value)
    s = Settings.from_env(service)
    assert s.service == service
    assert s.database_url == CUSTOM["DATABASE_URL"]
    assert s.parking_database_url == CUSTOM["PARKING_DATABASE_URL"]
    assert s.rabbitmq_url == CUSTOM["RABBITMQ_URL"]
    assert s.bus_prefix == "staging."
    assert s.http_host == "0.0.0.0"
    assert s.http_port == PORTS[service]
    assert s.log_level == "DEBUG"
    assert s.prefetch == 17
    assert s.batch_size == 7
    assert s.quick_attempts == 4
    assert s.retry_delays == (1.0, 2.5, 60.0)
    assert s.delivery_limit == 3
    assert s.outbox_batch_size == 50
    assert s.outbox_poll_seconds == 0.25
    assert s.outbox_confirm_timeout == 4.5
    assert s.staff_token_public_key == PUBLIC


def test_from_env_reads_the_declared_variables(clean_env, monkeypatch):
    read = []
    real_load = config.load

    def spy(variables, overrides=None):
        read.extend(v.name for v in variables)
        return real_load(variables, overrides)

    monkeypatch.setattr(config, "load", spy)
    Settings.from_env("payments")
    expected = (
        SHARED_VARIABLES
        - NOT_IN_SETTINGS
        - {port_variable(s) for s in SERVICE_NAMES if s != "payments"}
    )
    assert set(read) == expected


@pytest.mark.parametrize(
    "name, value, expects",
    [
        ("CONSUMER_PREFETCH", "many", "CONSUMER_PREFETCH='many': expected a whole number"),
        ("CONSUMER_PREFETCH", "0", "expected a whole number of at least 1"),
        (
            "RETRY_DELAYS",
            "5,soon",
            "RETRY_DELAYS='5,soon': expected comma-separated numbers of seconds",
        ),
        ("OUTBOX_POLL_SECONDS", "fast", "OUTBOX_POLL_SECONDS='fast': expected a number"),
        ("ORDERS_PORT", "99999", "ORDERS_PORT='99999': expected a whole number from 1 to 65535"),
        (
            "RABBITMQ_URL",
            "localhost:5672",
            "RABBITMQ_URL='localhost:5672': expected a URL starting with amqp://",
        ),
        ("LOG_LEVEL", "loud", "LOG_LEVEL='loud': expected DEBUG, INFO"),
        (
            "STAFF_TOKEN_PUBLIC_KEY",
            "short",
            "STAFF_TOKEN_PUBLIC_KEY='…': expected the base64 of a 32-byte Ed25519 key",
        ),
        (
            "CUSTOMER_TOKEN_SECRET",
            "short",
            "CUSTOMER_TOKEN_SECRET='…': expected a secret of at least 32 characters",
        ),
    ],
)
def test_a_bad_value_stops_the_start_naming_the_variable_and_what_it_expects(
    clean_env, name, value, expects
):
    clean_env.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        Settings.from_env("orders")
    assert expects in str(info.value)
    if "SECRET" in name:
        assert value not in str(info.value)  # a secret is never repeated in an error


def test_every_bad_variable_is_named_at_once(clean_env):
    clean_env.setenv("CONSUMER_PREFETCH", "x")
    clean_env.setenv("OUTBOX_BATCH_SIZE", "y")
    with pytest.raises(ConfigError, match="CONSUMER_PREFETCH.*OUTBOX_BATCH_SIZE"):
        Settings.from_env("orders")


def test_load_prefers_overrides_then_the_environment_then_the_default(clean_env):
    variable = Variable("COC_TEST_NUMBER", "3", "a test variable", integer(0))
    assert load([variable]) == {"COC_TEST_NUMBER": 3}
    clean_env.setenv("COC_TEST_NUMBER", "4")
    assert load([variable]) == {"COC_TEST_NUMBER": 4}
    assert load([variable], {"COC_TEST_NUMBER": "5"}) == {"COC_TEST_NUMBER": 5}


def test_defaults(clean_env):
    s = Settings.from_env("orders")
    assert s.database_url == ENV_VARS["DATABASE_URL"].default
    assert s.parking_database_url == s.database_url  # defaults to DATABASE_URL
    assert s.rabbitmq_url == ENV_VARS["RABBITMQ_URL"].default
    assert s.bus_prefix == ""
    assert s.http_port == 8001
    assert s.retry_delays == (5.0, 30.0, 120.0, 600.0)
    assert s.staff_token_public_key is None
    assert s.schema == "orders" and not s.embedded


def test_an_empty_variable_means_its_default(clean_env):
    clean_env.setenv("CONSUMER_PREFETCH", "")
    clean_env.setenv("STAFF_TOKEN_PUBLIC_KEY", "")
    clean_env.setenv("BUS_PREFIX", "")
    s = Settings.from_env("orders")
    assert s.prefetch == 200 and s.staff_token_public_key is None and s.bus_prefix == ""


def test_an_unknown_service_gets_port_8000_and_its_schema(clean_env):
    s = Settings.from_env("t-some-test")
    assert s.http_port == 8000
    assert s.schema == "t_some_test"


def test_overrides_win(clean_env):
    clean_env.setenv("CONSUMER_PREFETCH", "17")
    s = Settings.from_env("orders", prefetch=5, retry_delays=(0.1,))
    assert s.prefetch == 5 and s.retry_delays == (0.1,)


def test_memory_transport_is_the_embedded_mode(clean_env):
    clean_env.setenv("RABBITMQ_URL", "memory://")
    assert Settings.from_env("orders").embedded


def test_env_reads_the_other_shared_variables(clean_env):
    clean_env.setenv("STAFF_TOKEN", "tok")
    clean_env.setenv("CUSTOMER_TOKEN_SECRET", "c" * 40)
    clean_env.setenv("RUN_DATA_DIR", "/tmp/run")
    assert env("STAFF_TOKEN") == "tok"
    assert env("CUSTOMER_TOKEN_SECRET") == "c" * 40
    assert env("RUN_DATA_DIR") == "/tmp/run"


def test_env_refuses_an_undeclared_name(clean_env):
    clean_env.setenv("COC_SOMETHING_UNDECLARED", "1")
    with pytest.raises(KeyError, match="undeclared environment variable COC_SOMETHING_UNDECLARED"):
        env("COC_SOMETHING_UNDECLARED")


def test_declare_adds_a_variable_and_refuses_a_conflicting_one(clean_env, monkeypatch):
    monkeypatch.setattr(config, "ENV_VARS", dict(ENV_VARS))
    config.declare(Variable("COC_TEST_ONLY_VAR", "x", "a variable of a test"))
    assert config.env("COC_TEST_ONLY_VAR") == "x"
    config.declare(
        Variable("COC_TEST_ONLY_VAR", "x", "a variable of a test")
    )  # same declaration: fine
    with pytest.raises(ValueError, match="declared twice"):
        config.declare(Variable("COC_TEST_ONLY_VAR", "y", "another meaning"))
