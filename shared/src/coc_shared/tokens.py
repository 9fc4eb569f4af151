"""Bearer tokens, as pure functions (no Flask): support staff's and customers' JWTs (HS256), and
the access tokens of orders placed without an account. One error type, ``TokenError``, carries
the HTTP status an entrypoint answers with (401 bad or missing, 403 wrong role, 503 not
configured); the Flask decorators live in ``http.py``.

Staff tokens are issued by the admin command ``coc-support issue-token`` with
``STAFF_TOKEN_SECRET`` and carry a name and a role. Customer tokens are issued by the orders
service at log-in and verified by any service serving customers with ``CUSTOMER_TOKEN_SECRET``.
An order placed without an account is opened by its access token instead: random, shown once,
and known elsewhere only by its SHA-256 (carried in ``order.placed``), so a leaked database or
event never reveals a usable token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

import jwt

from .envelope import utcnow

STAFF_ISSUER = "coc-staff"
CUSTOMER_ISSUER = "coc-customer"
ROLES = ("support", "admin")
MIN_SECRET_LENGTH = 32


class TokenError(Exception):
    """A token is missing, invalid, expired or lacks a role, or tokens are not configured."""

    def __init__(self, message: str, status: int = 401):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Actor:
    """Who performs a support action (from a verified staff token)."""

    name: str
    role: str


def _check_secret(secret: str | None, variable: str) -> str:
    if not secret:
        raise TokenError(f"authentication is not configured ({variable})", 503)
    if len(secret) < MIN_SECRET_LENGTH:
        raise TokenError(f"{variable} must be at least {MIN_SECRET_LENGTH} characters", 503)
    return secret


def _decode(secret: str, token: str, issuer: str, what: str) -> dict:
    try:
        return jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            issuer=issuer,
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError(f"the {what} has expired") from None
    except jwt.PyJWTError:
        raise TokenError(f"the {what} is invalid") from None


def issue_staff_token(
    secret: str | None, name: str, role: str, ttl: timedelta = timedelta(hours=8)
) -> str:
    secret = _check_secret(secret, "STAFF_TOKEN_SECRET")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not name or not name.strip():
        raise ValueError("a staff name is required")
    now = utcnow()
    return jwt.encode(
        {"iss": STAFF_ISSUER, "sub": name.strip(), "role": role, "iat": now, "exp": now + ttl},
        secret,
        algorithm="HS256",
    )


def verify_staff_token(
    secret: str | None, token: str | None, roles: tuple[str, ...] = ROLES
) -> Actor:
    secret = _check_secret(secret, "STAFF_TOKEN_SECRET")
    if not token:
        raise TokenError("a staff bearer token is required")
    claims = _decode(secret, token, STAFF_ISSUER, "staff token")
    if claims.get("role") not in roles:
        raise TokenError(f"this action needs one of the roles: {', '.join(roles)}", 403)
    return Actor(name=claims["sub"], role=claims["role"])


def issue_customer_token(
    secret: str | None, account_id: str, ttl: timedelta = timedelta(hours=2)
) -> tuple[str, int]:
    """Returns (token, expires_in_seconds)."""
    secret = _check_secret(secret, "CUSTOMER_TOKEN_SECRET")
    now = utcnow()
    token = jwt.encode(
        {"iss": CUSTOMER_ISSUER, "sub": account_id, "iat": now, "exp": now + ttl},
        secret,
        algorithm="HS256",
    )
    return token, int(ttl.total_seconds())


def verify_customer_token(secret: str | None, token: str | None) -> str:
    """The account id of a valid customer token; TokenError otherwise."""
    secret = _check_secret(secret, "CUSTOMER_TOKEN_SECRET")
    if not token:
        raise TokenError("a bearer token is required")
    return _decode(secret, token, CUSTOMER_ISSUER, "token")["sub"]


def bearer_token(header_value: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, or None."""
    if not header_value:
        return None
    scheme, _, token = header_value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def new_order_access_token() -> tuple[str, str]:
    """Returns (token shown once to the customer, its SHA-256 hex digest to store)."""
    token = secrets.token_urlsafe(32)
    return token, hash_access_token(token)


def hash_access_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def access_token_matches(token: str | None, stored_sha256: str | None) -> bool:
    if not token or not stored_sha256:
        return False
    return hmac.compare_digest(hash_access_token(token), stored_sha256)
