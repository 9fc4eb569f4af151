"""Rate limits of the orders API (coc_shared.limits: flask-limiter, moving window, counters in
ORDERS_RATE_LIMIT_STORAGE shared by every process of the service).

Every route that creates something (orders, accounts), logs in, makes the service write to an
e-mail address (sign-up, change of e-mail, deactivation) or takes a file is limited per client IP
(behind ORDERS_PROXY_COUNT trusted proxies, the client's address) and per account, e-mail address
or order, each in its own counter (``RULES``). A request over a limit answers 429 with
``Retry-After``, before its body is parsed.
"""

from __future__ import annotations

from flask import Flask, request
from flask_limiter import Limiter

from coc_shared import limits
from coc_shared.limits import KeyFunc, Rule

from ..config import OrdersConfig


def _body_email(field: str) -> str | None:
    body = request.get_json(silent=True, cache=True)
    value = body.get(field) if isinstance(body, dict) else None
    if not isinstance(value, str) or not value.strip():
        return None
    return f"email:{limits.digest(value.strip().lower())}"


def email() -> str | None:
    """The e-mail address the body names (sign-up, log-in, change of e-mail)."""
    return _body_email("email")


KEYS: dict[str, KeyFunc] = {
    "ip": limits.client_ip,
    "account": limits.account,
    "email": email,
    "order": limits.view_arg("order_id", "order"),
}

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
    # an export is mailed to the account's (or the order's) address
    Rule("privacy.export_account", "rate_limit_mail", ("ip", "account")),
    Rule("privacy.export_order", "rate_limit_mail", ("ip", "order")),
    Rule("privacy.deactivate_order", "rate_limit_mail", ("ip", "order")),
)


def install_rate_limits(app: Flask, runtime, config: OrdersConfig) -> Limiter:
    """The orders' RULES wrapped around the registered views (one limiter per application)."""
    return limits.install_rate_limits(
        app,
        RULES,
        KEYS,
        config,
        storage=config.rate_limit_storage,
        key_prefix=f"{runtime.settings.bus_prefix}{config.rate_limit_prefix}",
    )
