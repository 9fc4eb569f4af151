"""The orders service's own configuration variables (declared once here; README.md documents them).

A value comes from ``settings.extra`` when a test or the launcher sets it there, else from the
environment (``coc_shared.config.env``), else the declared default. The customers' token secret is
the shared ``Settings.customer_token_secret`` (CUSTOMER_TOKEN_SECRET), not one of these.
"""
from __future__ import annotations

from coc_shared.config import declare_env, env

ORDERS_ENV: dict[str, tuple[str | None, str]] = {
    "ORDERS_CATALOGUE_PATH": (
        None, "JSON file of the brands the orders service sells (price in euro cents VAT included, VAT rate, "
              "documents required, extra fields); defaults to the catalogue shipped in the package."),
    "ORDERS_DOCUMENT_KEY": (
        None, "AES-256-GCM key (32 bytes, base64) that encrypts customers' documents before they are stored. "
              "Document uploads answer 503 without it."),
    "ORDERS_DOCUMENT_STORE": (
        "", "Where encrypted documents go: `s3` (any S3-compatible store, through boto3) or `local` (a folder, "
            "ORDERS_DOCUMENTS_DIR); empty chooses `local` in the embedded mode and `s3` otherwise."),
    "ORDERS_DOCUMENTS_DIR": ("var/orders-documents", "Folder of the encrypted documents when ORDERS_DOCUMENT_STORE is `local`."),
    "ORDERS_S3_ENDPOINT_URL": (None, "Endpoint of the S3-compatible store (e.g. MinIO); empty means AWS S3."),
    "ORDERS_S3_BUCKET": ("coc-orders-documents", "Bucket of the encrypted documents (created when missing)."),
    "ORDERS_S3_REGION": ("eu-west-3", "Region of the S3-compatible store."),
    "ORDERS_S3_ACCESS_KEY_ID": (None, "Access key of the S3-compatible store (else boto3's usual credential chain)."),
    "ORDERS_S3_SECRET_ACCESS_KEY": (None, "Secret key of the S3-compatible store (else boto3's usual credential chain)."),
    "ORDERS_RATE_LIMIT_STORAGE": (
        "memory://", "Counters of the per-IP rate limits: `memory://` (per process) or a `redis://` URL shared "
                     "by every process of the service."),
    "ORDERS_RATE_LIMIT_LOGIN": ("10/minute", "Log-in attempts (`POST /v1/auth/token`) allowed per client IP (`N/second|minute|hour`)."),
    "ORDERS_RATE_LIMIT_ORDERS": ("20/minute", "Orders (`POST /v1/orders`) and account creations allowed per client IP (`N/second|minute|hour`)."),
    "ORDERS_PROXY_COUNT": ("0", "Reverse proxies in front of the API whose X-Forwarded-For is trusted for the client IP."),
    "ORDERS_PAYMENT_URL": (
        "http://127.0.0.1:8002/v1/payments/{order_id}/checkout", "Link to pay an order given in the order's answer: the payments service's checkout (POST; `{order_id}` is replaced)."),
    "ORDERS_EMAIL_CONFIRMATION_URL": (
        "http://127.0.0.1:8001/v1/accounts/email-confirmation?token={token}",
        "Link sent to a new e-mail address to confirm an account's change of e-mail (`{token}` is replaced)."),
    "ORDERS_CUSTOMER_TOKEN_TTL": ("7200", "Lifetime in seconds of a customer's bearer token."),
    "ORDERS_IDEMPOTENCY_TTL_HOURS": ("24", "Hours during which a retried `POST /v1/orders` with the same Idempotency-Key gets the first answer."),
}

declare_env(ORDERS_ENV)


def setting(settings, name: str) -> str | None:
    """``name`` for this service: ``settings.extra`` first (tests), then the environment/default."""
    if name not in ORDERS_ENV:
        raise KeyError(name)
    extra = getattr(settings, "extra", None) or {}
    if name in extra:
        return extra[name]
    return env(name)
