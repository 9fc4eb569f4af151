"""Structured creditor references (ISO 11649, ``RF`` + 2 check digits + up to 21 characters).

Each order gets one, derived from its order number, that the customer copies into the transfer's
remittance information; the check digits (ISO 7064 mod 97-10) detect a mistyped reference. A
bank label is searched with spaces and case ignored.
"""

from __future__ import annotations

import hashlib
import re

from stdnum import iso11649
from stdnum.iso7064 import mod_97_10

_BODY_MAX = 21
_CANDIDATE = re.compile(r"RF\d{2}[0-9A-Z]{1,21}")


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


def compact_text(text: str) -> str:
    return re.sub(r"\s+", "", text or "").upper()


def references_in(text: str) -> tuple[list[str], bool]:
    """The valid RF references a bank label may hold, longest first, and whether something that
    looks like a reference fails its check digits as written (a mistyped reference, when no valid
    one names an order).

    With spaces removed a reference may run into the text after it, so every prefix of a
    candidate that passes the check is returned; the caller keeps the one that names an order."""
    compact = compact_text(text)
    found: list[str] = []
    invalid_seen = False
    for start in [m.start() for m in re.finditer(r"(?=RF\d{2})", compact)]:
        match = _CANDIDATE.match(compact, start)
        if not match:
            continue
        candidate = match.group(0)
        valid_here = [
            candidate[:end]
            for end in range(len(candidate), 4, -1)
            if iso11649.is_valid(candidate[:end])
        ]
        found.extend(r for r in valid_here if r not in found)
        if not iso11649.is_valid(candidate):
            invalid_seen = True
    return found, invalid_seen
