"""The bank's hosted card page, speaking Systempay's (Lyra) form protocol, and its REST refunds API.

- ``POST /vads-payment/``: the signed form the customer's browser posts (the fields of
  ``adapters.hosted_page.SystempayPage.payment_form``). The signature is checked with the
  production function (``systempay_signature``) and the key of the form's ``vads_ctx_mode``;
  a tampered, unsigned or foreign form (another shop, an unknown mode, a missing field) gets
  Systempay's error page (400) and no payment. A good one gets the page of test cards.
- ``POST /vads-payment/<payment>/pay`` (``card``: accepted, refused or abandoned): the result is
  sent as the IPN, signed, to the form's ``vads_url_check`` with the field set Systempay sends
  (``vads_trans_status``, ``vads_trans_uuid``, ``vads_amount``, ``vads_auth_result``, ...), then the
  browser is redirected to ``vads_url_success`` / ``vads_url_refused`` / ``vads_url_cancel`` when
  the form gave them, else to ``vads_url_return``.
- ``POST /api-payment/V4/Transaction/CancelOrRefund``: refunds (Basic auth: shop id, REST key),
  answered as the V4 REST API does.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import secrets
import sys
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import requests
from werkzeug.wrappers import Request, Response

from ..adapters.hosted_page import CURRENCY_NUMERIC, systempay_signature
from .serving import Server, read_secret, serve_until_stopped

FORM_PATH = "/vads-payment/"
REFUND_PATH = "/api-payment/V4/Transaction/CancelOrRefund"
# What a form must carry for the page to take a payment (Systempay answers error 09 otherwise).
REQUIRED_FIELDS = (
    "vads_action_mode",
    "vads_amount",
    "vads_ctx_mode",
    "vads_currency",
    "vads_page_action",
    "vads_payment_config",
    "vads_site_id",
    "vads_trans_date",
    "vads_trans_id",
    "vads_version",
)


@dataclass(frozen=True)
class TestCard:
    number: str
    label: str
    trans_status: str  # vads_trans_status
    auth_result: str  # vads_auth_result (the issuer's answer)
    result: str  # vads_result (the platform's)


TEST_CARDS = {
    "accepted": TestCard("4970100000000055", "Paiement accepté", "AUTHORISED", "00", "00"),
    "refused": TestCard("4970100000000097", "Paiement refusé par la banque", "REFUSED", "05", "05"),
    "abandoned": TestCard("", "Abandon du paiement par l'acheteur", "ABANDONED", "", "17"),
}


@dataclass
class PendingPayment:
    fields: dict
    created: datetime
    outcome: str | None = None
    ipn: dict | None = None  # what was sent, and what the shop answered
    ipn_status: int | None = None


class FormRefused(ValueError):
    """The posted form cannot be paid: Systempay shows its error page."""


@dataclass
class SystempayBank:
    """The hosted page of shop ``site_id`` (its keys by mode) and the REST API (``rest_key``)."""

    site_id: str
    keys: dict[str, str]
    rest_key: str | None = None
    payments: dict[str, PendingPayment] = field(default_factory=dict)
    calls: list[dict] = field(default_factory=list)  # REST refund calls received
    refunded: dict[str, int] = field(default_factory=dict)
    fail_with: str | None = None  # an error code the REST API answers (PSP_010 ...), for tests
    url: str = ""
    timeout: float = 10.0

    def __post_init__(self):
        self._lock = threading.Lock()
        self._server: Server | None = None

    # ------------------------------------------------------------------ serving
    def serve(self, port: int = 0) -> SystempayBank:
        self._server = Server(self.app, port)
        self.url = self._server.url
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.close()

    @Request.application
    def app(self, request: Request) -> Response:
        path = request.path
        if path == FORM_PATH and request.method == "POST":
            return self._form(request)
        if path.startswith(FORM_PATH) and path.endswith("/pay") and request.method == "POST":
            return self._pay(request, path[len(FORM_PATH) : -len("/pay")])
        if path == REFUND_PATH and request.method == "POST":
            return self._refund(request)
        return Response("not found", 404)

    # ------------------------------------------------------------------ the hosted page
    def check_form(self, fields: dict) -> None:
        """Raises FormRefused unless ``fields`` is a complete form signed by this shop's key."""
        missing = [name for name in REQUIRED_FIELDS if not fields.get(name)]
        if missing:
            raise FormRefused(f"missing fields: {', '.join(missing)}")
        key = self.keys.get(fields["vads_ctx_mode"])
        if not key:
            raise FormRefused(f"unknown mode {fields['vads_ctx_mode']!r}")
        if fields["vads_site_id"] != self.site_id:
            raise FormRefused("unknown shop")
        given = fields.get("signature") or ""
        if not secrets.compare_digest(systempay_signature(fields, key).encode(), given.encode()):
            raise FormRefused("signature mismatch")
        if not fields["vads_amount"].isdigit() or int(fields["vads_amount"]) <= 0:
            raise FormRefused("invalid amount")
        if fields["vads_currency"] not in CURRENCY_NUMERIC.values():
            raise FormRefused("unsupported currency")

    def _form(self, request: Request) -> Response:
        fields: dict[str, str] = {}
        for name, value in request.form.items(multi=True):
            if name in fields:
                return self._error_page(f"field {name} given twice")
            fields[name] = value
        try:
            self.check_form(fields)
        except FormRefused as exc:
            return self._error_page(str(exc))
        payment_id = uuid.uuid4().hex
        with self._lock:
            self.payments[payment_id] = PendingPayment(fields, datetime.now(UTC))
        return Response(self._cards_page(payment_id, fields), 200, mimetype="text/html")

    @staticmethod
    def _error_page(reason: str) -> Response:
        body = (
            "<!doctype html><html lang='fr'><head><meta charset='utf-8'>"
            "<title>Erreur de paiement</title></head><body>"
            "<h1>Le paiement ne peut pas être effectué</h1>"
            "<p>Code erreur 05 : la signature ou un paramètre du formulaire est invalide.</p>"
            f"<p class='detail'>{html.escape(reason)}</p></body></html>"
        )
        return Response(body, 400, mimetype="text/html")

    def _cards_page(self, payment_id: str, fields: dict) -> str:
        amount = int(fields["vads_amount"])
        buttons = "".join(
            f"<form method='post' action='{FORM_PATH}{payment_id}/pay'>"
            f"<input type='hidden' name='card' value='{name}'>"
            f"<button type='submit'>{html.escape(card.label)}"
            f"{' — ' + card.number if card.number else ''}</button></form>"
            for name, card in TEST_CARDS.items()
        )
        return (
            "<!doctype html><html lang='fr'><head><meta charset='utf-8'>"
            "<title>Paiement sécurisé (bac à sable)</title></head><body>"
            "<h1>Paiement sécurisé — banque de développement</h1>"
            f"<p>Commande {html.escape(fields.get('vads_order_id') or '')} : "
            f"{amount // 100},{amount % 100:02d} €</p>"
            "<p>Aucune vraie carte : choisissez une carte de test.</p>"
            f"{buttons}</body></html>"
        )

    def _pay(self, request: Request, payment_id: str) -> Response:
        card_name = request.form.get("card", "")
        with self._lock:
            payment = self.payments.get(payment_id)
            if payment is None or card_name not in TEST_CARDS or payment.outcome is not None:
                return Response("unknown or finished payment", 404)
            payment.outcome = card_name
        card = TEST_CARDS[card_name]
        payment.ipn = self.ipn_fields(payment.fields, card)
        payment.ipn_status = self._send_ipn(payment.fields.get("vads_url_check"), payment.ipn)
        target = payment.fields.get(
            {"accepted": "vads_url_success", "refused": "vads_url_refused"}.get(
                card_name, "vads_url_cancel"
            )
        ) or payment.fields.get("vads_url_return")
        headers = {"X-Sandbox-IPN-Status": str(payment.ipn_status or "not sent")}
        if target:
            return Response("", 302, headers={"Location": target, **headers})
        return Response(f"<p>{html.escape(card.label)}</p>", 200, headers, mimetype="text/html")

    def ipn_fields(self, form: dict, card: TestCard) -> dict:
        """The notification Systempay sends at the end of a payment, signed with the form's key."""
        now = datetime.now(UTC)
        accepted = card.trans_status == "AUTHORISED"
        masked = f"{card.number[:6]}XXXXXX{card.number[-4:]}" if card.number else ""
        fields = {
            "vads_action_mode": form["vads_action_mode"],
            "vads_amount": form["vads_amount"],
            "vads_auth_mode": "FULL",
            "vads_auth_number": f"{secrets.randbelow(10**6):06d}" if accepted else "",
            "vads_auth_result": card.auth_result,
            "vads_capture_delay": "0",
            "vads_card_brand": "CB" if card.number else "",
            "vads_card_country": "FR" if card.number else "",
            "vads_card_number": masked,
            "vads_contract_used": "5785350" if card.number else "",
            "vads_ctx_mode": form["vads_ctx_mode"],
            "vads_currency": form["vads_currency"],
            "vads_effective_amount": form["vads_amount"],
            "vads_effective_creation_date": now.strftime("%Y%m%d%H%M%S"),
            "vads_effective_currency": form["vads_currency"],
            "vads_expiry_month": "12" if card.number else "",
            "vads_expiry_year": str(now.year + 3) if card.number else "",
            "vads_extra_result": "",
            "vads_hash": hashlib.sha256(secrets.token_bytes(32)).hexdigest(),
            "vads_language": "fr",
            "vads_operation_type": "DEBIT",
            "vads_order_id": form.get("vads_order_id", ""),
            "vads_page_action": form["vads_page_action"],
            "vads_payment_certificate": secrets.token_hex(20) if accepted else "",
            "vads_payment_config": form["vads_payment_config"],
            "vads_payment_src": "EC",
            "vads_presentation_date": now.strftime("%Y%m%d%H%M%S"),
            "vads_result": card.result,
            "vads_sequence_number": "1",
            "vads_site_id": form["vads_site_id"],
            "vads_threeds_status": "Y" if card.number else "",
            "vads_trans_date": form["vads_trans_date"],
            "vads_trans_id": form["vads_trans_id"],
            "vads_trans_status": card.trans_status,
            "vads_trans_uuid": uuid.uuid4().hex,
            "vads_url_check_src": "PAY",
            "vads_validation_mode": "0",
            "vads_version": form["vads_version"],
            "vads_warranty_result": "YES" if accepted else "",
        }
        fields["signature"] = systempay_signature(fields, self.keys[form["vads_ctx_mode"]])
        return fields

    def _send_ipn(self, url: str | None, fields: dict) -> int | None:
        """POSTs the notification as Systempay does (a form, server to server); the shop's HTTP
        status, None when it could not be reached."""
        if not url:
            return None
        try:
            return requests.post(url, data=fields, timeout=self.timeout).status_code
        except requests.RequestException:
            return None

    # ------------------------------------------------------------------ the REST API (refunds)
    def _refund(self, request: Request) -> Response:
        auth = request.authorization
        if not auth or (auth.username, auth.password) != (self.site_id, self.rest_key):
            return Response("", 401)
        body = request.get_json()
        self.calls.append(body)
        envelope = {
            "webService": "Transaction/CancelOrRefund",
            "version": "V4",
            "applicationVersion": "5.70.0",
            "serverDate": datetime.now(UTC).isoformat(),
            "applicationProvider": "SYSTEMPAY",
            "mode": "TEST",
            "_type": "V4/WebService/Response",
        }
        with self._lock:
            if self.fail_with or self.refunded.get(body["uuid"], 0) + body["amount"] > 10**7:
                return self._json(
                    {
                        **envelope,
                        "status": "ERROR",
                        "answer": {
                            "errorCode": self.fail_with or "PSP_010",
                            "errorMessage": "transaction cannot be refunded",
                            "_type": "V4/WebService/WebServiceError",
                        },
                    }
                )
            self.refunded[body["uuid"]] = self.refunded.get(body["uuid"], 0) + body["amount"]
        return self._json(
            {
                **envelope,
                "status": "SUCCESS",
                "answer": {
                    "shopId": self.site_id,
                    "uuid": uuid.uuid4().hex,
                    "amount": body["amount"],
                    "currency": body["currency"],
                    "operationType": "CREDIT",
                    "detailedStatus": "AUTHORISED",
                    "status": "PAID",
                    "_type": "V4/Transaction",
                },
            }
        )

    @staticmethod
    def _json(doc) -> Response:
        return Response(json.dumps(doc), 200, content_type="application/json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m coc_payments.sandbox.bank", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--site-id", required=True)
    parser.add_argument("--test-key-file", required=True, help="the TEST mode's signing key")
    parser.add_argument("--rest-key-file", help="the REST API's password (refunds)")
    args = parser.parse_args(argv)
    bank = SystempayBank(
        site_id=args.site_id,
        keys={"TEST": read_secret(args.test_key_file)},
        rest_key=read_secret(args.rest_key_file) or None,
    )
    return serve_until_stopped("systempay", bank, args.port)


if __name__ == "__main__":
    sys.exit(main())
