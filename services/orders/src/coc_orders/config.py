"""The orders service's own configuration: its variables, declared once here (README.md's table is
generated from them), and ``OrdersConfig``, the typed, frozen object built from them once at start
(``ServiceDefinition.config``; the runtime keeps it as ``runtime.config``).

A value comes from the overrides (``Settings.extra``: tests, ``make run``), else the environment,
else the declared default; a value that cannot be read stops the start with an error naming the
variable and what it expects. The customers' token secret is the shared
``Settings.customer_token_secret`` (CUSTOMER_TOKEN_SECRET), not one of these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from coc_shared.config import Variable, declare, integer, load, number, url
from coc_shared.documents import StoreSettings, link_secret, store_variables
from coc_shared.limits import (
    RateLimit,
    key_prefix_variable,
    proxy_count_variable,
    rate_limit,
    storage_variable,
)

from .adapters.deadlines_file import load_deadlines
from .domain.stuck import Deadlines


def deadlines_file(value: str) -> Deadlines:
    """The deadlines of the file at ``value``, checked (``domain.stuck.parse_deadlines``)."""
    return load_deadlines(value)


def fragment_link(value: str) -> str:
    """A http(s) URL whose ``{token}`` is in the fragment (never sent to a server, so never in an
    access log)."""
    value = url("http", "https")(value)
    if "{token}" not in value.partition("#")[2]:
        raise ValueError(
            "expected a URL with {token} in its fragment, e.g. https://…/page#token={token}"
        )
    return value


# Where the customers' documents go, encrypted (coc_shared.documents: the same variables as every
# service that stores files, named after it)
STORE_VARIABLES = store_variables(
    "ORDERS",
    "customers' documents",
    key_name="DOCUMENT_KEY",
    folder_name="DOCUMENTS_DIR",
    folder="var/orders-documents",
    bucket="coc-orders-documents",
)

VARIABLES = declare(
    *STORE_VARIABLES,
    Variable(
        "ORDERS_BRANDS_PATH",
        None,
        "JSON file of the brands the orders service sells (price in euro cents VAT included, VAT "
        "rate, documents required, extra fields); defaults to the brand list shipped in the "
        "package.",
    ),
    storage_variable("ORDERS"),
    key_prefix_variable("ORDERS", "coc-orders"),
    Variable(
        "ORDERS_RATE_LIMIT_LOGIN",
        "10/minute",
        "Log-in attempts (`POST /v1/auth/token`) allowed per client IP and per e-mail address "
        "tried; also e-mail confirmations per client IP (`N/second|minute|hour|day`).",
        rate_limit,
    ),
    Variable(
        "ORDERS_RATE_LIMIT_ORDERS",
        "20/minute",
        "Orders (`POST /v1/orders`) allowed per client IP and per account, and account creations "
        "per client IP (`N/second|minute|hour|day`).",
        rate_limit,
    ),
    Variable(
        "ORDERS_RATE_LIMIT_UPLOADS",
        "30/hour",
        "Document uploads allowed per client IP, per order and per account "
        "(`N/second|minute|hour|day`).",
        rate_limit,
    ),
    Variable(
        "ORDERS_RATE_LIMIT_CHANGES",
        "30/hour",
        "Changes of an account's data (`PATCH /v1/accounts/me`) allowed per account and per "
        "client IP (`N/second|minute|hour|day`).",
        rate_limit,
    ),
    Variable(
        "ORDERS_RATE_LIMIT_MAIL",
        "5/hour",
        "Accepted requests that make the service write to an e-mail address (an account creation, "
        "a change of e-mail, a deactivation), per address and per account "
        "(`N/second|minute|hour|day`).",
        rate_limit,
    ),
    proxy_count_variable("ORDERS"),
    Variable(
        "ORDERS_PAYMENT_URL",
        "http://127.0.0.1:8002/v1/payments/{order_id}/checkout",
        "Link to pay an order given in the order's answer: the payments service's checkout (POST; "
        "`{order_id}` is replaced).",
        url("http", "https"),
    ),
    Variable(
        "ORDERS_EMAIL_CONFIRMATION_URL",
        "http://127.0.0.1:8001/v1/accounts/email-confirmation#token={token}",
        "Link sent to a new e-mail address to confirm an account's change of e-mail (`{token}` is "
        "replaced). The token goes in the fragment, which browsers never send: the page at the "
        "link (served by `GET /v1/accounts/email-confirmation`) posts it to the API.",
        fragment_link,
    ),
    Variable(
        "ORDERS_CERTIFICATE_URL",
        "http://127.0.0.1:8003/v1/orders/{order_id}/certificate",
        "Link to download an order's certificate given in the order's answer once the supplier "
        "delivered it: the supplier-gateway service's endpoint (GET with the order's credentials; "
        "`{order_id}` is replaced).",
        url("http", "https"),
    ),
    Variable(
        "ORDERS_INVOICES_URL",
        "http://127.0.0.1:8002/v1/orders/{order_id}/invoices",
        "Link to the list of an order's invoices and credit notes given in the order's answer: the "
        "payments service's customer endpoint (GET with the order's credentials; `{order_id}` is "
        "replaced), i.e. PAYMENTS_PUBLIC_URL followed by `/v1/orders/{order_id}/invoices`.",
        url("http", "https"),
    ),
    Variable(
        "ORDERS_VIES_URL",
        "https://ec.europa.eu/taxation_customs/vies/rest-api",
        "Base URL of the European Commission's VIES REST API, asked when an order is placed by a "
        "business of another EU member state with a VAT number (a valid one is invoiced under the "
        "reverse charge); `make run` points it at the VIES sandbox.",
        url("http", "https"),
    ),
    Variable(
        "ORDERS_VIES_TIMEOUT",
        "5",
        "Seconds the placing of an order waits for VIES; past it VIES counts as unavailable and "
        "the order is placed with French VAT (payments checks the number again later).",
        number(0.1),
    ),
    Variable(
        "ORDERS_DOCUMENT_LINK_SECRET",
        None,
        "Secret (32 characters at least) with which the supplier-gateway signs the links it gives "
        "suppliers to one document, and this service checks them "
        "(`GET /v1/supplier-documents/{document_id}`); the same value as "
        "SUPPLIER_GATEWAY_DOCUMENT_LINK_SECRET. Links answer 503 without it.",
        link_secret,
    ),
    Variable(
        "ORDERS_CUSTOMER_TOKEN_TTL",
        "7200",
        "Lifetime in seconds of a customer's bearer token.",
        integer(1),
    ),
    Variable(
        "ORDERS_DEADLINES_PATH",
        None,
        "JSON file of the deadline of each state of an order (hours unpaid, paid without "
        "documents, past the supplier's promise, shipped and not delivered…) past which it is "
        "reported stuck (`order.stuck`, `GET /v1/staff/orders/stuck`); checked at start; defaults "
        "to the file shipped in the package.",
        deadlines_file,
    ),
    Variable(
        "ORDERS_STUCK_CHECK_MINUTES",
        "15",
        "Minutes between two runs of the worker's stuck-order detector (`stuck` loop).",
        number(0.01),
    ),
    Variable(
        "ORDERS_IDEMPOTENCY_TTL_HOURS",
        "24",
        "Hours during which a retried `POST /v1/orders` with the same Idempotency-Key gets the "
        "first answer.",
        number(0),
    ),
)


@dataclass(frozen=True)
class OrdersConfig:
    brands_path: str | None = None
    document_key: bytes | None = field(default=None, repr=False)  # None: uploads answer 503
    document_store: str | None = None  # s3 | local | None (local in the embedded mode, else s3)
    documents_dir: str = "var/orders-documents"
    s3_endpoint_url: str | None = None
    s3_bucket: str = "coc-orders-documents"
    s3_region: str = "eu-west-3"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = field(default=None, repr=False)
    rate_limit_storage: str = "memory://"
    rate_limit_prefix: str = "coc-orders"
    rate_limit_login: RateLimit = RateLimit(10, 60)
    rate_limit_orders: RateLimit = RateLimit(20, 60)
    rate_limit_uploads: RateLimit = RateLimit(30, 3600)
    rate_limit_changes: RateLimit = RateLimit(30, 3600)
    rate_limit_mail: RateLimit = RateLimit(5, 3600)
    proxy_count: int = 0
    payment_url: str = "http://127.0.0.1:8002/v1/payments/{order_id}/checkout"
    email_confirmation_url: str = (
        "http://127.0.0.1:8001/v1/accounts/email-confirmation#token={token}"
    )
    certificate_url: str = "http://127.0.0.1:8003/v1/orders/{order_id}/certificate"
    invoices_url: str = "http://127.0.0.1:8002/v1/orders/{order_id}/invoices"
    vies_url: str = "https://ec.europa.eu/taxation_customs/vies/rest-api"
    vies_timeout: float = 5.0
    document_link_secret: str | None = field(default=None, repr=False)  # None: links answer 503
    customer_token_ttl: timedelta = timedelta(hours=2)
    idempotency_ttl: timedelta = timedelta(hours=24)
    deadlines: Deadlines = field(default_factory=load_deadlines)  # adapters.deadlines_file
    stuck_check: timedelta = timedelta(minutes=15)

    @property
    def store(self) -> StoreSettings:
        """Where the encrypted documents go (coc_shared.documents.open_store)."""
        return StoreSettings(
            self.document_key,
            self.document_store,
            self.documents_dir,
            self.s3_endpoint_url,
            self.s3_bucket,
            self.s3_region,
            self.s3_access_key_id,
            self.s3_secret_access_key,
        )

    @classmethod
    def from_env(cls, overrides: Mapping[str, str | None] | None = None) -> OrdersConfig:
        """Built from the declared variables; ConfigError names every one that cannot be read."""
        v = load(VARIABLES, overrides)
        return cls(
            brands_path=v["ORDERS_BRANDS_PATH"],
            document_key=v["ORDERS_DOCUMENT_KEY"],
            document_store=v["ORDERS_DOCUMENT_STORE"],
            documents_dir=v["ORDERS_DOCUMENTS_DIR"],
            s3_endpoint_url=v["ORDERS_S3_ENDPOINT_URL"],
            s3_bucket=v["ORDERS_S3_BUCKET"],
            s3_region=v["ORDERS_S3_REGION"],
            s3_access_key_id=v["ORDERS_S3_ACCESS_KEY_ID"],
            s3_secret_access_key=v["ORDERS_S3_SECRET_ACCESS_KEY"],
            rate_limit_storage=v["ORDERS_RATE_LIMIT_STORAGE"],
            rate_limit_prefix=v["ORDERS_RATE_LIMIT_PREFIX"],
            rate_limit_login=v["ORDERS_RATE_LIMIT_LOGIN"],
            rate_limit_orders=v["ORDERS_RATE_LIMIT_ORDERS"],
            rate_limit_uploads=v["ORDERS_RATE_LIMIT_UPLOADS"],
            rate_limit_changes=v["ORDERS_RATE_LIMIT_CHANGES"],
            rate_limit_mail=v["ORDERS_RATE_LIMIT_MAIL"],
            proxy_count=v["ORDERS_PROXY_COUNT"],
            payment_url=v["ORDERS_PAYMENT_URL"],
            email_confirmation_url=v["ORDERS_EMAIL_CONFIRMATION_URL"],
            certificate_url=v["ORDERS_CERTIFICATE_URL"],
            invoices_url=v["ORDERS_INVOICES_URL"],
            vies_url=v["ORDERS_VIES_URL"].rstrip("/"),
            vies_timeout=v["ORDERS_VIES_TIMEOUT"],
            document_link_secret=v["ORDERS_DOCUMENT_LINK_SECRET"],
            customer_token_ttl=timedelta(seconds=v["ORDERS_CUSTOMER_TOKEN_TTL"]),
            idempotency_ttl=timedelta(hours=v["ORDERS_IDEMPOTENCY_TTL_HOURS"]),
            deadlines=v["ORDERS_DEADLINES_PATH"] or load_deadlines(),
            stuck_check=timedelta(minutes=v["ORDERS_STUCK_CHECK_MINUTES"]),
        )
