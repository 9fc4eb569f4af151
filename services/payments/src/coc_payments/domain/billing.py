"""Invoices and credit notes as plain values (no I/O): the sale an order makes, the VAT rules,
the legal mentions, and the chain of SHA-256 digests that makes any alteration of the series
detectable.

* ``Sale`` is what ``order.placed`` tells about an order that an invoice needs, and nothing more:
  the buyer's name and billing address (the shipping address when no billing address was given),
  the company's name, SIREN and VAT number when the buyer is a business, the vehicle, the total
  and the VAT regime. No e-mail, no phone.
* VAT: the catalogue price includes 20 % VAT (``standard``); a business buyer established in
  another EU country with a valid VAT number is invoiced without VAT under the reverse charge
  (``reverse_charge``, « Autoliquidation »). The orders service decides the regime before
  payment and carries it in ``order.placed`` (``vat_regime``, ``vat_rate``, ``vat``); an order
  that names none is ``standard`` at the configured rate.
* ``BillingDocument`` is an issued invoice or credit note: its data (a JSON document, what the
  PDF and the Factur-X XML are made from), and its digests: ``chain`` = SHA-256 of the previous
  document's chain, the number, the data's and the PDF's digests. Invoices and credit notes are
  two series, each numbered without gap and chained on its own.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from coc_shared.errors import InvalidEvent

STANDARD, REVERSE_CHARGE = "standard", "reverse_charge"
VAT_REGIMES = (STANDARD, REVERSE_CHARGE)
INVOICE, CREDIT_NOTE = "invoice", "credit_note"
SERIES_PREFIX = {INVOICE: "FA", CREDIT_NOTE: "AV"}
PARIS = ZoneInfo("Europe/Paris")  # the seller's dates (issue, sale) are French dates
GENESIS = "0" * 64  # the "previous chain" of a series' first document
EU_COUNTRIES = frozenset(
    "AT BE BG CY CZ DE DK EE EL ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()
)
METHOD_LABELS = {
    "card": "carte bancaire",
    "paypal": "PayPal",
    "transfer": "virement bancaire",
}
PROVIDER_LABELS = {
    "systempay": "Systempay",
    "paypal": "PayPal",
    "bank-transfer": "",
}
LATE_PAYMENT_MENTION = (
    "En cas de retard de paiement : pénalités au taux de trois fois le taux d'intérêt légal "
    "(art. L441-10 du Code de commerce) et indemnité forfaitaire pour frais de recouvrement "
    "de 40 € (art. D441-5 du Code de commerce)."
)
NO_DISCOUNT_MENTION = "Pas d'escompte pour paiement anticipé."
REVERSE_CHARGE_MENTION = "Autoliquidation - TVA due par le preneur (art. 196 directive 2006/112/CE)"


def number_of(kind: str, seq: int) -> str:
    """The printed number of the ``seq``-th document of a series: FA-00000001, AV-00000001."""
    return f"{SERIES_PREFIX[kind]}-{seq:08d}"


def seq_of(number: str) -> int:
    return int(number.rsplit("-", 1)[1])


# --------------------------------------------------------------------------- amounts
def euros(cents: int) -> str:
    """1234567 -> '12 345,67 €' (French notation)."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    grouped = f"{whole:,}".replace(",", "\u202f")
    return f"{sign}{grouped},{rest:02d} €"


