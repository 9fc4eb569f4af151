"""Rate limits of the payments API (coc_shared.limits: flask-limiter, moving window, counters in
PAYMENTS_RATE_LIMIT_STORAGE shared by every process of the service).

A checkout creates something at a provider (a signed card form, a PayPal order, a transfer's
reference), so it is limited per client IP (behind PAYMENTS_PROXY_COUNT trusted proxies, the
client's address), per order and, with a valid customer bearer token, per account. The providers'
notifications are not: they come from the providers' few addresses, already size-capped and
signed. The other routes are staff's.
"""

from __future__ import annotations

from flask import Flask
from flask_limiter import Limiter

from coc_shared import limits
from coc_shared.limits import KeyFunc, Rule

from ..config import PaymentsConfig

KEYS: dict[str, KeyFunc] = {
    "ip": limits.client_ip,
    "account": limits.account,
    "order": limits.view_arg("order_id", "order"),
}

RULES: tuple[Rule, ...] = (
    Rule("payments.checkout", "rate_limit_checkout", ("ip", "order", "account")),
)


def install_rate_limits(app: Flask, runtime, config: PaymentsConfig) -> Limiter:
    """Behind the declared proxies, the payments' RULES wrapped around the registered views."""
    limits.trust_proxies(app, config.proxy_count)
    return limits.install_rate_limits(
        app,
        RULES,
        KEYS,
        config,
        storage=config.rate_limit_storage,
        key_prefix=f"{runtime.settings.bus_prefix}{config.rate_limit_prefix}",
    )
