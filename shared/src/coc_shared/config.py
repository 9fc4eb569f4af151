"""Configuration from environment variables only.

Every variable the pipeline reads is declared once in ``ENV_VARS`` (name, default, meaning);
README.md documents the same list and a test keeps the two equal.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

# name -> (default, meaning). A default of None means "no default".
ENV_VARS: dict[str, tuple[str | None, str]] = {
    "DATABASE_URL": (
        "postgresql://root@127.0.0.1:5432/coc",
        "Database of the services. PostgreSQL: each service owns one schema named after it "
        "(orders, payments, supplier_gateway, notifications, gdpr) plus `ops` for parked messages. "
        "`sqlite:///path/main.db` selects SQLite files (embedded mode).",
    ),
    "PARKING_DATABASE_URL": (None, "Database of the parked-message store (`ops` schema); defaults to DATABASE_URL."),
    "RABBITMQ_URL": (
        "amqp://guest:guest@127.0.0.1:5672//",
        "Message broker. `memory://` selects kombu's in-process transport (embedded mode).",
    ),
    "BUS_PREFIX": ("", "Prefix of every exchange and queue name (isolates test runs; empty in production)."),
    "SERVICE_HOST": ("127.0.0.1", "Address the HTTP API binds to."),
    "ORDERS_PORT": ("8001", "HTTP port of the orders service."),
    "PAYMENTS_PORT": ("8002", "HTTP port of the payments service."),
    "SUPPLIER_GATEWAY_PORT": ("8003", "HTTP port of the supplier-gateway service."),
    "NOTIFICATIONS_PORT": ("8004", "HTTP port of the notifications service."),
    "GDPR_PORT": ("8005", "HTTP port of the gdpr service."),
    "LOG_LEVEL": ("INFO", "Minimum level of the JSON log lines."),
    "CONSUMER_PREFETCH": ("200", "Unacknowledged messages a consumer may hold (AMQP prefetch)."),
    "CONSUMER_BATCH_SIZE": ("100", "Messages a consumer handles in one database transaction (group commit)."),
    "RETRY_QUICK_ATTEMPTS": ("3", "Attempts of a failing handler inside one delivery, with a short backoff."),
    "RETRY_DELAYS": (
        "5,30,120,600",
        "Seconds of the delayed redeliveries after the quick attempts, comma-separated; then the message is parked.",
    ),
    "QUEUE_DELIVERY_LIMIT": (
        "10",
        "x-delivery-limit of the quorum queues: deliveries without ack (consumer crashes) before the broker "
        "dead-letters a message to the queue's `.dead` queue, from which it is parked.",
    ),
    "OUTBOX_BATCH_SIZE": ("500", "Outbox rows the relay publishes per batch of publisher confirms."),
    "OUTBOX_POLL_SECONDS": ("1.0", "Longest wait of the relay between two looks at the outbox (PostgreSQL NOTIFY wakes it sooner)."),
    "OUTBOX_CONFIRM_TIMEOUT": ("10", "Seconds the relay waits for the broker's confirms of a batch."),
    "OUTBOX_RETENTION_SECONDS": (
        "3600",
        "Seconds a sent outbox row is kept (for support) before the relay deletes it, personal part included.",
    ),
    "STAFF_TOKEN_SECRET": (None, "Secret that signs support-staff bearer tokens (HS256). Staff endpoints answer 503 without it."),
    "STAFF_TOKEN": (None, "Bearer token the support command line (`coc-support`) presents."),
    "CUSTOMER_TOKEN_SECRET": (
        None,
        "Secret that signs customers' bearer tokens (HS256; issued by orders, verified by every service "
        "that serves customers). Customer endpoints answer 503 without it.",
    ),
    "RUN_DATA_DIR": ("var", "Folder of the SQLite files and logs of `make run`'s embedded mode."),
}


def declare_env(variables: dict[str, tuple[str | None, str]]) -> None:
    """A service declares its own variables (name -> (default, meaning)) at import time; they join
    ENV_VARS, so ``env()`` accepts them and the README test requires them to be documented."""
    for name, spec in variables.items():
        if name in ENV_VARS and ENV_VARS[name] != spec:
            raise ValueError(f"environment variable {name} declared twice with different meanings")
        ENV_VARS[name] = spec


def env(name: str) -> str | None:
    if name not in ENV_VARS:
        raise KeyError(f"undeclared environment variable {name}; add it to ENV_VARS and README.md")
    value = os.environ.get(name)
    if value is None or value == "":
        if name == "BUS_PREFIX":
            return value or ""
        return ENV_VARS[name][0]
    return value


SERVICE_NAMES = ("orders", "payments", "supplier-gateway", "notifications", "gdpr")


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
    staff_token_secret: str | None = None
    customer_token_secret: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def schema(self) -> str:
        return schema_name(self.service)

    @property
    def embedded(self) -> bool:
        return self.rabbitmq_url.startswith("memory://")

    @classmethod
    def from_env(cls, service: str, **overrides) -> "Settings":
        database_url = env("DATABASE_URL")
        values = dict(
            service=service,
            database_url=database_url,
            parking_database_url=env("PARKING_DATABASE_URL") or database_url,
            rabbitmq_url=env("RABBITMQ_URL"),
            bus_prefix=env("BUS_PREFIX"),
            http_host=env("SERVICE_HOST"),
            http_port=int(env(port_variable(service))) if port_variable(service) in ENV_VARS else 8000,
            log_level=env("LOG_LEVEL"),
            prefetch=int(env("CONSUMER_PREFETCH")),
            batch_size=int(env("CONSUMER_BATCH_SIZE")),
            quick_attempts=int(env("RETRY_QUICK_ATTEMPTS")),
            retry_delays=tuple(float(x) for x in env("RETRY_DELAYS").split(",") if x.strip()),
            delivery_limit=int(env("QUEUE_DELIVERY_LIMIT")),
            outbox_batch_size=int(env("OUTBOX_BATCH_SIZE")),
            outbox_poll_seconds=float(env("OUTBOX_POLL_SECONDS")),
            outbox_confirm_timeout=float(env("OUTBOX_CONFIRM_TIMEOUT")),
            outbox_retention_seconds=float(env("OUTBOX_RETENTION_SECONDS")),
            staff_token_secret=env("STAFF_TOKEN_SECRET"),
            customer_token_secret=env("CUSTOMER_TOKEN_SECRET"),
        )
        values.update(overrides)
        return cls(**values)
