"""Checks of what a customer types, with well-kept libraries (no I/O): each returns the normalised
value or raises ``ValueError`` with the message shown to the customer for that field."""

from __future__ import annotations

import re
from datetime import date

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from stdnum import exceptions as stdnum_errors
from stdnum.eu import vat as eu_vat
from stdnum.fr import siren as fr_siren
from stdnum.fr import tva as fr_tva
from vininfo import Vin
from vininfo.exceptions import ValidationError as VinValidationError

# A person's name: letters of any script (with their accents), single spaces, hyphens, apostrophes.
_NAME = re.compile(r"^[^\W\d_]+(?:(?:[ '’\-]|[ ]?[\-'’][ ]?)[^\W\d_]+)*\.?$")

EU_COUNTRIES = (
    "AT",
    "BE",
    "BG",
    "CY",
    "CZ",
    "DE",
    "DK",
    "EE",
    "ES",
    "FI",
    "FR",
    "GR",
    "HR",
    "HU",
    "IE",
    "IT",
    "LT",
    "LU",
    "LV",
    "MT",
    "NL",
    "PL",
    "PT",
    "RO",
    "SE",
    "SI",
    "SK",
)

# Postal code formats of the EU countries (as published by the postal operators / UPU).
POSTAL_CODES = {
    "AT": r"\d{4}",
    "BE": r"\d{4}",
    "BG": r"\d{4}",
    "CY": r"\d{4}",
    "CZ": r"\d{3} ?\d{2}",
    "DE": r"\d{5}",
    "DK": r"\d{4}",
    "EE": r"\d{5}",
    "ES": r"(?:0[1-9]|[1-4]\d|5[0-2])\d{3}",
    "FI": r"\d{5}",
    "FR": r"(?:0[1-9]|[1-8]\d|9[0-8]|2A|2B)\d{3}",
    "GR": r"\d{3} ?\d{2}",
    "HR": r"\d{5}",
    "HU": r"\d{4}",
    "IE": r"[AC-FHKNPRTV-Y]\d{2}(?:\d|W) ?[0-9AC-FHKNPRTV-Y]{4}",
    "IT": r"\d{5}",
    "LT": r"(?:LT-)?\d{5}",
    "LU": r"(?:L-)?\d{4}",
    "LV": r"(?:LV-)?\d{4}",
    "MT": r"[A-Z]{3} ?\d{4}",
    "NL": r"\d{4} ?[A-Z]{2}",
    "PL": r"\d{2}-\d{3}",
    "PT": r"\d{4}-\d{3}",
    "RO": r"\d{6}",
    "SE": r"\d{3} ?\d{2}",
    "SI": r"(?:SI-)?\d{4}",
    "SK": r"\d{3} ?\d{2}",
}


UNSTORABLE_TEXT = "Not valid text: it holds an unpaired surrogate or a control character."
# unpaired (lone) surrogates, and the C0 and C1 control characters but tab and line breaks
_UNSTORABLE = re.compile("[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def storable_text(value: str) -> str:
    """``value`` if it is text that can be stored, sent and shown: valid Unicode (no unpaired
    surrogate, which no UTF-8 database or JSON encoder takes) and no control character (NUL...)
    other than tab and line breaks."""
    if _UNSTORABLE.search(value):
        raise ValueError(UNSTORABLE_TEXT)
    return value


def is_storable_string(value) -> bool:
    return isinstance(value, str) and _UNSTORABLE.search(value) is None


def person_name(value: str) -> str:
    value = " ".join((value or "").split())
    if not value:
        raise ValueError("Missing data for required field.")
    if len(value) > 100:
        raise ValueError("Longer than maximum length 100.")
    if not _NAME.match(value):
        raise ValueError("Only letters, spaces, hyphens and apostrophes are allowed.")
    return value


def email_address(value: str) -> str:
    try:
        return validate_email(value or "", check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"Not a valid e-mail address: {exc}") from None


def phone_e164(value: str, default_region: str = "FR") -> str:
    try:
        number = phonenumbers.parse(value or "", default_region)
    except phonenumbers.NumberParseException:
        raise ValueError("Not a valid phone number.") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("Not a valid phone number.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def postal_code(country: str, value: str) -> str:
    value = " ".join((value or "").upper().split())
    if not value:
        raise ValueError("Missing data for required field.")
    pattern = POSTAL_CODES.get(country)
    if pattern is not None and not re.fullmatch(pattern, value):
        raise ValueError(f"Not a valid postal code for {country}.")
    if len(value) > 12:
        raise ValueError("Longer than maximum length 12.")
    return value


def siren(value: str) -> str:
    try:
        return fr_siren.validate(value or "")
    except stdnum_errors.ValidationError:
        raise ValueError("Not a valid SIREN number.") from None


def french_vat_key(siren_number: str) -> str:
    """The two-digit key of the French VAT number of a SIREN: (12 + 3 × (SIREN mod 97)) mod 97."""
    return f"{(12 + 3 * (int(siren_number) % 97)) % 97:02d}"


def vat_number(value: str, siren_number: str | None = None) -> str:
    """An intra-EU VAT number (compact, with its country prefix); a French one must match the
    SIREN."""
    compact = re.sub(r"[\s.\-/]", "", value or "").upper()
    if len(compact) < 4 or not compact[:2].isalpha():
        raise ValueError(
            "Not a valid intra-EU VAT number (it starts with the country code, e.g. FR)."
        )
    prefix = compact[:2]
    if prefix not in {c for c in EU_COUNTRIES} | {"EL", "XI"}:
        raise ValueError("Not an intra-EU VAT number.")
    try:
        if prefix == "FR":
            compact = "FR" + fr_tva.validate(compact)
        else:
            compact = eu_vat.validate(compact)
    except stdnum_errors.ValidationError:
        raise ValueError("Not a valid VAT number (format or check digits).") from None
    if prefix == "FR" and siren_number:
        if compact[4:] != siren_number:
            raise ValueError("This VAT number does not belong to the SIREN given.")
        if compact[2:4].isdigit() and compact[2:4] != french_vat_key(siren_number):
            raise ValueError("The key of this VAT number does not match the SIREN.")
    return compact


class VinInfo:
    def __init__(self, vin: str, maker: str, wmi: str):
        self.vin, self.maker, self.wmi = vin, maker, wmi


def vin(value: str) -> VinInfo:
    """ISO 3779: 17 characters, no I, O or Q. The check digit is enforced only for North American
    VINs (where it is mandatory); European makers do not use it."""
    value = (value or "").strip().upper()
    try:
        parsed = Vin(value)
    except VinValidationError as exc:
        raise ValueError(f"Not a valid VIN: {exc}".strip()) from None
    if parsed.region == "North America" and not parsed.verify_checksum():
        raise ValueError("Not a valid VIN: wrong check digit (9th character).")
    return VinInfo(value, parsed.manufacturer, parsed.wmi)


def registration_date(value: date, today: date) -> date:
    if value > today:
        raise ValueError("The first registration date cannot be in the future.")
    if value.year < 1900:
        raise ValueError("The first registration date is too far in the past.")
    return value
