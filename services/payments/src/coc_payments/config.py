"""The payments service's own configuration: its environment variables, declared once here, and
the typed, frozen ``PaymentsConfig`` built from them once per runtime (``runtime.config``, through
``ServiceDefinition.config``). Tests and the embedded mode pass the same names in
``Settings.extra``, which wins over the environment.

A value that cannot be read (a malformed URL, an invalid IBAN, an unknown mode...) stops the start
with an error naming the variable. A provider setting left unset is not an error: that provider's
checkout answers 503 (``NotConfigured``) and its notifications 401, as the README says. The
customers' token secret is the shared ``Settings.customer_token_secret``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from stdnum.exceptions import ValidationError

from coc_shared.config import (
    ConfigError,
    Variable,
    declare,
    integer,
    load,
    number,
    one_of,
    text,
    url,
)
from coc_shared.documents import aes_256_key
from coc_shared.limits import (
    RateLimit,
    key_prefix_variable,
    proxy_count_variable,
    rate_limit,
    storage_variable,
)
from coc_shared.transfer import bic, iban


# Readers of our own (text -> value, ValueError("expected ...") naming what is expected); the
# account's IBAN and BIC are read by coc_shared.transfer's (notifications reads the same account)
def url_prefixes(value: str) -> tuple[str, ...]:
    """Comma-separated http(s) URL prefixes, each with a host."""
    prefixes = tuple(p.strip() for p in value.split(",") if p.strip())
    for prefix in prefixes:
        parts = urlsplit(prefix)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(
                "expected comma-separated URL prefixes starting with https:// (or http://)"
            )
    return prefixes


def siren(value: str) -> str:
    from stdnum.fr import siren as siren_number

    try:
        return siren_number.validate(value)
    except ValidationError:
        raise ValueError("expected a valid SIREN (9 digits), e.g. 732829320") from None


def eu_vat_number(value: str) -> str:
    from stdnum.eu import vat as eu_vat

    try:
        return eu_vat.validate(value)
    except ValidationError:
        raise ValueError("expected a valid intra-EU VAT number, e.g. FR44732829320") from None


def account_number(value: str) -> str:
    if not value.isdigit() or not 3 <= len(value) <= 20:
        raise ValueError(
            "expected an account number of the chart of accounts (digits), e.g. 411000"
        )
    return value


def bank_accounts(value: str) -> dict[str, str]:
    """``provider=account`` pairs, comma-separated."""
    accounts = {}
    for part in (p.strip() for p in value.split(",") if p.strip()):
        provider, _, account = part.partition("=")
        if not provider.strip() or not account.strip().isdigit():
            raise ValueError("expected provider=account pairs, e.g. systempay=512100,paypal=512200")
        accounts[provider.strip()] = account.strip()
    return accounts


HTTP_URL = url("http", "https")

VARIABLES = declare(
    Variable(
        "COC_ENVIRONMENT",
        "production",
        "`production` or `development` (`make run` sets it): in production the payments service "
        "refuses to start with the payment sandboxes' settings (a provider URL on 127.0.0.1 or "
        "localhost, a `sandbox-` key).",
        one_of("production", "development"),
    ),
    Variable(
        "PAYMENTS_PUBLIC_URL",
        "http://127.0.0.1:8002",
        "Public base URL of the payments API, where the bank and PayPal send their notifications.",
        HTTP_URL,
    ),
    Variable(
        "PAYMENTS_RETURN_URL",
        "http://127.0.0.1:8001/orders/{order_id}/payment",
        "Storefront page the customer comes back to after paying (`{order_id}` is replaced).",
        HTTP_URL,
    ),
    Variable(
        "SYSTEMPAY_FORM_URL",
        "https://paiement.systempay.fr/vads-payment/",
        "URL of the bank's hosted payment page (Systempay / Lyra redirect form).",
        HTTP_URL,
    ),
    Variable(
        "SYSTEMPAY_SITE_ID",
        None,
        "Shop id (`vads_site_id`) at the bank's Systempay platform. Card checkout answers 503 "
        "without it.",
        text,
    ),
    Variable(
        "SYSTEMPAY_MODE",
        "TEST",
        "`TEST` or `PRODUCTION`: `vads_ctx_mode` of the payment forms, and which key signs them.",
        one_of("TEST", "PRODUCTION"),
    ),
    Variable(
        "SYSTEMPAY_TEST_KEY", None, "Systempay signing key of the TEST mode (HMAC-SHA-256).", text
    ),
    Variable(
        "SYSTEMPAY_PRODUCTION_KEY",
        None,
        "Systempay signing key of the PRODUCTION mode (HMAC-SHA-256).",
        text,
    ),
    Variable(
        "PAYPAL_API_URL",
        "https://api-m.paypal.com",
        "Base URL of PayPal's REST API (`https://api-m.sandbox.paypal.com` for the sandbox).",
        HTTP_URL,
    ),
    Variable(
        "PAYPAL_CLIENT_ID",
        None,
        "PayPal REST app client id (OAuth2 client credentials). PayPal checkout answers 503 "
        "without it.",
        text,
    ),
    Variable("PAYPAL_CLIENT_SECRET", None, "PayPal REST app secret.", text),
    Variable(
        "PAYPAL_WEBHOOK_ID",
        None,
        "Id of our webhook at PayPal, part of every webhook's signed string. PayPal webhooks "
        "answer 401 without it.",
        text,
    ),
    Variable(
        "PAYPAL_CERT_URL_PREFIXES",
        "https://api.paypal.com/,https://api.sandbox.paypal.com/,https://api-m.paypal.com/,"
        "https://api-m.sandbox.paypal.com/",
        "Comma-separated URL prefixes a webhook's `PAYPAL-CERT-URL` must start with (PayPal's own "
        "hosts); certificates are fetched from nowhere else.",
        url_prefixes,
    ),
    Variable(
        "TRANSFER_IBAN",
        None,
        "IBAN of the company's account that customers pay transfers to. Transfer checkout answers "
        "503 without it; an invalid one stops the start.",
        iban,
    ),
    Variable("TRANSFER_BIC", None, "BIC of that account (an invalid one stops the start).", bic),
    Variable("TRANSFER_BENEFICIARY", "COC", "Beneficiary name shown with the IBAN.", text),
    Variable(
        "QONTO_WEBHOOK_SECRET",
        None,
        "Secret of the business bank's transaction webhook (HMAC-SHA-256 of `<t>.<body>`). Its "
        "callbacks answer 401 without it.",
        text,
    ),
    Variable(
        "QONTO_WEBHOOK_TOLERANCE_SECONDS",
        "300",
        "Largest age (or advance) of a bank webhook's signed timestamp before it is rejected.",
        number(0),
    ),
    Variable(
        "SYSTEMPAY_API_URL",
        "https://api.systempay.fr",
        "Base URL of Systempay's REST API (refunds: `/api-payment/V4/Transaction/CancelOrRefund`).",
        HTTP_URL,
    ),
    Variable(
        "SYSTEMPAY_REST_KEY",
        None,
        "Password of Systempay's REST API (the back office's REST API keys) for the configured "
        "SYSTEMPAY_MODE, sent with the shop id (Basic auth). Card refunds fail (refund.failed) "
        "without it.",
        text,
    ),
    Variable(
        "SELLER_NAME",
        None,
        "Legal name of the seller printed on invoices and credit notes. Invoices are not issued "
        "(payment.confirmed is retried, then parked) until SELLER_NAME, SELLER_SIREN, "
        "SELLER_VAT_NUMBER, SELLER_STREET, SELLER_POSTAL_CODE, SELLER_CITY and INVOICE_KEY are "
        "set.",
        text,
    ),
    Variable("SELLER_STREET", None, "Street address of the seller (invoices).", text),
    Variable("SELLER_POSTAL_CODE", None, "Postal code of the seller (invoices).", text),
    Variable("SELLER_CITY", None, "City of the seller (invoices).", text),
    Variable("SELLER_COUNTRY", "FR", "ISO 3166 country code of the seller (invoices).", text),
    Variable("SELLER_SIREN", None, "SIREN of the seller (invoices, FEC file name).", siren),
    Variable(
        "SELLER_VAT_NUMBER", None, "Intra-EU VAT number of the seller (invoices).", eu_vat_number
    ),
    Variable(
        "SELLER_LEGAL_MENTIONS",
        None,
        "Further legal mentions printed under the seller, e.g. `SAS au capital de 10 000 € - RCS "
        "Paris 732 829 320`.",
        text,
    ),
    Variable(
        "INVOICE_KEY",
        None,
        "AES-256-GCM key (32 bytes, base64) that encrypts the stored invoices and credit notes "
        "(their data and PDF) and the SEPA refund files.",
        aes_256_key,
    ),
    Variable(
        "INVOICE_VAT_RATE",
        "20.0",
        "VAT rate (percent) of an order whose order.placed names none (standard regime).",
        text,
    ),
    Variable(
        "INVOICE_RENDER_PROCESSES",
        "2",
        "Processes of the worker's `invoices` loop that render invoices' Factur-X PDFs in parallel "
        "(about one per core); 0 renders in the loop's own thread.",
        integer(0),
    ),
    Variable(
        "INVOICE_BATCH_SIZE",
        "50",
        "Invoices numbered and not rendered yet that the `invoices` loop renders, stores, chains "
        "and announces (invoice.issued) in one transaction.",
        integer(1),
    ),
    Variable(
        "INVOICE_POLL_SECONDS",
        "0.5",
        "How long the `invoices` loop waits, when nothing is left to render, before it looks "
        "again.",
        number(0.01),
    ),
    Variable(
        "REFUND_ADMIN_ABOVE_CENTS",
        "30000",
        "Refunds above this amount (cents) must be approved by a staff member with the admin role.",
        integer(0),
    ),
    Variable("FEC_ACCOUNT_CUSTOMERS", "411000", "FEC: customers' account.", account_number),
    Variable("FEC_ACCOUNT_REVENUE", "706000", "FEC: revenue account (services).", account_number),
    Variable("FEC_ACCOUNT_VAT", "445710", "FEC: VAT collected account.", account_number),
    Variable(
        "FEC_BANK_ACCOUNTS",
        "systempay=512100,paypal=512200,bank-transfer=512000,qonto=512000,camt053=512000",
        "FEC: bank account of each payment provider (`provider=account`, comma-separated).",
        bank_accounts,
    ),
    Variable(
        "VIES_API_URL",
        "https://ec.europa.eu/taxation_customs/vies/rest-api",
        "Base URL of the European Commission's VIES REST API (intra-EU VAT number checks).",
        HTTP_URL,
    ),
    Variable(
        "PROVIDER_HTTP_TIMEOUT",
        "10",
        "Seconds a call to a provider (PayPal) may take.",
        number(0.1),
    ),
    storage_variable("PAYMENTS"),
    key_prefix_variable("PAYMENTS", "coc-payments"),
    Variable(
        "PAYMENTS_RATE_LIMIT_CHECKOUT",
        "20/minute",
        "Checkouts (`POST /v1/payments/{order_id}/checkout`: a card form, a PayPal order, a "
        "transfer's details) allowed per client IP, per order and per account; the providers' "
        "notifications are not limited (`N/second|minute|hour|day`).",
        rate_limit,
    ),
    proxy_count_variable("PAYMENTS"),
)


# Marks the keys and ids `make run` generates for the payment sandboxes (coc_payments.sandbox).
SANDBOX_KEY_PREFIX = "sandbox-"
PROVIDER_URLS = ("SYSTEMPAY_FORM_URL", "SYSTEMPAY_API_URL", "PAYPAL_API_URL", "VIES_API_URL")
PROVIDER_KEYS = (
    "SYSTEMPAY_TEST_KEY",
    "SYSTEMPAY_PRODUCTION_KEY",
    "SYSTEMPAY_REST_KEY",
    "PAYPAL_CLIENT_ID",
    "PAYPAL_CLIENT_SECRET",
    "PAYPAL_WEBHOOK_ID",
    "QONTO_WEBHOOK_SECRET",
)


def is_local(address: str) -> bool:
    """True when ``address`` names this machine (localhost, a loopback or unspecified IP)."""
    host = (urlsplit(address).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


def sandbox_settings(v: dict) -> list[str]:
    """The variables among ``v`` (typed values) that point at a sandbox: a provider URL on this
    machine, a PayPal certificate prefix on this machine, a key or id `make run` generated."""
    found = [name for name in PROVIDER_URLS if v.get(name) and is_local(v[name])]
    if any(is_local(prefix) for prefix in v.get("PAYPAL_CERT_URL_PREFIXES") or ()):
        found.append("PAYPAL_CERT_URL_PREFIXES")
    found += [
        name
        for name in PROVIDER_KEYS
        if isinstance(v.get(name), str) and v[name].startswith(SANDBOX_KEY_PREFIX)
    ]
    return found


def refuse_sandbox_settings(v: dict) -> None:
    """In production (COC_ENVIRONMENT), a sandbox setting stops the start naming the variables."""
    if v["COC_ENVIRONMENT"] != "production":
        return
    found = sandbox_settings(v)
    if found:
        raise ConfigError(
            "invalid configuration: COC_ENVIRONMENT=production refuses the payment sandboxes' "
            f"settings: {', '.join(found)} (a provider on this machine or a `{SANDBOX_KEY_PREFIX}` "
            "key); set the real providers' values, or COC_ENVIRONMENT=development on a "
            "developer's machine"
        )


@dataclass(frozen=True)
class Seller:
    """Who sells, as every invoice must say (Code de commerce R123-237, CGI 242 nonies A)."""

    name: str
    street: str
    postal_code: str
    city: str
    country: str
    siren: str
    vat_number: str
    legal_mentions: str | None = None

    @classmethod
    def from_values(cls, v: dict) -> Seller | None:
        names = ("SELLER_NAME", "SELLER_STREET", "SELLER_POSTAL_CODE", "SELLER_CITY")
        if not all(v[n] for n in (*names, "SELLER_SIREN", "SELLER_VAT_NUMBER")):
            return None
        return cls(
            name=v["SELLER_NAME"],
            street=v["SELLER_STREET"],
            postal_code=v["SELLER_POSTAL_CODE"],
            city=v["SELLER_CITY"],
            country=(v["SELLER_COUNTRY"] or "FR").upper(),
            siren=v["SELLER_SIREN"],
            vat_number=v["SELLER_VAT_NUMBER"],
            legal_mentions=v["SELLER_LEGAL_MENTIONS"],
        )


@dataclass(frozen=True)
class Accounts:
    """Account numbers of the accounting export (French chart of accounts)."""

    customers: str
    revenue: str
    vat: str
    banks: dict

    def bank(self, provider: str) -> str:
        return self.banks.get(provider) or self.banks.get("bank-transfer") or "512000"


class NotConfigured(ConfigError):
    """A provider needed for this request has no configuration: its checkout answers 503 (a
    command says what is missing and exits 2)."""

    def __init__(self, method: str, missing: str):
        super().__init__(f"{method}: not configured: {missing}")
        self.method = method


@dataclass(frozen=True)
class PaymentsConfig:
    public_url: str
    return_url_template: str
    systempay_form_url: str
    systempay_site_id: str | None
    systempay_mode: str
    systempay_test_key: str | None
    systempay_production_key: str | None
    paypal_api_url: str
    paypal_client_id: str | None
    paypal_client_secret: str | None
    paypal_webhook_id: str | None
    paypal_cert_url_prefixes: tuple[str, ...]
    transfer_iban: str | None
    transfer_bic: str | None
    transfer_beneficiary: str
    qonto_webhook_secret: str | None
    qonto_webhook_tolerance_seconds: float
    provider_http_timeout: float
    systempay_api_url: str = "https://api.systempay.fr"
    systempay_rest_key: str | None = None
    seller: Seller | None = None
    invoice_key: bytes | None = None
    default_vat_rate: str = "20.0"
    refund_admin_above_cents: int = 30000
    invoice_render_processes: int = 2
    invoice_batch_size: int = 50
    invoice_poll_seconds: float = 0.5
    accounts: Accounts | None = None
    vies_api_url: str = "https://ec.europa.eu/taxation_customs/vies/rest-api"
    environment: str = "production"
    rate_limit_storage: str = "memory://"
    rate_limit_prefix: str = "coc-payments"
    rate_limit_checkout: RateLimit = RateLimit(20, 60)
    proxy_count: int = 0

    @classmethod
    def from_env(cls, overrides: dict | None = None) -> PaymentsConfig:
        """From ``overrides`` (raw texts by variable name), else the environment, else the defaults;
        ``coc_shared.config.ConfigError`` names every variable that cannot be read."""
        v = load(VARIABLES, overrides)
        refuse_sandbox_settings(v)
        return cls(
            environment=v["COC_ENVIRONMENT"],
            public_url=v["PAYMENTS_PUBLIC_URL"].rstrip("/"),
            return_url_template=v["PAYMENTS_RETURN_URL"],
            systempay_form_url=v["SYSTEMPAY_FORM_URL"],
            systempay_site_id=v["SYSTEMPAY_SITE_ID"],
            systempay_mode=v["SYSTEMPAY_MODE"],
            systempay_test_key=v["SYSTEMPAY_TEST_KEY"],
            systempay_production_key=v["SYSTEMPAY_PRODUCTION_KEY"],
            paypal_api_url=v["PAYPAL_API_URL"],
            paypal_client_id=v["PAYPAL_CLIENT_ID"],
            paypal_client_secret=v["PAYPAL_CLIENT_SECRET"],
            paypal_webhook_id=v["PAYPAL_WEBHOOK_ID"],
            paypal_cert_url_prefixes=v["PAYPAL_CERT_URL_PREFIXES"],
            transfer_iban=v["TRANSFER_IBAN"],
            transfer_bic=v["TRANSFER_BIC"],
            transfer_beneficiary=v["TRANSFER_BENEFICIARY"],
            qonto_webhook_secret=v["QONTO_WEBHOOK_SECRET"],
            qonto_webhook_tolerance_seconds=v["QONTO_WEBHOOK_TOLERANCE_SECONDS"],
            provider_http_timeout=v["PROVIDER_HTTP_TIMEOUT"],
            systempay_api_url=v["SYSTEMPAY_API_URL"].rstrip("/"),
            systempay_rest_key=v["SYSTEMPAY_REST_KEY"],
            seller=Seller.from_values(v),
            invoice_key=v["INVOICE_KEY"],
            default_vat_rate=v["INVOICE_VAT_RATE"],
            refund_admin_above_cents=v["REFUND_ADMIN_ABOVE_CENTS"],
            invoice_render_processes=v["INVOICE_RENDER_PROCESSES"],
            invoice_batch_size=v["INVOICE_BATCH_SIZE"],
            invoice_poll_seconds=v["INVOICE_POLL_SECONDS"],
            accounts=Accounts(
                customers=v["FEC_ACCOUNT_CUSTOMERS"],
                revenue=v["FEC_ACCOUNT_REVENUE"],
                vat=v["FEC_ACCOUNT_VAT"],
                banks=v["FEC_BANK_ACCOUNTS"],
            ),
            vies_api_url=v["VIES_API_URL"].rstrip("/"),
            rate_limit_storage=v["PAYMENTS_RATE_LIMIT_STORAGE"],
            rate_limit_prefix=v["PAYMENTS_RATE_LIMIT_PREFIX"],
            rate_limit_checkout=v["PAYMENTS_RATE_LIMIT_CHECKOUT"],
            proxy_count=v["PAYMENTS_PROXY_COUNT"],
        )

    def billing(self) -> tuple[Seller, bytes]:
        """The seller and the invoices' key; NotConfigured (invoices wait) when one is missing."""
        missing = [
            name
            for name, value in (
                ("SELLER_NAME/SIREN/VAT_NUMBER/STREET/POSTAL_CODE/CITY", self.seller),
                ("INVOICE_KEY", self.invoice_key),
            )
            if not value
        ]
        if missing:
            raise NotConfigured("invoices", ", ".join(missing))
        return self.seller, self.invoice_key

    def return_url(self, order_id: str) -> str:
        return self.return_url_template.replace("{order_id}", order_id)

    @property
    def notification_url(self) -> str:
        """Where Systempay sends its notifications (``vads_url_check``)."""
        return f"{self.public_url}/v1/callbacks/systempay"

    @property
    def systempay_keys(self) -> dict[str, str | None]:
        return {"TEST": self.systempay_test_key, "PRODUCTION": self.systempay_production_key}

    def transfer_account(self) -> tuple[str, str, str]:
        """(IBAN, BIC, beneficiary); NotConfigured when the IBAN or the BIC is unset."""
        missing = [
            name
            for name, value in (
                ("TRANSFER_IBAN", self.transfer_iban),
                ("TRANSFER_BIC", self.transfer_bic),
            )
            if not value
        ]
        if missing:
            raise NotConfigured("transfer", ", ".join(missing))
        return self.transfer_iban, self.transfer_bic, self.transfer_beneficiary

    def cert_url_allowed(self, url: str) -> bool:
        """True when ``url`` is under one of PayPal's hosts (scheme, host and port equal, path
        prefix)."""
        try:
            target = urlsplit(url)
            target_port = target.port
        except ValueError:
            return False
        if target.username or target.password or not target.hostname:
            return False
        for prefix in self.paypal_cert_url_prefixes:
            allowed = urlsplit(prefix)
            if (
                target.scheme == allowed.scheme
                and target.hostname == allowed.hostname
                and target_port == allowed.port
                and target.path.startswith(allowed.path or "/")
                and ".." not in target.path
            ):
                return True
        return False
