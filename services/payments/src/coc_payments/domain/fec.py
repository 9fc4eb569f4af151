"""The Fichier des Écritures Comptables (FEC, article A47 A-1 du Livre des procédures fiscales)
of a period, as plain values: its 18 columns in the legal order, ``|``-separated, dates as
YYYYMMDD, amounts with a decimal comma, one line per account movement, every entry balanced.

* sales journal (``VE``): an invoice debits the customer (411) with its total and credits
  revenue (706) with its net and VAT collected (44571) with its VAT; a credit note does the
  reverse;
* bank journal (``BQ``): a payment received debits the provider's bank account (512…) and
  credits the customer; a refund debits the customer and credits the bank account.

The customer's auxiliary account is the order number, so that each order's account settles.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from .billing import decimal_amount

COLUMNS = (
    "JournalCode",
    "JournalLib",
    "EcritureNum",
    "EcritureDate",
    "CompteNum",
    "CompteLib",
    "CompAuxNum",
    "CompAuxLib",
    "PieceRef",
    "PieceDate",
    "EcritureLib",
    "Debit",
    "Credit",
    "EcritureLet",
    "DateLet",
    "ValidDate",
    "Montantdevise",
    "Idevise",
)
JOURNALS = {"VE": "Journal des ventes", "BQ": "Journal de banque"}


@dataclass(frozen=True)
class Line:
    account: str
    account_label: str
    debit: int
    credit: int
    aux: str = ""
    aux_label: str = ""


@dataclass(frozen=True)
class Entry:
    journal: str
    on: date
    piece: str
    piece_date: date
    label: str
    lines: tuple[Line, ...]

    @property
    def balanced(self) -> bool:
        return sum(x.debit for x in self.lines) == sum(x.credit for x in self.lines)


@dataclass(frozen=True)
class Movement:
    """Something that happened in the period, as the FEC needs it."""

    kind: str  # invoice | credit_note | payment | refund
    on: date
    reference: str  # the document's number, the payment's or the refund's id
    order_number: str
    customer: str
    net_cents: int = 0
    vat_cents: int = 0
    total_cents: int = 0
    provider: str = ""
    at: datetime | None = None  # when it happened: the entries' order within a day


def entries(movements: list[Movement], accounts) -> list[Entry]:
    out = []
    for m in sorted(movements, key=lambda m: (m.on, m.at or datetime.min, m.reference)):
        customer = Line(accounts.customers, "Clients", 0, 0, m.order_number, m.customer)
        if m.kind in ("invoice", "credit_note"):
            lines = [
                _line(customer, m.total_cents, 0),
                Line(accounts.revenue, "Prestations de services", 0, m.net_cents),
            ]
            if m.vat_cents:
                lines.append(Line(accounts.vat, "TVA collectée", 0, m.vat_cents))
            if m.kind == "credit_note":
                lines = [_swap(x) for x in lines]
            label = ("Facture " if m.kind == "invoice" else "Avoir ") + m.reference
            out.append(Entry("VE", m.on, m.reference, m.on, label, tuple(lines)))
        else:
            bank = Line(accounts.bank(m.provider), f"Banque {m.provider}", 0, 0)
            lines = [_line(bank, m.total_cents, 0), _line(customer, 0, m.total_cents)]
            if m.kind == "refund":
                lines = [_swap(x) for x in lines]
            label = ("Encaissement " if m.kind == "payment" else "Remboursement ") + (
                m.order_number
            )
            out.append(Entry("BQ", m.on, m.reference[:60], m.on, label, tuple(lines)))
    return out


def _line(template: Line, debit: int, credit: int) -> Line:
    return Line(
        template.account, template.account_label, debit, credit, template.aux, template.aux_label
    )


def _swap(line: Line) -> Line:
    return _line(line, line.credit, line.debit)


def _amount(cents: int) -> str:
    return decimal_amount(cents).replace(".", ",")


def _clean(text: str) -> str:
    return " ".join(str(text).replace("|", "/").split())


def render(entry_list: list[Entry]) -> str:
    """The file's text: the header line, then one line per movement (CRLF, as tools expect)."""
    rows = ["|".join(COLUMNS)]
    numbers: dict[str, int] = {}
    for entry in entry_list:
        numbers[entry.journal] = numbers.get(entry.journal, 0) + 1
        number = f"{entry.journal}{numbers[entry.journal]:06d}"
        day = entry.on.strftime("%Y%m%d")
        for line in entry.lines:
            rows.append(
                "|".join(
                    (
                        entry.journal,
                        JOURNALS[entry.journal],
                        number,
                        day,
                        line.account,
                        line.account_label,
                        _clean(line.aux),
                        _clean(line.aux_label),
                        _clean(entry.piece),
                        entry.piece_date.strftime("%Y%m%d"),
                        _clean(entry.label),
                        _amount(line.debit),
                        _amount(line.credit),
                        "",
                        "",
                        day,
                        "",
                        "",
                    )
                )
            )
    return "\r\n".join(rows) + "\r\n"


def file_name(siren: str, closing: date) -> str:
    """The mandated name: <SIREN>FEC<YYYYMMDD of the period's closing date>."""
    return f"{siren}FEC{closing.strftime('%Y%m%d')}.txt"
