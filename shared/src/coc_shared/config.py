"""Configuration from environment variables only.

Every variable the pipeline reads is declared once, as a ``Variable`` (name, default, meaning and
how its text is read): the shared ones here, a service's own in its ``config.py`` through
``declare``. README.md's table is generated from the declarations (``python -m coc_shared.envdoc``)
and a test keeps the two equal. Each service builds one frozen configuration object from them at
start (``Settings`` for the shared part); a value that cannot be read stops the start with an
error naming the variable and what it expects.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


class ConfigError(ValueError):
    """One or more variables hold a value that cannot be used (each named with what it expects)."""


# Readers: text -> value, raising ValueError("expected ...") -----------------------------------


def text(value: str) -> str:
    return value


def integer(minimum: int | None = None, maximum: int | None = None) -> Callable[[str], int]:
    def read(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise ValueError("expected a whole number") from None
        if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
            raise ValueError(
                f"expected a whole number from {minimum} to {maximum}"
                if maximum is not None
                else f"expected a whole number of at least {minimum}"
            )
        return number

    return read


def number(minimum: float | None = None) -> Callable[[str], float]:
    def read(value: str) -> float:
        try:
            result = float(value)
        except ValueError:
            raise ValueError("expected a number") from None
        if minimum is not None and result < minimum:
            raise ValueError(f"expected a number of at least {minimum}")
        return result

    return read


def seconds_list(value: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in value.split(",") if x.strip())
    except ValueError:
        raise ValueError("expected comma-separated numbers of seconds, e.g. 5,30,120") from None
    if any(v < 0 for v in values):
        raise ValueError("expected comma-separated numbers of seconds >= 0")
    return values


def one_of(*choices: str) -> Callable[[str], str]:
    def read(value: str) -> str:
        if value not in choices:
            raise ValueError(f"expected one of: {', '.join(choices)}")
        return value

    return read


def url(*schemes: str) -> Callable[[str], str]:
    def read(value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in schemes or not (parts.netloc or parts.path or value.endswith("://")):
            raise ValueError(
                f"expected a URL starting with {' or '.join(s + '://' for s in schemes)}"
            )
        return value

    return read


def secret(min_length: int) -> Callable[[str], str]:
    def read(value: str) -> str:
        if len(value) < min_length:
            raise ValueError(f"expected a secret of at least {min_length} characters")
        return value

    return read


def kek(value: str) -> str:
    from .keystore import decode_kek

    decode_kek(value)
    return value.strip()


def boolean(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def ed25519_key(value: str) -> str:
    import base64
    import binascii

    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ValueError("expected the base64 of a 32-byte Ed25519 key (coc-support keygen)")
    return value.strip()


SUPPLIER_CODE = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")


def supplier_codes(value: str) -> tuple[str, ...]:
    """Comma-separated codes of the makers' COC suppliers (``broker_users``)."""
    codes = tuple(c.strip() for c in value.split(",") if c.strip())
    bad = [c for c in codes if not SUPPLIER_CODE.match(c) or c == "gateway"]
    if bad:
        raise ValueError(
            "expected comma-separated supplier codes (lower-case letters, digits and -; not "
            f"'gateway'): {', '.join(bad)}"
        )
    return codes


