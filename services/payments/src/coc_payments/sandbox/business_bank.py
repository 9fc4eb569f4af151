"""The company's business bank (Qonto style): a customer's transfer arrives on the account.

- ``POST /sandbox/transfers`` (JSON ``reference``, ``amount_cents``, optional ``currency``,
  ``debtor_name``): books the credit, sends the transaction webhook to ``webhook_url`` signed as
  the bank signs it (``X-Qonto-Signature: t=<unix time>,v1=<hex HMAC-SHA-256(secret,
  "<t>.<body>")>``, the function payments verifies with), and rewrites the day's camt.053 statement
  file under ``statements_dir``; answers the transaction id, the webhook's HTTP status and the
  statement's path;
- ``GET /sandbox/statements/<YYYY-MM-DD>.xml``: that day's statement (ISO 20022
  camt.053.001.08), what staff would download and import (``POST /v1/payments/statements``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import requests
from lxml import etree
from lxml.builder import ElementMaker
from werkzeug.wrappers import Request, Response

from ..adapters.bank import qonto_signature
from .serving import Server, read_secret, serve_until_stopped

CAMT053 = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"


def transfer_webhook_body(
    reference_text: str,
    amount_cents: int,
    currency: str = "EUR",
    transaction_id: str | None = None,
    side: str = "credit",
    status: str = "completed",
    debtor_name: str = "M DUPONT",
) -> bytes:
    """The bank's ``transaction.created`` webhook of one transaction."""
    return json.dumps(
        {
            "event_type": "transaction.created",
            "data": {
                "transaction_id": transaction_id or f"tx-{uuid.uuid4().hex}",
                "side": side,
                "operation_type": "income",
                "amount": f"{amount_cents / 100:.2f}",
                "amount_cents": amount_cents,
                "currency": currency,
                "label": f"VIREMENT {debtor_name}".upper(),
                "reference": reference_text,
                "status": status,
                "settled_at": datetime.now(UTC).isoformat(),
            },
        }
    ).encode()


def signed_headers(body: bytes, secret: str, t: int | None = None) -> dict:
    """The headers of a webhook: its signature over ``<t>.<body>``."""
    t = int(time.time()) if t is None else t
    return {
        "X-Qonto-Signature": f"t={t},v1={qonto_signature(secret, str(t), body)}",
        "Content-Type": "application/json",
    }


@dataclass(frozen=True)
class BookedCredit:
    transaction_id: str
    amount_cents: int
    currency: str
    reference: str
    debtor_name: str
    booked_on: date


def camt053(iban: str, credits: list[BookedCredit], day: date) -> bytes:
    """One day's statement of ``iban`` with ``credits`` as booked entries (camt.053.001.08).

    Written here with lxml: no maintained library writes camt.053 (sepaxml writes pain.001/008
    only); what payments' reader (``adapters.bank.parse_camt053``) and a bank's importer need is
    the group header, the account, the balances and one entry per credit with its structured
    creditor reference."""
    e = ElementMaker(namespace=CAMT053, nsmap={None: CAMT053})
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    total = sum(c.amount_cents for c in credits)

    def amount(cents: int, currency: str = "EUR"):
        return e.Amt(f"{cents / 100:.2f}", Ccy=currency)

    def balance(code: str, cents: int):
        return e.Bal(
            e.Tp(e.CdOrPrtry(e.Cd(code))),
            amount(cents),
            e.CdtDbtInd("CRDT"),
            e.Dt(e.Dt(day.isoformat())),
        )

    entries = [
        e.Ntry(
            e.NtryRef(c.transaction_id),
            amount(c.amount_cents, c.currency),
            e.CdtDbtInd("CRDT"),
            e.Sts(e.Cd("BOOK")),
            e.BookgDt(e.Dt(c.booked_on.isoformat())),
            e.ValDt(e.Dt(c.booked_on.isoformat())),
            e.AcctSvcrRef(c.transaction_id),
            e.BkTxCd(e.Domn(e.Cd("PMNT"), e.Fmly(e.Cd("RCDT"), e.SubFmlyCd("ESCT")))),
            e.NtryDtls(
                e.TxDtls(
                    e.Refs(e.AcctSvcrRef(c.transaction_id), e.EndToEndId("NOTPROVIDED")),
                    amount(c.amount_cents, c.currency),
                    e.RltdPties(e.Dbtr(e.Pty(e.Nm(c.debtor_name)))),
                    e.RmtInf(
                        e.Strd(
                            e.CdtrRefInf(
                                e.Tp(e.CdOrPrtry(e.Cd("SCOR")), e.Issr("ISO")),
                                e.Ref(c.reference),
                            )
                        )
                    ),
                )
            ),
        )
        for c in credits
    ]
    document = e.Document(
        e.BkToCstmrStmt(
            e.GrpHdr(e.MsgId(f"STMT-{day:%Y%m%d}"), e.CreDtTm(now)),
            e.Stmt(
                e.Id(f"{iban[-8:]}-{day:%Y%m%d}"),
                e.ElctrncSeqNb(day.strftime("%Y%m%d")),
                e.CreDtTm(now),
                e.Acct(e.Id(e.IBAN(iban)), e.Ccy("EUR")),
                balance("OPBD", 0),
                balance("CLBD", total),
                e.TxsSummry(
                    e.TtlCdtNtries(e.NbOfNtries(str(len(credits))), e.Sum(f"{total / 100:.2f}"))
                ),
                *entries,
            ),
        )
    )
    return etree.tostring(document, xml_declaration=True, encoding="UTF-8", pretty_print=True)