def decimal_amount(cents: int) -> str:
    """1234567 -> '12345.67' (the XML's and the FEC's notation is the caller's)."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}{whole}.{rest:02d}"


def rate_text(rate: str) -> str:
    """'20.0' -> '20 %', '5.5' -> '5,5 %'."""
    value = Decimal(rate).normalize()
    return f"{value:f}".replace(".", ",") + " %"


def _rate(value, default: str) -> str:
    try:
        rate = Decimal(str(value if value not in (None, "") else default))
    except InvalidOperation:
        raise InvalidEvent(f"not a VAT rate: {value!r}") from None
    if not Decimal(0) <= rate < Decimal(100):
        raise InvalidEvent(f"not a VAT rate: {value!r}")
    return f"{rate.quantize(Decimal('0.01')):f}"


@dataclass(frozen=True)
class Amounts:
    """Net, VAT and total of a document, in cents, and the VAT that applies."""

    net_cents: int
    vat_cents: int
    total_cents: int
    currency: str
    vat_rate: str  # '20.00'; '0.00' under the reverse charge
    vat_regime: str

    @classmethod
    def included(cls, total_cents: int, currency: str, regime: str, rate: str, vat=None):
        """The amounts of a total VAT included (``vat``: the VAT the order computed, if any)."""
        if regime == REVERSE_CHARGE:
            return cls(total_cents, 0, total_cents, currency, "0.00", regime)
        if vat is None:
            net = (Decimal(total_cents) / (1 + Decimal(rate) / 100)).quantize(
                Decimal(1), rounding=ROUND_HALF_UP
            )
            vat = total_cents - int(net)
        if not 0 <= vat <= total_cents:
            raise InvalidEvent("the VAT is not a part of the total")
        return cls(total_cents - vat, vat, total_cents, currency, rate, regime)

    def part(self, cents: int) -> Amounts:
        """The amounts of ``cents`` of this total (a partial credit note), VAT in proportion."""
        if cents == self.total_cents:
            return self
        vat = int(
            (Decimal(self.vat_cents) * cents / self.total_cents).quantize(
                Decimal(1), rounding=ROUND_HALF_UP
            )
        )
        return replace(self, net_cents=cents - vat, vat_cents=vat, total_cents=cents)

    @property
    def category(self) -> str:
        """EN 16931 VAT category: S (standard rate), AE (reverse charge)."""
        return "AE" if self.vat_regime == REVERSE_CHARGE else "S"

    def as_dict(self) -> dict:
        return {
            "net_cents": self.net_cents,
            "vat_cents": self.vat_cents,
            "total_cents": self.total_cents,
            "currency": self.currency,
            "vat_rate": self.vat_rate,
            "vat_regime": self.vat_regime,
            "vat_category": self.category,
        }


# --------------------------------------------------------------------------- the sale
_ADDRESS_KEYS = ("line1", "line2", "postal_code", "city", "country")


def _clean(value) -> str | None:
    text = " ".join(str(value).split()) if value not in (None, "") else ""
    return text or None


def _address(value) -> dict:
    if not isinstance(value, dict):
        raise InvalidEvent("order.placed carries no billing or shipping address")
    address = {k: _clean(value.get(k)) for k in _ADDRESS_KEYS}
    if not (address["line1"] and address["city"] and address["country"]):
        raise InvalidEvent("the billing address needs a street, a city and a country")
    address["country"] = address["country"].upper()
    return {k: v for k, v in address.items() if v}


@dataclass(frozen=True)
class Buyer:
    name: str  # the person
    address: dict
    company_name: str | None = None
    siren: str | None = None
    vat_number: str | None = None

    @property
    def business(self) -> bool:
        return bool(self.company_name)

    @property
    def country(self) -> str:
        return self.address.get("country", "FR")

    @property
    def display_name(self) -> str:
        return self.company_name or self.name

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "address": self.address,
            "company_name": self.company_name,
            "siren": self.siren,
            "vat_number": self.vat_number,
            "business": self.business,
        }

    @classmethod
    def from_dict(cls, doc: dict) -> Buyer:
        return cls(
            name=doc["name"],
            address=doc["address"],
            company_name=doc.get("company_name"),
            siren=doc.get("siren"),
            vat_number=doc.get("vat_number"),
        )


@dataclass(frozen=True)
class Sale:
    """What an invoice needs of an order, from ``order.placed`` (data and personal part)."""

    order_id: str
    order_number: str
    brand: str
    vin: str
    amounts: Amounts
    buyer: Buyer
    account_id: str | None = None

    @classmethod
    def from_order_placed(cls, data: dict, personal: dict | None, default_rate: str) -> Sale:
        if not isinstance(personal, dict):
            raise InvalidEvent("order.placed carries no buyer (personal part)")
        name = _clean(f"{personal.get('first_name') or ''} {personal.get('last_name') or ''}")
        if not name:
            raise InvalidEvent("order.placed names no buyer")
        company = personal.get("company") if isinstance(personal.get("company"), dict) else {}
        buyer = Buyer(
            name=name,
            address=_address(personal.get("billing_address") or personal.get("shipping_address")),
            company_name=_clean(company.get("name")),
            siren=_clean(company.get("siren")),
            vat_number=_clean(company.get("vat_number")),
        )
        regime = data.get("vat_regime") or STANDARD
        if regime not in VAT_REGIMES:
            raise InvalidEvent(f"unknown VAT regime {regime!r}")
        if regime == REVERSE_CHARGE and not reverse_charge_applies(buyer):
            raise InvalidEvent(
                "reverse charge needs a business buyer established in another EU country, "
                "with its VAT number"
            )
        total = data.get("total") or {}
        vat = data.get("vat")
        vat_cents = vat.get("amount_cents") if isinstance(vat, dict) else None
        rate = _rate(data.get("vat_rate"), default_rate)
        return cls(
            order_id=data["order_id"],
            order_number=data["order_number"],
            brand=_clean(data.get("brand")) or "",
            vin=_clean(data.get("vin")) or "",
            amounts=Amounts.included(
                total.get("amount_cents"), total.get("currency"), regime, rate, vat_cents
            ),
            buyer=buyer,
            account_id=data.get("account_id") or None,
        )


def reverse_charge_applies(buyer: Buyer) -> bool:
    """A business established in another EU member state, with an intra-EU VAT number of it."""
    from stdnum.eu import vat as eu_vat

    if not (buyer.business and buyer.vat_number) or buyer.country == "FR":
        return False
    if buyer.country not in EU_COUNTRIES or not eu_vat.is_valid(buyer.vat_number):
        return False
    prefix = buyer.vat_number[:2].upper()
    return prefix == buyer.country or (prefix == "EL" and buyer.country == "GR")


# --------------------------------------------------------------------------- the documents
@dataclass(frozen=True)
class Payment:
    method: str
    provider: str
    transaction_id: str
    paid_at: datetime

    def as_dict(self) -> dict:
        return {
            "method": self.method,
            "provider": self.provider,
            "transaction_id": self.transaction_id,
            "paid_at": self.paid_at.isoformat(),
        }

    @property
    def label(self) -> str:
        method = METHOD_LABELS.get(self.method, self.method)
        provider = PROVIDER_LABELS.get(self.provider, self.provider)
        if not provider or provider.lower() == method.lower():
            return method
        return f"{method} ({provider})"


def invoice_data(
    number: str,
    issued_at: datetime,
    sale: Sale,
    payment: Payment,
    seller: dict,
) -> dict:
    """The data of an invoice (what is stored, hashed, printed and put in the XML)."""
    return _document(INVOICE, number, issued_at, sale, sale.amounts, payment, seller)


def credit_note_data(
    number: str,
    issued_at: datetime,
    invoice: dict,
    amounts: Amounts,
    refund_id: str,
    reason: str,
) -> dict:
    """A credit note of ``invoice`` (its data) for ``amounts``."""
    doc = dict(invoice)
    doc.update(
        kind=CREDIT_NOTE,
        number=number,
        issued_at=issued_at.isoformat(),
        issue_date=issued_at.astimezone(PARIS).date().isoformat(),
        amounts=amounts.as_dict(),
        corrects={"number": invoice["number"], "issue_date": invoice["issue_date"]},
        refund_id=refund_id,
        reason=reason,
    )
    return doc


def _document(kind, number, issued_at, sale, amounts, payment, seller) -> dict:
    return {
        "kind": kind,
        "number": number,
        "issued_at": issued_at.isoformat(),
        "issue_date": issued_at.astimezone(PARIS).date().isoformat(),
        "sale_date": payment.paid_at.astimezone(PARIS).date().isoformat(),
        "order_id": sale.order_id,
        "order_number": sale.order_number,
        "seller": seller,
        "buyer": sale.buyer.as_dict(),
        "line": {
            "description": f"Certificat de conformité (COC) pour le véhicule VIN {sale.vin}",
            "brand": sale.brand,
            "vin": sale.vin,
            "quantity": 1,
        },
        "amounts": amounts.as_dict(),
        "payment": payment.as_dict(),
    }


def canonical(data: dict) -> bytes:
    """The bytes a document's data is stored and hashed as (stable: sorted keys, no spaces)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def chain_digest(previous: str, number: str, data_sha256: str, pdf_sha256: str) -> str:
    return sha256(f"{previous}|{number}|{data_sha256}|{pdf_sha256}".encode())


