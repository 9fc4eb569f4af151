"""The VAT of an order, decided before payment (no I/O): the price the order shows is the price
the invoice states.

* ``standard``: the catalogue price includes French VAT (the brand's rate, 20 %) — private buyers,
  French businesses, businesses outside the EU, and any business whose VAT number VIES did not
  confirm.
* ``reverse_charge`` (« Autoliquidation », art. 196 of directive 2006/112/EC): a business
  established in another EU member state, with an intra-EU VAT number of that state that VIES
  confirms valid, pays the price without VAT and accounts for the VAT itself; the invoice says so.

The buyer's country is the billing address's (the shipping address's when no billing address was
given), as the payments service reads it for the invoice (``coc_payments.domain.billing``): both
decide alike, so that payments never refuses the regime an order was placed under.

What VIES answers (``coc_shared.vies``) decides between the two: ``valid`` → reverse charge;
``invalid`` → the order is refused with the reason on ``company.vat_number`` (the buyer corrects
it, or leaves it out and pays French VAT); ``unavailable`` → see ``price``.
"""

from __future__ import annotations

from dataclasses import dataclass

from coc_shared.vies import INVALID, MALFORMED, UNAVAILABLE, VALID

STANDARD, REVERSE_CHARGE = "standard", "reverse_charge"
VAT_REGIMES = (STANDARD, REVERSE_CHARGE)
# the member states (Greece's VAT numbers start with EL)
EU_MEMBER_STATES = frozenset(
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()
)
REVERSE_CHARGE_MENTION = "Autoliquidation - TVA due par le preneur (art. 196 directive 2006/112/CE)"
NO_VAT_RATE = "0.0"


def buyer_country(billing_address: dict | None, shipping_address: dict | None) -> str:
    """The country the buyer is established in, for VAT: the billing address's, else the shipping
    address's."""
    address = billing_address or shipping_address or {}
    return str(address.get("country") or "").upper()


def reverse_charge_candidate(company: dict | None, country: str) -> str | None:
    """The VAT number VIES must confirm for the order to be invoiced under the reverse charge: a
    business (``company``, with its name) established in another member state than France, whose
    VAT number is of that state. None: French VAT, without asking VIES."""
    if not company or not company.get("name") or not company.get("vat_number"):
        return None
    if country == "FR" or country not in EU_MEMBER_STATES:
        return None
    number = str(company["vat_number"]).upper()
    prefix = number[:2]
    if prefix == country or (prefix == "EL" and country == "GR"):
        return number
    return None


def vat_number_refusal(check_status: str | None) -> str | None:
    """Why the order cannot be placed with this VAT number (for ``company.vat_number``), or None."""
    if check_status in (INVALID, MALFORMED):
        return (
            "VIES does not know this VAT number as valid: correct it, or leave it out to pay "
            "French VAT."
        )
    return None


@dataclass(frozen=True)
class Pricing:
    """What the order costs and the VAT it includes, under its regime."""

    regime: str
    total_cents: int
    currency: str
    vat_rate: str
    vat_cents: int
    # VIES's answer for the reverse-charge candidate at order time (valid | unavailable), or None
    # when no check was needed
    vat_check: str | None = None

    @property
    def mention(self) -> str | None:
        return REVERSE_CHARGE_MENTION if self.regime == REVERSE_CHARGE else None


def price(brand, check_status: str | None) -> Pricing:
    """The order's pricing from ``brand`` (its price VAT included, rate and VAT) and VIES's answer
    about the reverse-charge candidate (None: there was none to check).

    VIES unavailable (down, or the member state's register not answering): the order is placed
    at once under the standard regime (French VAT included) rather than refused with a 5xx or a
    503 — a customer is never kept from ordering by the Commission's service, and the invoice
    must match what was paid. The check is not lost: the payments service records a VIES check
    for every business order with a VAT number and retries it while VIES is down (its worker's
    ``vat-checks`` loop, ``GET /v1/staff/vat-checks``); the order keeps ``vat_check:
    unavailable`` so staff see which orders to settle (a credit note and a reverse-charge invoice,
    with the VAT refunded) once VIES confirms the number.
    """
    if check_status == VALID:
        return Pricing(
            regime=REVERSE_CHARGE,
            total_cents=brand.price_cents - brand.vat_cents,
            currency=brand.currency,
            vat_rate=NO_VAT_RATE,
            vat_cents=0,
            vat_check=VALID,
        )
    return Pricing(
        regime=STANDARD,
        total_cents=brand.price_cents,
        currency=brand.currency,
        vat_rate=brand.vat_rate,
        vat_cents=brand.vat_cents,
        vat_check=UNAVAILABLE if check_status == UNAVAILABLE else None,
    )