@dataclass
class BusinessBank:
    """The account ``iban``; its webhooks go to ``webhook_url`` signed with ``secret``."""

    iban: str
    secret: str
    webhook_url: str | None = None
    statements_dir: str | None = None
    credits: list[BookedCredit] = field(default_factory=list)
    url: str = ""

    def __post_init__(self):
        self._lock = threading.Lock()
        self._server: Server | None = None

    def serve(self, port: int = 0) -> BusinessBank:
        self._server = Server(self.app, port)
        self.url = self._server.url
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.close()

    @Request.application
    def app(self, request: Request) -> Response:
        if request.path == "/sandbox/transfers" and request.method == "POST":
            doc = request.get_json(silent=True) or {}
            reference, cents = doc.get("reference"), doc.get("amount_cents")
            if not isinstance(reference, str) or not isinstance(cents, int) or cents <= 0:
                return self._json({"error": "reference (text) and amount_cents (> 0) needed"}, 400)
            answer = self.receive_transfer(
                reference,
                cents,
                currency=doc.get("currency") or "EUR",
                debtor_name=doc.get("debtor_name") or "M DUPONT",
            )
            return self._json(answer, 201)
        if request.path.startswith("/sandbox/statements/") and request.path.endswith(".xml"):
            try:
                day = date.fromisoformat(request.path.rsplit("/", 1)[-1][: -len(".xml")])
            except ValueError:
                return Response("not found", 404)
            return Response(self.statement(day), 200, mimetype="application/xml")
        return Response("not found", 404)

    @staticmethod
    def _json(doc, status: int) -> Response:
        return Response(json.dumps(doc), status, content_type="application/json")

    def receive_transfer(
        self, reference: str, amount_cents: int, currency: str = "EUR", debtor_name: str = ""
    ) -> dict:
        """A transfer credited now: booked, notified by webhook, written to the statement."""
        credit = BookedCredit(
            transaction_id=f"tx-{uuid.uuid4().hex}",
            amount_cents=amount_cents,
            currency=currency,
            reference=reference,
            debtor_name=debtor_name or "M DUPONT",
            booked_on=datetime.now(UTC).date(),
        )
        with self._lock:
            self.credits.append(credit)
        status = None
        if self.webhook_url:
            body = transfer_webhook_body(
                reference,
                amount_cents,
                currency,
                transaction_id=credit.transaction_id,
                debtor_name=credit.debtor_name,
            )
            try:
                status = requests.post(
                    self.webhook_url,
                    data=body,
                    headers=signed_headers(body, self.secret),
                    timeout=10,
                ).status_code
            except requests.RequestException:
                status = None
        return {
            "transaction_id": credit.transaction_id,
            "webhook_status": status,
            "statement": self.write_statement(credit.booked_on),
        }

    def statement(self, day: date) -> bytes:
        with self._lock:
            credits = [c for c in self.credits if c.booked_on == day]
        return camt053(self.iban, credits, day)

    def write_statement(self, day: date) -> str | None:
        """The day's statement as ``camt053-<day>.xml`` under ``statements_dir`` (written, then
        renamed); its path."""
        if not self.statements_dir:
            return None
        os.makedirs(self.statements_dir, exist_ok=True)
        path = os.path.join(self.statements_dir, f"camt053-{day.isoformat()}.xml")
        with open(path + ".part", "wb") as f:
            f.write(self.statement(day))
        os.replace(path + ".part", path)
        return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m coc_payments.sandbox.business_bank", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--iban", required=True, help="the company's account")
    parser.add_argument("--webhook-url", required=True)
    parser.add_argument("--secret-file", required=True, help="the webhooks' signing secret")
    parser.add_argument("--statements-dir", required=True)
    args = parser.parse_args(argv)
    bank = BusinessBank(
        iban=args.iban,
        secret=read_secret(args.secret_file),
        webhook_url=args.webhook_url,
        statements_dir=args.statements_dir,
    )
    return serve_until_stopped("business-bank", bank, args.port)


if __name__ == "__main__":
    sys.exit(main())
