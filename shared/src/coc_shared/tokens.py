"""Bearer tokens, as pure functions (no Flask): support staff's JWTs (Ed25519), customers' JWTs
(HS256), and the access tokens of orders placed without an account. One error type,
``TokenError``, carries the HTTP status an entrypoint answers with (401 bad or missing, 403 wrong
role, 503 not configured); the Flask decorators live in ``http.py``.

Staff tokens are signed with an Ed25519 private key that only the issuer holds (``coc-support
issue-token``, run by an admin with ``STAFF_TOKEN_PRIVATE_KEY``); every service holds only the
public key (``STAFF_TOKEN_PUBLIC_KEY``), so a compromised service cannot mint a token. A token
names the services it is for (``aud``: each service accepts only tokens naming it), lives at most
``MAX_STAFF_TOKEN_HOURS``, and carries an id (``jti``) that an admin can revoke
(``coc-support revoke-token``; every service checks the revocation list). Customer tokens are
issued by the orders service at log-in and verified by any service serving customers with
``CUSTOMER_TOKEN_SECRET``. An order placed without an account is opened by its access token
instead: random, shown once, and known elsewhere only by its SHA-256 (carried in
``order.placed``), so a leaked database or event never reveals a usable token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .envelope import utcnow

STAFF_ISSUER = "coc-staff"
CUSTOMER_ISSUER = "coc-customer"
ROLES = ("support", "admin")
MIN_SECRET_LENGTH = 32
MAX_STAFF_TOKEN_HOURS = 12
# Who a staff token may be for: the services' staff APIs, the support command line's direct access
# to the parked-message store ("ops") and the support console.
STAFF_AUDIENCES = (
    "orders",
    "payments",
    "supplier-gateway",
    "notifications",
    "gdpr",
    "ops",
    "console",
)


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
    token_id: str | None = None


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


def new_staff_keys() -> tuple[str, str]:
    """A new Ed25519 key pair as (private key, public key), each the base64 of its 32 raw bytes."""
    private = Ed25519PrivateKey.generate()
    raw_private = private.private_bytes_raw()
    raw_public = private.public_key().public_bytes_raw()
    return base64.b64encode(raw_private).decode(), base64.b64encode(raw_public).decode()


def _raw_key(value: str | None, variable: str) -> bytes:
    if not value:
        raise TokenError(f"staff authentication is not configured ({variable})", 503)
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise TokenError(f"{variable} must be the base64 of a 32-byte Ed25519 key", 503)
    return raw


def staff_private_key(value: str | None) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(_raw_key(value, "STAFF_TOKEN_PRIVATE_KEY"))


def staff_public_key(value: str | None) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(_raw_key(value, "STAFF_TOKEN_PUBLIC_KEY"))


@dataclass(frozen=True)
class IssuedStaffToken:
    token: str
    jti: str
    audience: tuple[str, ...]
    expires_at: object  # datetime


def issue_staff_token(
    private_key: str | None,
    name: str,
    role: str,
    ttl: timedelta = timedelta(hours=8),
    audience: Iterable[str] = STAFF_AUDIENCES,
) -> IssuedStaffToken:
    """A staff token for ``name`` with ``role``, valid for the services in ``audience``."""
    key = staff_private_key(private_key)
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not name or not name.strip():
        raise ValueError("a staff name is required")
    if ttl <= timedelta(0) or ttl > timedelta(hours=MAX_STAFF_TOKEN_HOURS):
        raise ValueError(f"a staff token lives at most {MAX_STAFF_TOKEN_HOURS} hours")
    audience = tuple(audience)
    if not audience or not all(re.fullmatch(r"[a-z][a-z0-9-]{0,62}", a or "") for a in audience):
        raise ValueError(f"audience must name services, e.g. {', '.join(STAFF_AUDIENCES)}")
    now = utcnow()
    jti = str(uuid.uuid4())
    claims = {
        "iss": STAFF_ISSUER,
        "sub": name.strip(),
        "role": role,
        "aud": list(audience),
        "jti": jti,
        "iat": now,
        "exp": now + ttl,
    }
    return IssuedStaffToken(jwt.encode(claims, key, algorithm="EdDSA"), jti, audience, now + ttl)


def verify_staff_token(
    public_key: str | None,
    token: str | None,
    audience: str,
    roles: tuple[str, ...] = ROLES,
    revoked: Callable[[str], bool] | None = None,
) -> Actor:
    """The staff member of a valid token for ``audience``; TokenError otherwise (401, or 403 for
    a role that may not act here). ``revoked(jti)`` tells whether an admin revoked the token."""
    key = staff_public_key(public_key)
    if not token:
        raise TokenError("a staff bearer token is required")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=["EdDSA"],
            issuer=STAFF_ISSUER,
            audience=audience,
            options={"require": ["exp", "iat", "sub", "iss", "aud", "jti"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("the staff token has expired") from None
    except jwt.InvalidAudienceError:
        raise TokenError(f"the staff token is not for {audience}") from None
    except jwt.PyJWTError:
        raise TokenError("the staff token is invalid") from None
    if claims["exp"] - claims["iat"] > MAX_STAFF_TOKEN_HOURS * 3600:
        raise TokenError("the staff token lives longer than allowed")
    if revoked is not None and revoked(claims["jti"]):
        raise TokenError("the staff token was revoked")
    if claims.get("role") not in roles:
        raise TokenError(f"this action needs one of the roles: {', '.join(roles)}", 403)
    return Actor(name=claims["sub"], role=claims["role"], token_id=claims["jti"])


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
