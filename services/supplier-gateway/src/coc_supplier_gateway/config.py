"""The supplier gateway's own configuration: its variables, declared once here (README.md's table is
generated from them), and ``GatewayConfig``, the typed, frozen object built from them once at start
(``ServiceDefinition.config``; the runtime keeps it as ``runtime.config``). The supplier directory
is read and checked at the same time: a directory that cannot be used stops the start with every
problem named.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field

from coc_shared.config import (
    ConfigError,
    Variable,
    declare,
    env,
    integer,
    load,
    number,
    seconds_list,
    secret,
    supplier_codes,
    url,
)
from coc_shared.documents import MAX_LINK_HOURS, StoreSettings, link_secret, store_settings
from coc_shared.documents import store_variables as _store_variables

from .domain.directory import Directory, DirectoryError, load_directory


def document_url(value: str) -> str:
    value = url("http", "https")(value)
    if "{document_id}" not in value:
        raise ValueError("expected a URL with {document_id}, e.g. https://…/{document_id}")
    return value


STORE_VARIABLES = _store_variables(
    "SUPPLIER_GATEWAY",
    "certificates received from suppliers",
    key_name="CERTIFICATE_KEY",
    folder_name="CERTIFICATES_DIR",
    folder="var/supplier-certificates",
    bucket="coc-supplier-certificates",
)

VARIABLES = declare(
    Variable(
        "SUPPLIER_GATEWAY_DIRECTORY_PATH",
        "",
        "JSON file of the makers' COC suppliers (code, makers and brands served, channel, what "
        "each needs, turnaround in hours, whether it ships to the customer); defaults to the "
        "directory shipped in the package (docs/supplier-integration.md). Checked at start.",
    ),
    Variable(
        "SUPPLIER_GATEWAY_SUPPLIER_SECRET",
        None,
        "Master secret (32 characters at least) from which each supplier's HMAC-SHA256 key is "
        "derived (`coc-supplier-gateway supplier-key <code>` prints it for the supplier): it signs "
        "requests sent over HTTP and checks the suppliers' signed HTTP replies.",
        secret(32),
    ),
    Variable(
        "SUPPLIER_GATEWAY_DOCUMENT_LINK_SECRET",
        None,
        "Secret (32 characters at least) that signs the links to one document given to a "
        "supplier; the orders service, which serves them, holds the same value "
        "(ORDERS_DOCUMENT_LINK_SECRET).",
        link_secret,
    ),
    Variable(
        "SUPPLIER_GATEWAY_DOCUMENT_URL",
        "http://127.0.0.1:8001/v1/supplier-documents/{document_id}",
        "Public address of a document for suppliers: the orders service's "
        "`GET /v1/supplier-documents/{document_id}` (`{document_id}` is replaced; the signed "
        "query is added).",
        document_url,
    ),
    Variable(
        "SUPPLIER_GATEWAY_DOCUMENT_LINK_HOURS",
        "72",
        f"Hours a document link given to a supplier works (at most {MAX_LINK_HOURS}).",
        number(0.01),
    ),
    *STORE_VARIABLES,
    Variable(
        "SUPPLIER_GATEWAY_SENDER_POLL_SECONDS",
        "0.5",
        "Longest wait of the supplier request senders between two looks for requests to send.",
        number(0.01),
    ),
    Variable(
        "SUPPLIER_GATEWAY_SENDER_BATCH",
        "200",
        "Requests the amqp sender publishes per batch of publisher confirms.",
        integer(1, 5000),
    ),
    Variable(
        "SUPPLIER_GATEWAY_SEND_RETRY_SECONDS",
        "5,30,120,600,1800",
        "Seconds before a request that could not be sent is tried again, one per attempt "
        "(comma-separated; the last one repeats).",
        seconds_list,
    ),
    Variable(
        "SUPPLIER_GATEWAY_HTTP_TIMEOUT",
        "10",
        "Seconds a supplier's HTTP endpoint (and La Poste's API) has to answer one call.",
        number(0.1),
    ),
    Variable(
        "SUPPLIER_GATEWAY_HTTP_ATTEMPTS",
        "3",
        "Attempts of one HTTP call (backoff between them) before the send counts as failed.",
        integer(1, 10),
    ),
    Variable(
        "SUPPLIER_GATEWAY_BREAKER_FAILURES",
        "5",
        "Failed calls in a row after which a supplier's circuit breaker opens (its requests wait "
        "instead of each waiting for a timeout).",
        integer(1),
    ),
    Variable(
        "SUPPLIER_GATEWAY_BREAKER_RESET_SECONDS",
        "60",
        "Seconds an open circuit breaker waits before one call tries the supplier again.",
        number(0.1),
    ),
    Variable(
        "SUPPLIER_GATEWAY_DEADLINE_CHECK_SECONDS",
        "60",
        "Seconds between two looks for supplier requests past their due time.",
        number(0.05),
    ),
    Variable(
        "SUPPLIER_GATEWAY_LAPOSTE_URL",
        "https://api.laposte.fr",
        "Base URL of La Poste's API (tracking: `/suivi/v2/idships/{id}`).",
        url("http", "https"),
    ),
    Variable(
        "SUPPLIER_GATEWAY_LAPOSTE_KEY",
        None,
        "La Poste developer key (X-Okapi-Key) of the tracking API (Suivi v2); shipped "
        "certificates are not followed to their delivery without it.",
    ),
    Variable(
        "SUPPLIER_GATEWAY_TRACKING_POLL_SECONDS",
        "1800",
        "Seconds between two looks at a shipped certificate's tracking.",
        number(0.05),
    ),
)


def supplier_key(master: str, code: str, version: int = 1) -> str:
    """The HMAC-SHA256 key of supplier ``code`` (its ``key_version`` in the directory), derived from
    the master secret: each supplier holds only its own."""
    message = f"coc-supplier-key\n{code}\n{version}".encode()
    return hmac.new(master.encode(), message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class GatewayConfig:
    directory: Directory
    supplier_secret: str | None = field(default=None, repr=False)
    document_link_secret: str | None = field(default=None, repr=False)
    document_url: str = "http://127.0.0.1:8001/v1/supplier-documents/{document_id}"
    document_link_hours: float = 72.0
    store: StoreSettings = StoreSettings()
    sender_poll_seconds: float = 0.5
    sender_batch: int = 200
    send_retry_seconds: tuple[float, ...] = (5, 30, 120, 600, 1800)
    http_timeout: float = 10.0
    http_attempts: int = 3
    breaker_failures: int = 5
    breaker_reset_seconds: float = 60.0
    deadline_check_seconds: float = 60.0
    laposte_url: str = "https://api.laposte.fr"
    laposte_key: str | None = field(default=None, repr=False)
    tracking_poll_seconds: float = 1800.0

    def key_of(self, code: str) -> str | None:
        """Supplier ``code``'s HMAC key, or None when the master secret is not configured."""
        supplier = self.directory.get(code)
        if self.supplier_secret is None or supplier is None:
            return None
        return supplier_key(self.supplier_secret, code, supplier.key_version)

    def retry_delay(self, attempts: int) -> float:
        delays = self.send_retry_seconds or (5.0,)
        return delays[min(max(attempts, 1), len(delays)) - 1]

    @classmethod
    def from_env(cls, overrides: Mapping[str, str | None] | None = None) -> GatewayConfig:
        v = load(VARIABLES, overrides)
        try:
            directory = load_directory(v["SUPPLIER_GATEWAY_DIRECTORY_PATH"])
        except DirectoryError as exc:
            raise ConfigError(f"SUPPLIER_GATEWAY_DIRECTORY_PATH: {exc}") from None
        accounts = supplier_codes(env("BUS_SUPPLIER_CODES") or "")
        without = [c for c in directory.codes if c not in accounts]
        if without:
            raise ConfigError(
                f"SUPPLIER_GATEWAY_DIRECTORY_PATH: suppliers {', '.join(without)} have no broker "
                "user (add them to BUS_SUPPLIER_CODES)"
            )
        return cls(
            directory=directory,
            supplier_secret=v["SUPPLIER_GATEWAY_SUPPLIER_SECRET"],
            document_link_secret=v["SUPPLIER_GATEWAY_DOCUMENT_LINK_SECRET"],
            document_url=v["SUPPLIER_GATEWAY_DOCUMENT_URL"],
            document_link_hours=min(v["SUPPLIER_GATEWAY_DOCUMENT_LINK_HOURS"], MAX_LINK_HOURS),
            store=store_settings(v, STORE_VARIABLES),
            sender_poll_seconds=v["SUPPLIER_GATEWAY_SENDER_POLL_SECONDS"],
            sender_batch=v["SUPPLIER_GATEWAY_SENDER_BATCH"],
            send_retry_seconds=v["SUPPLIER_GATEWAY_SEND_RETRY_SECONDS"],
            http_timeout=v["SUPPLIER_GATEWAY_HTTP_TIMEOUT"],
            http_attempts=v["SUPPLIER_GATEWAY_HTTP_ATTEMPTS"],
            breaker_failures=v["SUPPLIER_GATEWAY_BREAKER_FAILURES"],
            breaker_reset_seconds=v["SUPPLIER_GATEWAY_BREAKER_RESET_SECONDS"],
            deadline_check_seconds=v["SUPPLIER_GATEWAY_DEADLINE_CHECK_SECONDS"],
            laposte_url=v["SUPPLIER_GATEWAY_LAPOSTE_URL"].rstrip("/"),
            laposte_key=v["SUPPLIER_GATEWAY_LAPOSTE_KEY"],
            tracking_poll_seconds=v["SUPPLIER_GATEWAY_TRACKING_POLL_SECONDS"],
        )
