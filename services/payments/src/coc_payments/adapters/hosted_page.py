"""Card payments on the bank's hosted page: the interface, and the Systempay / Lyra redirect form.

The storefront posts the signed fields to the bank's page; we never see card data. The bank
then calls our notification URL server to server (IPN); only that call confirms a payment.
Another bank's page (Worldline Sips, Monetico) is another ``HostedPaymentPage``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from ..domain.payments import PaymentReport


class BadSignature(Exception):
    """The notification's proof is wrong or missing: 401, nothing applied."""


@dataclass(frozen=True)
class PaymentRequest:
    order_id: str
    order_number: str
    amount_cents: int
    currency: str
    transaction_id: str  # per-day transaction number of this attempt
    at: datetime  # UTC
    return_url: str
    notification_url: str


@dataclass(frozen=True)
class HostedForm:
    url: str
    fields: dict
    method: str = "POST"


@dataclass(frozen=True)
class Notification:
    """A verified notification: what it says about which order, and its dedupe key."""

    order_number: str | None
    report: PaymentReport
    dedupe_key: str
    details: dict = field(default_factory=dict)


class HostedPaymentPage(Protocol):
    provider: str

    def payment_form(self, request: PaymentRequest) -> HostedForm: ...

    def verify_notification(self, fields: list[tuple[str, str]]) -> Notification: ...


# --------------------------------------------------------------------------- Systempay / Lyra
CURRENCY_NUMERIC = {"EUR": "978"}
CURRENCY_ALPHA = {v: k for k, v in CURRENCY_NUMERIC.items()}
SUCCESS = ("AUTHORISED", "CAPTURED")
FAILURE = ("REFUSED", "CANCELLED", "EXPIRED", "ABANDONED")


def systempay_signature(fields: dict, key: str) -> str:
    """base64(HMAC-SHA-256(key, values of every vads_* field sorted by name, '+'-joined, + '+' +
    key))."""
    values = [str(fields[name]) for name in sorted(fields) if name.startswith("vads_")]
    message = "+".join(values + [key])
    return base64.b64encode(
        hmac.new(key.encode(), message.encode(), hashlib.sha256).digest()
    ).decode()


class SystempayPage:
    provider = "systempay"

    def __init__(self, form_url: str, site_id: str, mode: str, keys: dict[str, str | None]):
        if mode not in ("TEST", "PRODUCTION"):
            raise ValueError("SYSTEMPAY_MODE must be TEST or PRODUCTION")
        self.form_url = form_url
        self.site_id = site_id
        self.mode = mode
        self.keys = keys

    def payment_form(self, request: PaymentRequest) -> HostedForm:
        key = self.keys.get(self.mode)
        if not key:
            raise ValueError(f"no Systempay key for mode {self.mode}")
        # Only what the bank needs: no name, e-mail, phone or address.
        fields = {
            "vads_action_mode": "INTERACTIVE",
            "vads_amount": str(request.amount_cents),
            "vads_ctx_mode": self.mode,
            "vads_currency": CURRENCY_NUMERIC[request.currency],
            "vads_order_id": request.order_number,
            "vads_page_action": "PAYMENT",
            "vads_payment_config": "SINGLE",
            "vads_site_id": self.site_id,
            "vads_trans_date": request.at.strftime("%Y%m%d%H%M%S"),
            "vads_trans_id": request.transaction_id,
            "vads_url_check": request.notification_url,
            "vads_url_return": request.return_url,
            "vads_version": "V2",
        }
        fields["signature"] = systempay_signature(fields, key)
        return HostedForm(url=self.form_url, fields=fields)

    def verify_notification(self, pairs: list[tuple[str, str]]) -> Notification:
        fields: dict[str, str] = {}
        for name, value in pairs:
            if name in fields:
                raise BadSignature(f"field {name} given twice")
            fields[name] = value
        given = fields.get("signature")
        if not given:
            raise BadSignature("no signature")
        mode = fields.get("vads_ctx_mode")
        if mode != self.mode:
            # The key is the configured mode's, never the one the notification names: a shop in
            # PRODUCTION takes no TEST-signed notification (the TEST key is shared more widely).
            raise BadSignature(f"a notification in mode {mode!r} for a shop in {self.mode} mode")
        key = self.keys.get(self.mode)
        if not key:
            raise BadSignature(f"no key for mode {mode!r}")
        expected = systempay_signature(fields, key)
        if not hmac.compare_digest(expected.encode(), given.encode()):
            raise BadSignature("signature mismatch")
        if fields.get("vads_site_id") != self.site_id:
            raise BadSignature("notification for another shop")
        status = fields.get("vads_trans_status") or ""
        trans_uuid = fields.get("vads_trans_uuid") or ""
        if not trans_uuid:
            raise BadSignature("no vads_trans_uuid")  # signed, but unusable
        if status in SUCCESS:
            kind = "succeeded"
        elif status in FAILURE:
            kind = "failed"
        else:
            kind = "pending"
        try:
            amount = int(fields.get("vads_amount") or "")
        except ValueError:
            amount = None
        report = PaymentReport(
            provider=self.provider,
            method="card",
            kind=kind,
            provider_transaction_id=trans_uuid,
            amount_cents=amount,
            currency=CURRENCY_ALPHA.get(
                fields.get("vads_currency") or "", fields.get("vads_currency")
            ),
            reason=status or None,
        )
        return Notification(
            order_number=fields.get("vads_order_id") or None,
            report=report,
            dedupe_key=f"{trans_uuid}:{status}",
            details={"status": status, "mode": mode, "trans_id": fields.get("vads_trans_id")},
        )
