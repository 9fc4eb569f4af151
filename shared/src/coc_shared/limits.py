"""Rate limits of a service's API, with flask-limiter (moving window).

The counters live in the service's ``<SERVICE>_RATE_LIMIT_STORAGE``: Redis in production, so that
every gunicorn worker and every instance of the service count against one budget; ``memory://``
(one process) for embedded runs. While Redis cannot be reached, each process counts in memory and
checks again for Redis now and then (a limit is never lifted because its storage is down).

A service declares its ``Rule``s (which view, which limit of its configuration, counted per which
keys) and its key functions (``client_ip`` and ``account`` here, plus its own), and calls
``install_rate_limits`` once its views are registered. The client IP is ``request.remote_addr``:
behind ``<SERVICE>_PROXY_COUNT`` trusted proxies, ``trust_proxies`` (ProxyFix) has put the client's
address there. A request over a limit answers 429 with ``Retry-After`` (the shared JSON error),
before its body is parsed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from flask import Flask, g, request
from flask_limiter import Limiter

from .config import Variable, integer, url
from .http import request_account
from .tokens import TokenError

MESSAGE = "too many requests from this client; try again later"
KeyFunc = Callable[[], "str | None"]


# --------------------------------------------------------------------------- limits and variables
@dataclass(frozen=True)
class RateLimit:
    """``count`` requests in any (moving) window of ``seconds``, per client IP, account, address or
    order as each route says (the service's ``Rule``s)."""

    count: int
    seconds: int

    def __str__(self) -> str:
        return f"{self.count}/{self.seconds}s"

    @property
    def spec(self) -> str:
        """The limit in flask-limiter's notation, e.g. ``10 per 60 second``."""
        return f"{self.count} per {self.seconds} second"


_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def rate_limit(value: str) -> RateLimit:
    """``"10/minute"`` -> RateLimit(10, 60)."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(second|minute|hour|day)s?\s*", value)
    if not match:
        raise ValueError("expected a rate limit N/second|minute|hour|day, e.g. 10/minute")
    return RateLimit(int(match.group(1)), _UNITS[match.group(2)])


def storage_variable(prefix: str) -> Variable:
    """``<prefix>_RATE_LIMIT_STORAGE``: where the counters live."""
    return Variable(
        f"{prefix}_RATE_LIMIT_STORAGE",
        "memory://",
        "Counters of the rate limits (flask-limiter, moving window): `memory://` (per process: "
        "embedded runs only) or a `redis://` URL shared by every process of the service; while "
        "Redis cannot be reached, each process counts in memory.",
        url("memory", "redis", "rediss", "unix"),
    )


def key_prefix_variable(prefix: str, default: str) -> Variable:
    """``<prefix>_RATE_LIMIT_PREFIX``: the service's keys in a Redis other deployments may share."""
    return Variable(
        f"{prefix}_RATE_LIMIT_PREFIX",
        default,
        "Prefix of the rate limits' keys in their storage (after BUS_PREFIX), so that several "
        "deployments can share one Redis.",
    )


def proxy_count_variable(prefix: str) -> Variable:
    """``<prefix>_PROXY_COUNT``: the proxies whose X-Forwarded-For is trusted."""
    return Variable(
        f"{prefix}_PROXY_COUNT",
        "0",
        "Reverse proxies in front of the API whose X-Forwarded-For is trusted for the client IP "
        "(the rate limits count per client IP: behind a proxy, set it, or every client shares "
        "the proxy's budget).",
        integer(0),
    )


# --------------------------------------------------------------------------- keys
def digest(value: str) -> str:
    """Keys hold no address or token in clear, and have a bounded length."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def client_ip() -> str | None:
    return f"ip:{request.remote_addr or 'unknown'}"


def account() -> str | None:
    """The account of a valid customer bearer token (None without one, or with a bad one: the
    view answers 401 then, and the per-IP limit still counts)."""
    if "_limit_account" not in g:
        try:
            account_id = request_account(required=False)
        except TokenError:
            account_id = None
        g._limit_account = f"account:{account_id}" if account_id else None
    return g._limit_account


def view_arg(name: str, kind: str) -> KeyFunc:
    """A key of the URL's ``name`` (e.g. the order of ``/…/<order_id>/…``), digested."""

    def key() -> str | None:
        value = (request.view_args or {}).get(name)
        return f"{kind}:{digest(str(value))}" if value else None

    key.__name__ = kind
    return key


# --------------------------------------------------------------------------- rules
def accepted(response) -> bool:
    return response.status_code < 400


@dataclass(frozen=True)
class Rule:
    """``limit`` (a field of the service's configuration) on ``endpoint``, counted per each of
    ``per`` (the service's keys); ``methods``: only those of the endpoint; ``accepted_only``: only
    answers below 400 count (a refused request wrote to nobody); ``only_with``: only requests that
    have this key, e.g. a change of data that changes the e-mail address."""

    endpoint: str
    limit: str
    per: tuple[str, ...]
    methods: tuple[str, ...] | None = None
    accepted_only: bool = False
    only_with: str | None = None


def trust_proxies(app: Flask, count: int) -> None:
    """Behind ``count`` declared proxies, the client's address (and scheme, host) is the one they
    forwarded; without any, X-Forwarded-For is the client's word and counts for nothing."""
    if count > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)


def install_rate_limits(
    app: Flask,
    rules: tuple[Rule, ...],
    keys: Mapping[str, KeyFunc],
    limits: object,
    *,
    storage: str,
    key_prefix: str,
) -> Limiter:
    """One limiter per application, ``rules`` wrapped around its registered views; a rule's limit
    is the ``RateLimit`` attribute of ``limits`` (the service's configuration) it names."""
    options = {}
    if not storage.startswith("memory:"):
        # a Redis that does not answer must not hold requests: the fallback counts meanwhile
        options = {"socket_timeout": 1, "socket_connect_timeout": 1}
    limiter = Limiter(
        key_func=client_ip,
        app=app,
        storage_uri=storage,
        storage_options=options,
        strategy="moving-window",
        key_prefix=key_prefix,
        headers_enabled=True,
        in_memory_fallback_enabled=True,
        swallow_errors=True,
    )
    for rule in rules:
        limit: RateLimit = getattr(limits, rule.limit)
        view = app.view_functions[rule.endpoint]
        for kind in rule.per:
            key = keys[kind]
            needed = (key, keys[rule.only_with]) if rule.only_with else (key,)
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
