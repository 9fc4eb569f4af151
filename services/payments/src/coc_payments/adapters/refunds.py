"""Refunds through the provider that took the money:

* card (Systempay): the REST API's ``Transaction/CancelOrRefund`` (V4), Basic auth with the shop
  id and the REST password of the configured mode; it cancels a transaction not captured yet and
  refunds a captured one;
* PayPal: ``POST /v2/payments/captures/{capture_id}/refund`` (``PayPalClient.refund``), one
  ``PayPal-Request-Id`` per refund so that a retry never refunds twice;
* transfer: a SEPA credit transfer file (pain.001.001.03, ``sepaxml``) for staff to upload to the
  bank; the refund is completed when staff say it was sent.

Each returns a ``RefundOutcome``; a provider that refuses or cannot be reached raises
``RefundRefused`` with the reason (the refund then fails and staff may retry it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import requests

from .paypal import ProviderError


class RefundRefused(Exception):
    """The provider refused the refund or could not be reached."""


@dataclass(frozen=True)
class RefundOutcome:
    status: str  # completed | file_ready
    provider_refund_id: str | None = None
    file: bytes | None = None


class SystempayRefunds:
    def __init__(self, api_url: str, shop_id: str, password: str, timeout: float = 10.0):
        self.url = f"{api_url.rstrip('/')}/api-payment/V4/Transaction/CancelOrRefund"
        self.auth = (shop_id, password)
        self.timeout = timeout
        self.session = requests.Session()

    def refund(self, transaction_uuid: str, amount_cents: int, currency: str, comment: str):
        body = {
            "uuid": transaction_uuid,
            "amount": amount_cents,
            "currency": currency,
            "resolutionMode": "AUTO",
            "comment": comment[:255],
        }
        try:
            r = self.session.post(self.url, json=body, auth=self.auth, timeout=self.timeout)
        except requests.RequestException as exc:
            raise RefundRefused(f"Systempay: {type(exc).__name__}") from exc
        if r.status_code != 200:
            raise RefundRefused(f"Systempay: HTTP {r.status_code}")
        try:
            doc = r.json()
        except ValueError:
            raise RefundRefused("Systempay: the answer is not JSON") from None
        answer = doc.get("answer") or {}
        if doc.get("status") != "SUCCESS":
            code, message = answer.get("errorCode", "ERROR"), answer.get("errorMessage", "")
            raise RefundRefused(f"Systempay: {code} {message}".strip())
        if answer.get("detailedStatus") in ("REFUSED", "ERROR"):
            raise RefundRefused(f"Systempay: {answer.get('detailedStatus')}")
        return RefundOutcome("completed", answer.get("uuid"))


class PayPalRefunds:
    def __init__(self, client):
        self.client = client

    def refund(self, capture_id: str, amount_cents: int, currency: str, refund_id: str):
        try:
            doc = self.client.refund(capture_id, amount_cents, currency, refund_id)
        except ProviderError as exc:
            raise RefundRefused(f"PayPal: {exc}") from exc
        if doc.get("status") not in ("COMPLETED", "PENDING"):
            raise RefundRefused(f"PayPal: {doc.get('status') or 'no status'}")
        return RefundOutcome("completed", doc.get("id"))


def sepa_transfer_file(
    *,
    debtor_name: str,
    debtor_iban: str,
    debtor_bic: str | None,
    creditor_name: str,
    creditor_iban: str,
    creditor_bic: str | None,
    amount_cents: int,
    currency: str,
    reference: str,
    description: str,
    execution_date: date,
) -> bytes:
    """A pain.001.001.03 file with one credit transfer from our account to the customer's."""
    from sepaxml import SepaTransfer

    config = {
        "name": debtor_name,
        "IBAN": debtor_iban,
        "BIC": debtor_bic or "NOTPROVIDED",
        "batch": False,
        "currency": currency,
    }
    transfer = SepaTransfer(config, schema="pain.001.001.03", clean=True)
    payment = {
        "name": creditor_name,
        "IBAN": creditor_iban,
        "amount": amount_cents,
        "execution_date": execution_date,
        "description": description,
        "endtoend_id": reference[:35],
    }
    if creditor_bic:
        payment["BIC"] = creditor_bic
    transfer.add_payment(payment)
    return transfer.export(validate=True)
