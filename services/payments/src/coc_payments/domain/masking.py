"""Card numbers never reach the audit log in full: masked as the bank's platform masks them
(first six and last four digits kept, the rest ``X``, e.g. ``497010XXXXXX0055``)."""
from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode

_DIGITS = re.compile(r"(?<![0-9])([0-9][0-9 -]{11,22}[0-9])(?![0-9])")


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def mask_pan(digits: str) -> str:
    return digits[:6] + "X" * (len(digits) - 10) + digits[-4:]


def _mask_match(match: re.Match) -> str:
    raw = match.group(1)
    digits = re.sub(r"[ -]", "", raw)
    if 13 <= len(digits) <= 19 and luhn_valid(digits):
        return mask_pan(digits)
    return raw


def mask_card_numbers(text: str) -> str:
    """Mask every Luhn-valid run of 13 to 19 digits (spaces or dashes allowed between groups)."""
    return _DIGITS.sub(_mask_match, text)


def mask_form(body: str) -> str:
    """A form-encoded body, field by field: card fields always, other fields when they hold a
    card-like number (dates and amounts are left alone)."""
    pairs = parse_qsl(body, keep_blank_values=True)
    out = []
    for name, value in pairs:
        lowered = name.lower()
        if "card_number" in lowered or lowered in ("pan", "card"):
            digits = re.sub(r"\D", "", value)
            if len(digits) >= 13 and "X" not in value.upper():
                value = mask_pan(digits)
        elif not lowered.endswith("date") and not lowered.endswith("_id"):
            value = mask_card_numbers(value)
        out.append((name, value))
    return urlencode(out)