@dataclass(frozen=True)
class BillingDocument:
    """An issued invoice or credit note, as stored: never changed once written."""

    kind: str
    seq: int
    number: str
    order_id: str
    issued_at: datetime
    data: dict
    pdf: bytes
    previous_sha256: str
    data_sha256: str = ""
    pdf_sha256: str = ""
    chain_sha256: str = ""
    refund_id: str | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def issue(cls, kind, seq, order_id, issued_at, data, pdf, previous, refund_id=None):
        raw = canonical(data)
        data_sha, pdf_sha = sha256(raw), sha256(pdf)
        number = data["number"]
        return cls(
            kind=kind,
            seq=seq,
            number=number,
            order_id=order_id,
            issued_at=issued_at,
            data=data,
            pdf=pdf,
            previous_sha256=previous,
            data_sha256=data_sha,
            pdf_sha256=pdf_sha,
            chain_sha256=chain_digest(previous, number, data_sha, pdf_sha),
            refund_id=refund_id,
        )

    @property
    def amounts(self) -> dict:
        return self.data["amounts"]


# --------------------------------------------------------------------------- what is printed
def pdf_text(text: str, known) -> str:
    """``text`` with each character the PDF's font lacks replaced by its Latin base letter."""
    out = []
    for ch in text:
        if ch in known:
            out.append(ch)
            continue
        base = unicodedata.normalize("NFKD", ch)
        base = "".join(c for c in base if c in known and not unicodedata.combining(c))
        out.append(base or "?")
    return "".join(out)


