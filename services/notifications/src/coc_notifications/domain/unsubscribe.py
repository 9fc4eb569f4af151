"""The signed one-click unsubscribe token of a marketing mail (RFC 8058): the contact's id and an
HMAC-SHA-256 of it under ``NOTIFICATIONS_UNSUBSCRIBE_SECRET``, so that only a link we mailed can
withdraw a consent, and a tampered one is refused. Pure functions, no I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

_PURPOSE = b"coc-notifications/unsubscribe/v1:"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,200}\.[A-Za-z0-9_-]{43}$")


class InvalidUnsubscribeToken(Exception):
    """The token is malformed or its signature does not match."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: str, contact_id: str) -> str:
    return _b64(hmac.new(secret.encode(), _PURPOSE + contact_id.encode(), hashlib.sha256).digest())


def unsubscribe_token(secret: str, contact_id: str) -> str:
    return f"{_b64(contact_id.encode())}.{_signature(secret, contact_id)}"


def contact_of_token(secret: str, token: str) -> str:
    """The contact id a valid token names; ``InvalidUnsubscribeToken`` otherwise."""
    if not isinstance(token, str) or not _TOKEN.match(token):
        raise InvalidUnsubscribeToken("malformed unsubscribe token")
    encoded, signature = token.split(".")
    try:
        contact_id = _unb64(encoded).decode()
    except (ValueError, UnicodeDecodeError):
        raise InvalidUnsubscribeToken("malformed unsubscribe token") from None
    if not hmac.compare_digest(signature, _signature(secret, contact_id)):
        raise InvalidUnsubscribeToken("the unsubscribe token's signature does not match")
    return contact_id
