"""Rate limits of the orders API, with flask-limiter (moving window).

The counters live in ORDERS_RATE_LIMIT_STORAGE: Redis in production, so that every gunicorn
worker and every instance of the service count against one budget; ``memory://`` (one process)
for embedded runs. While Redis cannot be reached, each process counts in memory and checks again
for Redis now and then (a limit is never lifted because its storage is down).

Every route that creates something (orders, accounts), logs in, makes the service write to an
e-mail address (sign-up, change of e-mail, deactivation) or takes a file is limited per client IP
(``request.remote_addr``: behind ORDERS_PROXY_COUNT trusted proxies, ProxyFix has put the client's
address there) and per account, e-mail address or order, each in its own counter (``RULES``).
A request over a limit answers 429 with ``Retry-After``, before its body is parsed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, g, request
from flask_limiter import Limiter

from coc_shared.tokens import TokenError

from ..config import OrdersConfig, RateLimit
from .common import customer_account

MESSAGE = "too many requests from this client; try again later"


def _digest(value: str) -> str:
    """Keys hold no address or token in clear, and have a bounded length."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def client_ip() -> str | None:
    return f"ip:{request.remote_addr or 'unknown'}"


def account() -> str | None:
    """The account of a valid customer bearer token (None without one, or with a bad one: the
    view answers 401 then, and the per-IP limit still counts)."""
    if "_limit_account" not in g:
        try:
            account_id = customer_account(required=False)
        except TokenError:
            account_id = None
        g._limit_account = f"account:{account_id}" if account_id else None
    return g._limit_account


def _body_email(field: str) -> str | None:
    body = request.get_json(silent=True, cache=True)
    value = body.get(field) if isinstance(body, dict) else None
    if not isinstance(value, str) or not value.strip():
        return None
    return f"email:{_digest(value.strip().lower())}"


def email() -> str | None:
    """The e-mail address the body names (sign-up, log-in, change of e-mail)."""
    return _body_email("email")


def order() -> str | None:
    order_id = (request.view_args or {}).get("order_id")
    return f"order:{_digest(str(order_id))}" if order_id else None


KEYS: dict[str, Callable[[], str | None]] = {
    "ip": client_ip,
    "account": account,
    "email": email,
    "order": order,
}


def accepted(response) -> bool:
    return response.status_code < 400


@dataclass(frozen=True)
class Rule:
    """``limit`` (an OrdersConfig field) on ``endpoint``, counted per each of ``per`` (KEYS);
    ``methods``: only those of the endpoint; ``accepted_only``: only answers below 400 count (a
    refused request wrote to nobody); ``only_with``: only requests that have this key (KEYS), e.g.
    a change of data that changes the e-mail address."""

    endpoint: str
    limit: str
    per: tuple[str, ...]
    methods: tuple[str, ...] | None = None
    accepted_only: bool = False
    only_with: str | None = None


RULES: tuple[Rule, ...] = (
    Rule("orders.place_order", "rate_limit_orders", ("ip", "account")),
    Rule("orders.upload_document", "rate_limit_uploads", ("ip", "order", "account")),
    Rule("accounts.create_account", "rate_limit_orders", ("ip",)),
    # a sign-up writes to its address (the owner of an address in use is told by mail)
    Rule("accounts.create_account", "rate_limit_mail", ("email",), accepted_only=True),
    Rule("accounts.login", "rate_limit_login", ("ip", "email")),
    Rule("accounts.confirm_email", "rate_limit_login", ("ip",)),
    Rule("accounts.Me", "rate_limit_changes", ("ip", "account"), methods=("PATCH",)),
    # a change of e-mail writes to the new address
    Rule(
        "accounts.Me",
        "rate_limit_mail",
        ("account", "email"),
        ("PATCH",),
        accepted_only=True,
        only_with="email",
    ),
    Rule("accounts.deactivate", "rate_limit_mail", ("ip", "account")),
)


def _key_prefix(runtime, config: OrdersConfig) -> str:
    return f"{runtime.settings.bus_prefix}{config.rate_limit_prefix}"


def install_rate_limits(app: Flask, runtime, config: OrdersConfig) -> Limiter:
    """One limiter per application, its RULES wrapped around the registered views."""
    storage = config.rate_limit_storage
    options = {}
    if not storage.startswith("memory:"):
        options = {"socket_timeout": 1, "socket_connect_timeout": 1}
    limiter = Limiter(
        key_func=client_ip,
        app=app,
        storage_uri=storage,
        storage_options=options,
        strategy="moving-window",
        key_prefix=_key_prefix(runtime, config),
        headers_enabled=True,
        in_memory_fallback_enabled=True,
        swallow_errors=True,
    )
    for rule in RULES:
        limit: RateLimit = getattr(config, rule.limit)
        view = app.view_functions[rule.endpoint]
        for kind in rule.per:
            key = KEYS[kind]
            needed = (key, KEYS[rule.only_with]) if rule.only_with else (key,)
            view = limiter.limit(
                limit.spec,
                key_func=key,
                exempt_when=lambda needed=needed: any(k() is None for k in needed),
                methods=list(rule.methods) if rule.methods else None,
                scope=f"{rule.limit}:{kind}",  # after the endpoint
                error_message=MESSAGE,
                deduct_when=accepted if rule.accepted_only else None,
            )(view)
        app.view_functions[rule.endpoint] = view
    return limiter