def address_lines(address: dict) -> list[str]:
    lines = [address.get("line1", "")]
    if address.get("line2"):
        lines.append(address["line2"])
    lines.append(f"{address.get('postal_code', '')} {address.get('city', '')}".strip())
    lines.append(address.get("country", ""))
    return [line for line in lines if line]


def french_date(iso: str) -> str:
    return date.fromisoformat(iso[:10]).strftime("%d/%m/%Y")


@dataclass(frozen=True)
class Layout:
    """What the PDF shows, in order (``adapters.invoice_pdf`` draws it)."""

    title: str
    seller: list[str]
    buyer: list[str]
    references: list[tuple[str, str]]
    line: tuple[str, str, str, str, str]  # description, quantity, unit net, VAT rate, net
    totals: list[tuple[str, str]]
    mentions: list[str]


def layout(data: dict) -> Layout:
    seller, buyer, amounts = data["seller"], data["buyer"], data["amounts"]
    credit = data["kind"] == CREDIT_NOTE
    reverse = amounts["vat_regime"] == REVERSE_CHARGE
    seller_lines = [seller["name"], *address_lines(seller["address"])]
    seller_lines.append(
        f"SIREN {seller['siren']} - N° TVA intracommunautaire {seller['vat_number']}"
    )
    if seller.get("legal_mentions"):
        seller_lines.append(seller["legal_mentions"])
    buyer_lines = []
    if buyer.get("company_name"):
        buyer_lines.append(buyer["company_name"])
        buyer_lines.append(f"À l'attention de {buyer['name']}")
    else:
        buyer_lines.append(buyer["name"])
    buyer_lines += address_lines(buyer["address"])
    if buyer.get("siren"):
        buyer_lines.append(f"SIREN {buyer['siren']}")
    if buyer.get("vat_number"):
        buyer_lines.append(f"N° TVA intracommunautaire {buyer['vat_number']}")
    references = [
        ("Date d'émission", french_date(data["issue_date"])),
        ("Date de la vente", french_date(data["sale_date"])),
        ("Commande", data["order_number"]),
    ]
    if credit:
        references.insert(
            0,
            (
                "Facture d'origine",
                f"{data['corrects']['number']} du {french_date(data['corrects']['issue_date'])}",
            ),
        )
    rate = "0 % (AE)" if reverse else rate_text(amounts["vat_rate"])
    net = euros(amounts["net_cents"])
    totals = [("Total HT", net)]
    if reverse:
        totals.append(("TVA (autoliquidation)", euros(0)))
    else:
        totals.append((f"TVA {rate_text(amounts['vat_rate'])}", euros(amounts["vat_cents"])))
    totals.append(("Total TTC" if not reverse else "Total", euros(amounts["total_cents"])))
    payment = data["payment"]
    method = Payment(
        payment["method"],
        payment["provider"],
        payment["transaction_id"],
        datetime.fromisoformat(payment["paid_at"]),
    ).label
    mentions = []
    if reverse:
        mentions.append(REVERSE_CHARGE_MENTION)
        mentions.append(f"N° TVA de l'acheteur : {buyer['vat_number']}")
    if credit:
        mentions.append(f"Avoir : {data.get('reason') or 'remboursement'}.")
        mentions.append(f"Remboursement par {method}, à la date de l'avoir.")
    else:
        mentions.append(
            f"Payée le {data['sale_date'][8:10]}/{data['sale_date'][5:7]}/{data['sale_date'][:4]} "
            f"par {method} "
            f"(transaction {payment['transaction_id']})."
        )
    mentions.append(NO_DISCOUNT_MENTION)
    if buyer.get("business"):
        mentions.append(LATE_PAYMENT_MENTION)
    title = ("Avoir n° " if credit else "Facture n° ") + data["number"]
    return Layout(
        title=title,
        seller=seller_lines,
        buyer=buyer_lines,
        references=references,
        line=(data["line"]["description"], "1", net, rate, net),
        totals=totals,
        mentions=mentions,
    )


_SAFE_FILE = re.compile(r"[^A-Za-z0-9_.-]")


def pdf_filename(number: str) -> str:
    return _SAFE_FILE.sub("_", number) + ".pdf"


INVOICES_LEGAL_BASIS = "Code de commerce L123-22; GDPR 17(3)(b)"


def invoices_kept_until(last_issued_at: datetime) -> date:
    """Invoices (and the buyer details on them) are kept ten years from the end of the financial
    year of the last one (the calendar year here)."""
    return date(last_issued_at.year + 10, 12, 31)
