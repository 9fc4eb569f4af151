"""Support-staff authentication: signed bearer tokens (JWT, HS256) carrying a name and a role.

Tokens are issued by the admin command ``coc-support issue-token`` with ``STAFF_TOKEN_SECRET``;
every staff-only HTTP endpoint (``staff_required``) and the support command line verify them.
Without a configured secret nothing staff-only answers (503), and without a valid token 401.
"""
from __future__ import annotations

import functools
from datetime import timedelta

import jwt
from flask import current_app, g, request

from .envelope import utcnow
from .parking import Actor

ISSUER = "coc-staff"
ROLES = ("support", "admin")
MIN_SECRET_LENGTH = 32


class StaffAuthError(Exception):
    def __init__(self, message: str, status: int = 401):
        super().__init__(message)
        self.status = status


def _check_secret(secret: str | None, variable: str = "STAFF_TOKEN_SECRET") -> str:
    if not secret:
        raise StaffAuthError(f"authentication is not configured ({variable})", 503)
    if len(secret) < MIN_SECRET_LENGTH:
        raise StaffAuthError(f"{variable} must be at least {MIN_SECRET_LENGTH} characters", 503)
    return secret


def issue_staff_token(secret: str | None, name: str, role: str, ttl: timedelta = timedelta(hours=8)) -> str:
    secret = _check_secret(secret)
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not name or not name.strip():
        raise ValueError("a staff name is required")
    now = utcnow()
    return jwt.encode({"iss": ISSUER, "sub": name.strip(), "role": role, "iat": now, "exp": now + ttl},
                      secret, algorithm="HS256")


def verify_staff_token(secret: str | None, token: str | None, roles: tuple[str, ...] = ROLES) -> Actor:
    secret = _check_secret(secret)
    if not token:
        raise StaffAuthError("a staff bearer token is required")
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], issuer=ISSUER,
                            options={"require": ["exp", "iat", "sub", "iss"]})
    except jwt.ExpiredSignatureError:
        raise StaffAuthError("the staff token has expired") from None
    except jwt.PyJWTError:
        raise StaffAuthError("the staff token is invalid") from None
    if claims.get("role") not in roles:
        raise StaffAuthError(f"this action needs one of the roles: {', '.join(roles)}", 403)
    return Actor(name=claims["sub"], role=claims["role"])


def bearer_token(header_value: str | None) -> str | None:
    if not header_value:
        return None
    scheme, _, token = header_value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def staff_required(roles: tuple[str, ...] = ROLES):
    """Flask view decorator: only a valid staff token with one of ``roles`` gets through."""
    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            settings = current_app.config["COC_SETTINGS"]
            try:
                g.staff = verify_staff_token(settings.staff_token_secret,
                                             bearer_token(request.headers.get("Authorization")), roles)
            except StaffAuthError as exc:
                from .http import error_response
                headers = {"WWW-Authenticate": 'Bearer realm="coc-staff"'} if exc.status == 401 else {}
                return error_response(exc.status, str(exc), headers=headers)
            return view(*args, **kwargs)
        return wrapper
    return decorator


# Customers -------------------------------------------------------------------------------------
# The orders service logs customers in and issues these; any service serving customers (payments'
# checkout) verifies them with the same CUSTOMER_TOKEN_SECRET. An order placed without an account
# is opened by its access token instead: random, shown once, and known elsewhere only by its
# SHA-256 (carried in order.placed), so a leaked database or event never reveals a usable token.
CUSTOMER_ISSUER = "coc-customer"


def issue_customer_token(secret: str | None, account_id: str, ttl: timedelta = timedelta(hours=2)) -> tuple[str, int]:
    """Returns (token, expires_in_seconds)."""
    secret = _check_secret(secret, "CUSTOMER_TOKEN_SECRET")
    now = utcnow()
    token = jwt.encode({"iss": CUSTOMER_ISSUER, "sub": account_id, "iat": now, "exp": now + ttl}, secret,
                       algorithm="HS256")
    return token, int(ttl.total_seconds())


def verify_customer_token(secret: str | None, token: str | None) -> str:
    """Returns the account id of a valid customer token; raises StaffAuthError(401) otherwise."""
    secret = _check_secret(secret, "CUSTOMER_TOKEN_SECRET")
    if not token:
        raise StaffAuthError("a bearer token is required")
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], issuer=CUSTOMER_ISSUER,
                            options={"require": ["exp", "iat", "sub", "iss"]})
    except jwt.ExpiredSignatureError:
        raise StaffAuthError("the token has expired") from None
    except jwt.PyJWTError:
        raise StaffAuthError("the token is invalid") from None
    return claims["sub"]


def new_order_access_token() -> tuple[str, str]:
    """Returns (token shown once to the customer, its SHA-256 hex digest to store)."""
    import secrets
    token = secrets.token_urlsafe(32)
    return token, hash_access_token(token)


def hash_access_token(token: str) -> str:
    import hashlib
    return hashlib.sha256(token.encode()).hexdigest()


def access_token_matches(token: str | None, stored_sha256: str | None) -> bool:
    import hmac
    if not token or not stored_sha256:
        return False
    return hmac.compare_digest(hash_access_token(token), stored_sha256)
