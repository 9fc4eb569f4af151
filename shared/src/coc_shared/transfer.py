"""Bank transfers to the company: the structured creditor reference of an order (ISO 11649, ``RF``
+ 2 check digits + up to 21 characters) and the readers of the account's IBAN and BIC.

The reference is a pure function of the order number, so every service that shows it (payments at
checkout and when it matches a bank statement, notifications in the order's mail) computes the same
one without asking another; the check digits (ISO 7064 mod 97-10) detect a mistyped reference.
Moved here from ``coc_payments.domain.references`` so that both use this one implementation.
"""

from __future__ import annotations

import hashlib
import re

from stdnum import bic as bic_number
from stdnum import iban as iban_number
from stdnum import iso11649
from stdnum.exceptions import ValidationError
from stdnum.iso7064 import mod_97_10

_BODY_MAX = 21


def creditor_reference(order_number: str) -> str:
    """The RF reference of an order (compact form, e.g. ``RF73COC2026000123``)."""
    body = re.sub(r"[^0-9A-Z]", "", order_number.upper())
    if not body or len(body) > _BODY_MAX:
        # Too long (or nothing usable): a stable digest of the number still makes it unique enough.
        body = "H" + hashlib.sha256(order_number.encode()).hexdigest().upper()[: _BODY_MAX - 1]
    check = mod_97_10.calc_check_digits(body + "RF")
    reference = "RF" + check + body
    assert iso11649.is_valid(reference)
    return reference


def format_reference(reference: str) -> str:
    """Printed in groups of four, as banks show it (``RF73 COC2 0260 0012 3``)."""
    return iso11649.format(reference)


# Readers for config.Variable (text -> value, ValueError("expected ...")) -----------------------


def iban(value: str) -> str:
    """An IBAN (spaces allowed), in its compact form."""
    try:
        return iban_number.validate(value)
    except ValidationError:
        raise ValueError("expected a valid IBAN, e.g. FR76 3000 6000 0112 3456 7890 189") from None


def bic(value: str) -> str:
    """A BIC (8 or 11 characters), in its compact form."""
    try:
        return bic_number.validate(value)
    except ValidationError:
        raise ValueError("expected a valid BIC, e.g. AGRIFRPP") from None


def format_iban(value: str) -> str:
    """An IBAN in groups of four (``FR76 3000 6000 0112 3456 7890 189``)."""
    return iban_number.format(value)
