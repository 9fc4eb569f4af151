"""The console's own configuration: its variables, declared once here (README.md's table is
generated from them), and ``ConsoleConfig``, built once at start (``runtime.config``).

The console is not an event service (no queue, no broker user, not in ``SERVICE_NAMES``): it
reads and acts only through the services' staff HTTP APIs, with staff tokens it signs for itself
with ``STAFF_TOKEN_PRIVATE_KEY`` (one service per token)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from coc_shared.config import (
    ENV_VARS,
    ConfigError,
    Variable,
    declare,
    integer,
    load,
    number,
    secret,
    url,
)

# The services whose staff APIs the console calls, with their local addresses (make run's ports).
SERVICES = {
    "orders": "http://127.0.0.1:8001",
    "payments": "http://127.0.0.1:8002",
    "supplier-gateway": "http://127.0.0.1:8003",
    "notifications": "http://127.0.0.1:8004",
    "gdpr": "http://127.0.0.1:8005",
}


def url_variable(service: str) -> str:
    return "CONSOLE_" + service.upper().replace("-", "_") + "_URL"


VARIABLES = declare(
    Variable("CONSOLE_PORT", "8006", "HTTP port of the support console.", integer(1, 65535)),
    *(
        Variable(
            url_variable(service),
            address,
            f"Base URL of the {service} service's staff API, as the support console reaches it.",
            url("http", "https"),
        )
        for service, address in SERVICES.items()
    ),
    Variable(
        "CONSOLE_IDLE_MINUTES",
        "15",
        "Minutes without a request after which a support console session ends (log in again).",
        integer(1, 720),
    ),
    Variable(
        "CONSOLE_HTTP_TIMEOUT",
        "5",
        "Seconds the support console waits for one answer of a service's staff API.",
        number(0.1),
    ),
    Variable(
        "CONSOLE_PROXY_COUNT",
        "0",
        "Reverse proxies in front of the support console whose X-Forwarded-For and "
        "X-Forwarded-Proto are trusted: behind a proxy ending TLS, set it, so that the session "
        "cookie is marked Secure.",
        integer(0, 10),
    ),
    Variable(
        "CONSOLE_STAFF_TOKEN_PRIVATE_KEY_FILE",
        "",
        "File holding STAFF_TOKEN_PRIVATE_KEY for the support console when the variable itself is "
        "not set (`make run` points it at its development key under `var/`).",
    ),
    Variable(
        "CONSOLE_AUDIT_KEY",
        None,
        "Secret (32 characters at least) of the HMAC-SHA-256 that the support console's audit log "
        "keeps of an e-mail address an admin searched orders by, instead of the address (without "
        "the secret, no list of addresses can be matched against it); the search answers 503 "
        "without it (`make run` makes one under `var/`).",
        secret(32),
    ),
)


@dataclass(frozen=True)
class ConsoleConfig:
    service_urls: dict  # service -> base URL of its staff API
    idle_minutes: int = 15
    http_timeout: float = 5.0
    staff_token_private_key: str | None = None  # None: service calls answer "not configured"
    proxy_count: int = 0
    audit_key: str | None = None  # None: the search of orders by e-mail is refused (503)

    @classmethod
    def from_env(cls, overrides: Mapping[str, str | None] | None = None) -> ConsoleConfig:
        v = load(
            {**VARIABLES, "STAFF_TOKEN_PRIVATE_KEY": ENV_VARS["STAFF_TOKEN_PRIVATE_KEY"]}, overrides
        )
        key = v["STAFF_TOKEN_PRIVATE_KEY"]
        path = v["CONSOLE_STAFF_TOKEN_PRIVATE_KEY_FILE"]
        if not key and path:
            try:
                with open(path) as f:
                    key = f.read().strip()
            except OSError as exc:
                raise ConfigError(f"CONSOLE_STAFF_TOKEN_PRIVATE_KEY_FILE: {exc}") from None
        return cls(
            service_urls={s: v[url_variable(s)].rstrip("/") for s in SERVICES},
            idle_minutes=v["CONSOLE_IDLE_MINUTES"],
            http_timeout=v["CONSOLE_HTTP_TIMEOUT"],
            staff_token_private_key=key or None,
            proxy_count=v["CONSOLE_PROXY_COUNT"],
            audit_key=v["CONSOLE_AUDIT_KEY"] or None,
        )
