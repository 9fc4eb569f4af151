"""The business bank: its transaction webhook (Qonto style) and ISO 20022 camt.053 statements.

Both yield ``Credit`` values (an incoming amount and the texts a reference may be in); matching
a credit to an order is the service layer's job (``domain.references``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from defusedxml import ElementTree as SafeET

from coc_shared import guards

from .hosted_page import BadSignature


@dataclass(frozen=True)
class Credit:
    transaction_id: str
    amount_cents: int | None
    currency: str | None
    texts: tuple[str, ...]  # label, remittance information, references
    booked: bool = True
    credit: bool = True

    @property
    def label(self) -> str:
        return " ".join(t for t in self.texts if t)


# --------------------------------------------------------------------------- webhook
def qonto_signature(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_qonto(
    header: str | None, body: bytes, secret: str | None, now: float, tolerance: float
) -> None:
    """``X-Qonto-Signature: t=<unix time>,v1=<hex HMAC-SHA-256(secret, "<t>.<raw body>")>``."""
    if not secret:
        raise BadSignature("bank webhook secret is not configured")
    if not header:
        raise BadSignature("no signature header")
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value.strip())
    timestamps = parts.get("t") or []
    if len(timestamps) != 1 or not re.fullmatch(r"\d{1,12}", timestamps[0]):
        raise BadSignature("no usable timestamp")
    if abs(now - int(timestamps[0])) > tolerance:
        raise BadSignature("timestamp outside the tolerance")
    expected = qonto_signature(secret, timestamps[0], body)
    if not any(hmac.compare_digest(expected, given.lower()) for given in parts.get("v1", [])):
        raise BadSignature("signature mismatch")


def webhook_credit(body: bytes) -> tuple[Credit, str]:
    """The transaction a (verified) webhook carries, and its dedupe key."""
    doc = guards.loads(body)  # within the JSON limits, no NUL or lone surrogate
    data = doc.get("data") if isinstance(doc.get("data"), dict) else doc.get("transaction") or doc
    transaction_id = str(data.get("transaction_id") or data.get("id") or "")
    if not transaction_id:
        raise ValueError("no transaction id")
    amount_cents = data.get("amount_cents")
    if amount_cents is None and data.get("amount") is not None:
        amount_cents = _cents(str(data.get("amount")))
    status = data.get("status") or "completed"
    credit = Credit(
        transaction_id=transaction_id,
        amount_cents=int(amount_cents)
        if isinstance(amount_cents, (int, float)) and not isinstance(amount_cents, bool)
        else None,
        currency=data.get("currency"),
        texts=tuple(str(data.get(k) or "") for k in ("label", "reference", "note")),
        booked=status == "completed",
        credit=data.get("side") == "credit",
    )
    return credit, f"{transaction_id}:{status}"


def _cents(value: str | None) -> int | None:
    try:
        amount = Decimal((value or "").strip())
    except InvalidOperation:
        return None
    cents = amount * 100
    return int(cents) if cents == cents.to_integral_value() else None


# --------------------------------------------------------------------------- camt.053
class StatementError(ValueError):
    """Not a camt.053 statement we can read."""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(el, name):
    return [c for c in el if _local(c.tag) == name]


def _child(el, *path):
    for name in path:
        if el is None:
            return None
        found = _children(el, name)
        el = found[0] if found else None
    return el


def _text(el, *path) -> str:
    found = _child(el, *path)
    return (found.text or "").strip() if found is not None and found.text else ""


def _all_texts(el, names: set[str]) -> list[str]:
    return [
        (e.text or "").strip()
        for e in el.iter()
        if _local(e.tag) in names and e.text and e.text.strip() and e.text.strip() != "NOTPROVIDED"
    ]


def parse_camt053(xml: bytes) -> list[Credit]:
    """Every entry of every statement (namespace version independent), one credit per
    transaction detail of an entry that has several."""
    try:
        root = SafeET.fromstring(xml)
    except Exception as exc:
        raise StatementError(f"not well-formed or forbidden XML: {type(exc).__name__}") from None
    if "camt.053" not in root.tag and _child(root, "BkToCstmrStmt") is None:
        raise StatementError("not a camt.053 document")
    statements = [s for s in root.iter() if _local(s.tag) == "Stmt"]
    if not statements:
        raise StatementError("no statement in the document")
    credits: list[Credit] = []
    for stmt in statements:
        stmt_id = _text(stmt, "Id")
        for n, entry in enumerate(_children(stmt, "Ntry")):
            status = _text(entry, "Sts", "Cd") or _text(entry, "Sts")
            booked = status == "BOOK"
            is_credit = _text(entry, "CdtDbtInd") == "CRDT"
            entry_ref = _text(entry, "AcctSvcrRef") or _text(entry, "NtryRef") or f"{stmt_id}#{n}"
            amt = _child(entry, "Amt")
            details = [
                d for dtls in _children(entry, "NtryDtls") for d in _children(dtls, "TxDtls")
            ]
            if len(details) <= 1:
                texts = _all_texts(
                    entry, {"Ustrd", "Ref", "AddtlNtryInf", "AddtlTxInf", "EndToEndId"}
                )
                credits.append(
                    Credit(
                        transaction_id=entry_ref,
                        amount_cents=_cents(amt.text if amt is not None else None),
                        currency=amt.get("Ccy") if amt is not None else None,
                        texts=tuple(texts),
                        booked=booked,
                        credit=is_credit,
                    )
                )
                continue
            for i, tx in enumerate(details):
                tx_amt = _child(tx, "Amt")
                if tx_amt is None:
                    tx_amt = _child(tx, "AmtDtls", "TxAmt", "Amt")
                ref = _text(tx, "Refs", "AcctSvcrRef") or f"{entry_ref}/{i}"
                texts = _all_texts(tx, {"Ustrd", "Ref", "AddtlTxInf", "EndToEndId"})
                credits.append(
                    Credit(
                        transaction_id=ref,
                        amount_cents=_cents(tx_amt.text if tx_amt is not None else None),
                        currency=tx_amt.get("Ccy") if tx_amt is not None else None,
                        texts=tuple(texts),
                        booked=booked,
                        credit=is_credit,
                    )
                )
    return credits