def log_level(value: str) -> str:
    level = value.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError("expected DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


@dataclass(frozen=True)
class Variable:
    name: str
    default: str | None  # None: no default (the value is None when unset)
    meaning: str
    read: Callable[[str], Any] = text

    def value(self, raw: str | None) -> Any:
        """The typed value of ``raw`` (the default when unset or empty); ConfigError if
        unreadable."""
        if raw is None or raw == "":
            raw = self.default
        if raw is None:
            return None
        try:
            return self.read(raw)
        except ValueError as exc:
            shown = (
                raw
                if len(raw) <= 60 and "SECRET" not in self.name and "KEY" not in self.name
                else "…"
            )
            raise ConfigError(f"{self.name}={shown!r}: {exc}") from None


ENV_VARS: dict[str, Variable] = {}
DECLARED_BY: dict[str, str] = {}  # variable name -> module that declared it


def declare(*variables: Variable) -> dict[str, Variable]:
    """Declare variables (at import time): they join ENV_VARS, so ``env()`` accepts them and the
    README test requires them to be documented. Returns them by name."""
    for variable in variables:
        known = ENV_VARS.get(variable.name)
        if known is not None and (known.default, known.meaning) != (
            variable.default,
            variable.meaning,
        ):
            raise ValueError(
                f"environment variable {variable.name} declared twice with different meanings"
            )
        ENV_VARS[variable.name] = variable
        # The README lists variables by declaring package, whatever order tests imported them in.
        DECLARED_BY.setdefault(variable.name, sys._getframe(1).f_globals.get("__name__", ""))
    return {v.name: v for v in variables}


def load(
    variables: Iterable[Variable] | Mapping[str, Variable],
    overrides: Mapping[str, str] | None = None,
) -> dict:
    """Typed values of ``variables`` from ``overrides`` (tests, ``make run``), else the environment,
    else their defaults. Raises one ConfigError naming every variable that cannot be read."""
    if isinstance(variables, Mapping):
        variables = variables.values()
    overrides = overrides or {}
    values, problems = {}, []
    for variable in variables:
        raw = (
            overrides[variable.name]
            if variable.name in overrides
            else os.environ.get(variable.name)
        )
        try:
            values[variable.name] = variable.value(raw)
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError("invalid configuration: " + "; ".join(problems))
    return values


_SHARED = declare(
    Variable(
        "DATABASE_URL",
        "postgresql://root@127.0.0.1:5432/coc",
        "Database of the services. PostgreSQL: each service owns one schema named after it "
        "(orders, payments, supplier_gateway, notifications, gdpr) plus `ops` for parked messages. "
        "`sqlite:///path/main.db` selects SQLite files (embedded mode).",
        url("postgresql", "postgres", "postgresql+psycopg", "sqlite"),
    ),
    Variable(
        "PARKING_DATABASE_URL",
        None,
        "Database of the parked-message store (`ops` schema); defaults to DATABASE_URL.",
        url("postgresql", "postgres", "postgresql+psycopg", "sqlite"),
    ),
    Variable(
        "RABBITMQ_URL",
        "amqp://guest:guest@127.0.0.1:5672//",
        "Message broker. `memory://` selects kombu's in-process transport (embedded mode).",
        url("amqp", "amqps", "memory"),
    ),
    Variable(
        "BUS_PREFIX",
        None,
        "Prefix of every exchange and queue name (isolates test runs; empty in production).",
    ),
    Variable(
        "RABBITMQ_CA_FILE",
        None,
        "CA certificate file that the broker's TLS certificate must chain to (`amqps://`; the "
        "host name is always checked); empty means the system's CAs.",
    ),
    Variable(
        "BUS_VERIFY_PUBLISHERS",
        "true",
        "Whether a consumer refuses (parks as `ForgedEvent`) an event whose validated `user_id` is "
        "not the RabbitMQ user of the service the catalogue names as its producer. Keep `true` "
        "wherever each service has its own broker user; the embedded mode never checks.",
        boolean,
    ),
    Variable(
        "BUS_SUPPLIER_CODES",
        "psa-coc,renault-coc,vag-coc,bmw-coc,mercedes-coc",
        "Codes of the makers' COC suppliers whose integrations get a RabbitMQ user "
        "`coc-supplier-<code>` (comma-separated; passwords from RABBITMQ_SUPPLIER_<CODE>_PASSWORD "
        "in docker-compose): every supplier of the supplier gateway's directory.",
        supplier_codes,
    ),
    Variable("SERVICE_HOST", "127.0.0.1", "Address the HTTP API binds to."),
    Variable("ORDERS_PORT", "8001", "HTTP port of the orders service.", integer(1, 65535)),
    Variable("PAYMENTS_PORT", "8002", "HTTP port of the payments service.", integer(1, 65535)),
    Variable(
        "SUPPLIER_GATEWAY_PORT",
        "8003",
        "HTTP port of the supplier-gateway service.",
        integer(1, 65535),
    ),
    Variable(
        "NOTIFICATIONS_PORT", "8004", "HTTP port of the notifications service.", integer(1, 65535)
    ),
    Variable("GDPR_PORT", "8005", "HTTP port of the gdpr service.", integer(1, 65535)),
    Variable(
        "WORKER_PORT",
        None,
        "HTTP port of a worker's `/metrics`, `/healthz` and `/readyz`; unset means the service's "
        "API port + 1000 (orders 9001, payments 9002 …); 0 turns the listener off.",
        integer(0, 65535),
    ),
    Variable(
        "PROMETHEUS_MULTIPROC_DIR",
        None,
        "Folder where each process of a multi-process API (gunicorn) writes its metrics, so that "
        "`/metrics` adds them up (read by prometheus_client; the images set it).",
    ),
    Variable(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "",
        "OpenTelemetry collector the spans are sent to (OTLP over HTTP, e.g. "
        "`http://otel-collector:4318`; read by the exporter with its other `OTEL_EXPORTER_OTLP_*` "
        "variables); empty: spans are made, their `traceparent` travels in the events' headers, "
        "and nothing is exported (`coc_shared.tracing`).",
    ),
    Variable("LOG_LEVEL", "INFO", "Minimum level of the JSON log lines.", log_level),
    Variable(
        "CONSUMER_PREFETCH",
        "200",
        "Unacknowledged messages a consumer may hold (AMQP prefetch).",
        integer(1),
    ),
    Variable(
        "CONSUMER_BATCH_SIZE",
        "100",
        "Messages a consumer handles in one database transaction (group commit).",
        integer(1),
    ),
    Variable(
        "RETRY_QUICK_ATTEMPTS",
        "3",
        "Attempts of a failing handler inside one delivery, with a short backoff.",
        integer(1),
    ),
    Variable(
        "RETRY_DELAYS",
        "5,30,120,600",
        "Seconds of the delayed redeliveries after the quick attempts, comma-separated; then the "
        "message is parked.",
        seconds_list,
    ),
    Variable(
        "QUEUE_DELIVERY_LIMIT",
        "10",
        "x-delivery-limit of the quorum queues: deliveries without ack (consumer crashes) before "
        "the broker dead-letters a message to the queue's `.dead` queue, from which it is parked.",
        integer(1),
    ),
    Variable(
        "OUTBOX_BATCH_SIZE",
        "500",
        "Outbox rows the relay publishes per batch of publisher confirms.",
        integer(1),
    ),
    Variable(
        "OUTBOX_POLL_SECONDS",
        "1.0",
        "Longest wait of the relay between two looks at the outbox (PostgreSQL NOTIFY wakes it "
        "sooner).",
        number(0.01),
    ),
    Variable(
        "OUTBOX_CONFIRM_TIMEOUT",
        "10",
        "Seconds the relay waits for the broker's confirms of a batch.",
        number(0.1),
    ),
    Variable(
        "OUTBOX_RETENTION_SECONDS",
        "3600",
        "Seconds a sent outbox row is kept (for support) before the relay deletes it, personal "
        "part included.",
        number(0),
    ),
    Variable(
        "STAFF_TOKEN_PUBLIC_KEY",
        None,
        "Ed25519 public key (base64 of its 32 bytes) that verifies support-staff bearer tokens; "
        "every service holds it. Staff endpoints answer 503 without it.",
        ed25519_key,
    ),
    Variable(
        "STAFF_TOKEN_PRIVATE_KEY",
        None,
        "Ed25519 private key (base64 of its 32 bytes) that signs staff tokens: only for an admin's "
        "`coc-support issue-token` (and the support console), never given to a service.",
        ed25519_key,
    ),
    Variable(
        "STAFF_TOKEN", None, "Bearer token the support command line (`coc-support`) presents."
    ),
    Variable(
        "CUSTOMER_TOKEN_SECRET",
        None,
        "Secret that signs customers' bearer tokens (HS256; issued by orders, verified by every "
        "service that serves customers). Customer endpoints answer 503 without it.",
        secret(32),
    ),
    Variable(
        "PERSONAL_DATA_KEK",
        None,
        "Key-encryption key (base64 of 32 random bytes, `openssl rand -base64 32`) that wraps the "
        "data keys sealing every event's `personal` part (`ops.subject_keys`, one key per account "
        "or guest order, destroyed on erasure); every service holds the same. Unset: sealing is "
        "off and personal parts travel in clear (development only; docker-compose requires it).",
        kek,
    ),
    Variable(
        "PERSONAL_DATA_KEK_PREVIOUS",
        None,
        "The key-encryption key before a rotation, still unwrapping data keys until "
        "`python -m coc_shared.keystore rotate` has rewrapped them all with PERSONAL_DATA_KEK.",
        kek,
    ),
    Variable(
        "PERSONAL_DATA_KEY_CACHE_SECONDS",
        "30",
        "Seconds a process keeps an unwrapped data key (or the fact that it is destroyed) in "
        "memory; another process's erasure is seen within that time.",
        number(0),
    ),
    Variable(
        "CI",
        None,
        "Set by continuous integration (`.ci/run` sets `true`): the test suite then fails where it "
        "cannot reach PostgreSQL, RabbitMQ or create the broker's users, instead of running less.",
    ),
    Variable(
        "RUN_DATA_DIR", "var", "Folder of the SQLite files and logs of `make run`'s embedded mode."
    ),
)


def env(name: str) -> str | None:
    """The raw text of a declared variable (its default when unset or empty)."""
    if name not in ENV_VARS:
        raise KeyError(f"undeclared environment variable {name}; declare it (config.declare)")
    value = os.environ.get(name)
    if value is None or value == "":
        return ENV_VARS[name].default
    return value


SERVICE_NAMES = ("orders", "payments", "supplier-gateway", "notifications", "gdpr")
# Applications without events (no queue, no broker user, no topic permission): the support console.
# make run starts them and README documents their variables, but nothing derived from the event
# services (broker users, compose's per-service checks) counts them.
APPLICATIONS = ("console",)


def port_variable(service: str) -> str:
    return service.upper().replace("-", "_") + "_PORT"


def schema_name(service: str) -> str:
    """Database schema owned by a service (identifiers cannot contain '-')."""
    return service.replace("-", "_")


@dataclass(frozen=True)
class Settings:
    service: str
    database_url: str
    parking_database_url: str
    rabbitmq_url: str
    bus_prefix: str = ""
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    log_level: str = "INFO"
    prefetch: int = 200
    batch_size: int = 100
    quick_attempts: int = 3
    retry_delays: tuple[float, ...] = (5.0, 30.0, 120.0, 600.0)
    delivery_limit: int = 10
    outbox_batch_size: int = 500
    outbox_poll_seconds: float = 1.0
    outbox_confirm_timeout: float = 10.0
    outbox_retention_seconds: float = 3600.0
    staff_token_public_key: str | None = None
    customer_token_secret: str | None = None
    rabbitmq_ca_file: str | None = None
    verify_publishers: bool = True
    worker_port: int | None = None  # None: http_port + 1000; 0: no listener
    personal_data_kek: str | None = None  # None: the personal parts are not sealed
    personal_data_kek_previous: str | None = None
    personal_data_key_cache_seconds: float = 30.0
    extra: dict = field(default_factory=dict)

    @property
    def schema(self) -> str:
        return schema_name(self.service)

    @property
    def embedded(self) -> bool:
        return self.rabbitmq_url.startswith("memory://")

    @classmethod
    def from_env(cls, service: str, **overrides) -> Settings:
        """The shared settings of ``service``; ``overrides`` are typed values of fields (tests)."""
        names = [
            n
            for n in _SHARED
            if (not n.endswith("_PORT") or n == "WORKER_PORT")
            and n
            not in (
                "STAFF_TOKEN",
                "STAFF_TOKEN_PRIVATE_KEY",
                "RUN_DATA_DIR",
                "CI",
                "PROMETHEUS_MULTIPROC_DIR",
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "BUS_SUPPLIER_CODES",
            )
        ]
        port = port_variable(service)
        v = load([ENV_VARS[n] for n in names] + ([ENV_VARS[port]] if port in ENV_VARS else []))
        values = dict(
            service=service,
            database_url=v["DATABASE_URL"],
            parking_database_url=v["PARKING_DATABASE_URL"] or v["DATABASE_URL"],
            rabbitmq_url=v["RABBITMQ_URL"],
            bus_prefix=v["BUS_PREFIX"] or "",
            http_host=v["SERVICE_HOST"],
            http_port=v.get(port, 8000),
            log_level=v["LOG_LEVEL"],
            prefetch=v["CONSUMER_PREFETCH"],
            batch_size=v["CONSUMER_BATCH_SIZE"],
            quick_attempts=v["RETRY_QUICK_ATTEMPTS"],
            retry_delays=v["RETRY_DELAYS"],
            delivery_limit=v["QUEUE_DELIVERY_LIMIT"],
            outbox_batch_size=v["OUTBOX_BATCH_SIZE"],
            outbox_poll_seconds=v["OUTBOX_POLL_SECONDS"],
            outbox_confirm_timeout=v["OUTBOX_CONFIRM_TIMEOUT"],
            outbox_retention_seconds=v["OUTBOX_RETENTION_SECONDS"],
            staff_token_public_key=v["STAFF_TOKEN_PUBLIC_KEY"],
            customer_token_secret=v["CUSTOMER_TOKEN_SECRET"],
            rabbitmq_ca_file=v["RABBITMQ_CA_FILE"],
            verify_publishers=v["BUS_VERIFY_PUBLISHERS"],
            worker_port=v["WORKER_PORT"],
            personal_data_kek=v["PERSONAL_DATA_KEK"],
            personal_data_kek_previous=v["PERSONAL_DATA_KEK_PREVIOUS"],
            personal_data_key_cache_seconds=v["PERSONAL_DATA_KEY_CACHE_SECONDS"],
        )
        values.update(overrides)
        return cls(**values)
