"""The payments service's own configuration (environment variables, declared once here).

Tests and the embedded mode may pass the same names in ``Settings.extra``, which wins over the
environment. The customers' token secret is the shared ``Settings.customer_token_secret``."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from stdnum import bic as bic_number, iban as iban_number

from coc_shared.config import declare_env, env

VARIABLES: dict[str, tuple[str | None, str]] = {
    "PAYMENTS_PUBLIC_URL": ("http://127.0.0.1:8002",
                           "Public base URL of the payments API, where the bank and PayPal send their notifications."),
    "PAYMENTS_RETURN_URL": ("http://127.0.0.1:8001/orders/{order_id}/payment",
                           "Storefront page the customer comes back to after paying (`{order_id}` is replaced)."),
    "SYSTEMPAY_FORM_URL": ("https://paiement.systempay.fr/vads-payment/",
                          "URL of the bank's hosted payment page (Systempay / Lyra redirect form)."),
    "SYSTEMPAY_SITE_ID": (None, "Shop id (`vads_site_id`) at the bank's Systempay platform. Card checkout answers 503 without it."),
    "SYSTEMPAY_MODE": ("TEST", "`TEST` or `PRODUCTION`: `vads_ctx_mode` of the payment forms, and which key signs them."),
    "SYSTEMPAY_TEST_KEY": (None, "Systempay signing key of the TEST mode (HMAC-SHA-256)."),
    "SYSTEMPAY_PRODUCTION_KEY": (None, "Systempay signing key of the PRODUCTION mode (HMAC-SHA-256)."),
    "PAYPAL_API_URL": ("https://api-m.paypal.com",
                      "Base URL of PayPal's REST API (`https://api-m.sandbox.paypal.com` for the sandbox)."),
    "PAYPAL_CLIENT_ID": (None, "PayPal REST app client id (OAuth2 client credentials). PayPal checkout answers 503 without it."),
    "PAYPAL_CLIENT_SECRET": (None, "PayPal REST app secret."),
    "PAYPAL_WEBHOOK_ID": (None, "Id of our webhook at PayPal, part of every webhook's signed string. PayPal webhooks answer 401 without it."),
    "PAYPAL_CERT_URL_PREFIXES": ("https://api.paypal.com/,https://api.sandbox.paypal.com/,https://api-m.paypal.com/,https://api-m.sandbox.paypal.com/",
                                "Comma-separated URL prefixes a webhook's `PAYPAL-CERT-URL` must start with (PayPal's own hosts); certificates are fetched from nowhere else."),
    "TRANSFER_IBAN": (None, "IBAN of the company's account that customers pay transfers to (validated). Transfer checkout answers 503 without a valid one."),
    "TRANSFER_BIC": (None, "BIC of that account (validated)."),
    "TRANSFER_BENEFICIARY": ("COC", "Beneficiary name shown with the IBAN."),
    "QONTO_WEBHOOK_SECRET": (None, "Secret of the business bank's transaction webhook (HMAC-SHA-256 of `<t>.<body>`). Its callbacks answer 401 without it."),
    "QONTO_WEBHOOK_TOLERANCE_SECONDS": ("300", "Largest age (or advance) of a bank webhook's signed timestamp before it is rejected."),
    "PROVIDER_HTTP_TIMEOUT": ("10", "Seconds a call to a provider (PayPal) may take."),
}
declare_env(VARIABLES)


class NotConfigured(Exception):
    """A provider needed for this request has no (valid) configuration: 503."""


@dataclass(frozen=True)
class PaymentsConfig:
    values: dict

    @classmethod
    def from_settings(cls, settings) -> "PaymentsConfig":
        extra = getattr(settings, "extra", None) or {}
        values = {name: (extra[name] if name in extra else env(name)) for name in VARIABLES}
        return cls(values)

    def get(self, name: str) -> str | None:
        value = self.values.get(name)
        return value if value not in ("", None) else None

    def require(self, *names: str) -> list[str]:
        missing = [n for n in names if not self.get(n)]
        if missing:
            raise NotConfigured(f"not configured: {', '.join(missing)}")
        return [self.get(n) for n in names]

    @property
    def timeout(self) -> float:
        return float(self.get("PROVIDER_HTTP_TIMEOUT") or 10)

    @property
    def public_url(self) -> str:
        return (self.get("PAYMENTS_PUBLIC_URL") or "").rstrip("/")

    def return_url(self, order_id: str) -> str:
        return (self.get("PAYMENTS_RETURN_URL") or "").replace("{order_id}", order_id)

    def systempay_key(self, mode: str) -> str | None:
        return {"TEST": self.get("SYSTEMPAY_TEST_KEY"), "PRODUCTION": self.get("SYSTEMPAY_PRODUCTION_KEY")}.get(mode)

    def transfer_account(self) -> tuple[str, str, str]:
        iban, bic = self.require("TRANSFER_IBAN", "TRANSFER_BIC")
        if not iban_number.is_valid(iban):
            raise NotConfigured("TRANSFER_IBAN is not a valid IBAN")
        if not bic_number.is_valid(bic):
            raise NotConfigured("TRANSFER_BIC is not a valid BIC")
        return iban_number.compact(iban), bic_number.compact(bic), self.get("TRANSFER_BENEFICIARY") or ""

    def cert_url_allowed(self, url: str) -> bool:
        """True when ``url`` is under one of PayPal's hosts (scheme, host and port equal, path prefix)."""
        try:
            target = urlsplit(url)
        except ValueError:
            return False
        if target.username or target.password or not target.hostname:
            return False
        for prefix in (self.get("PAYPAL_CERT_URL_PREFIXES") or "").split(","):
            prefix = prefix.strip()
            if not prefix:
                continue
            allowed = urlsplit(prefix)
            if (target.scheme == allowed.scheme and target.hostname == allowed.hostname
                    and target.port == allowed.port and target.path.startswith(allowed.path or "/")
                    and ".." not in target.path):
                return True
        return False
