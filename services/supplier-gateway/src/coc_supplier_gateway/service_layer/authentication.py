"""A supplier's call to the API, authenticated: signed with the supplier's key (HMAC-SHA256 over
``timestamp + "." + body``, in ``sha256=<hex>``), its timestamp within ``REPLY_WINDOW_SECONDS`` of
now (docs/supplier-integration.md)."""

from __future__ import annotations

import hmac

from ..adapters.channels import signature
from ..contract import REPLY_WINDOW_SECONDS, SIGNATURE_HEADER, TIMESTAMP_HEADER
from .replies import NotConfigured


class UnknownSupplier(Exception):
    """No supplier of the directory has this code."""


class BadSignature(Exception):
    """The call is not signed, or not by this supplier, or not now (the message says which)."""


def verify_supplier_call(config, code: str, timestamp: str, given: str, body: bytes, now: float):
    """Nothing when supplier ``code`` signed ``body`` at ``timestamp`` (Unix seconds, within the
    window of ``now``); ``UnknownSupplier``, ``NotConfigured`` (no key: the master secret is not
    set) or ``BadSignature`` otherwise."""
    key = config.key_of(code)
    if config.directory.get(code) is None:
        raise UnknownSupplier(code)
    if key is None:
        raise NotConfigured("supplier signatures are not configured")
    if not timestamp.isdigit() or not given:
        raise BadSignature(f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are required")
    if abs(now - int(timestamp)) > REPLY_WINDOW_SECONDS:
        raise BadSignature(f"{TIMESTAMP_HEADER} is more than 5 minutes away from now")
    if not hmac.compare_digest(signature(key, timestamp, body), given):
        raise BadSignature("the signature does not match")
