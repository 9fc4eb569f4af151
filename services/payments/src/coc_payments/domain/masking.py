"""Card numbers never reach the audit log in full: masked as the bank's platform masks them
(first six and last four digits kept, each digit between them replaced by the letter X)."""

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


def mask_card_numbers_in_body(raw: bytes) -> bytes:
    """``mask_card_numbers`` on a raw body: every other byte is kept as it came, UTF-8 or not."""
    return mask_card_numbers(raw.decode("utf-8", "surrogateescape")).encode(
        "utf-8", "surrogateescape"
    )


_NON_DIGITS = re.compile(r"\D")
_MAYBE_CARD = re.compile(r"[0-9][0-9 -]{11,22}[0-9]")


def mask_form(body: str, pairs: list[tuple[str, str]] | None = None) -> str:
    """A form-encoded body, field by field: card fields always, other fields when they hold a
    card-like number (dates and amounts are left alone). ``pairs``: the body already parsed
    (``parse_qsl(body, keep_blank_values=True)``), to parse it once.

    A body in which nothing is to be masked is kept as it came, byte for byte (the audit log's
    raw body); one with a card number is re-encoded with the number masked. (A run of digits in
    the encoded body is the same run in the decoded value, so what needs no masking decoded needs
    none encoded.)"""
    if pairs is None:
        pairs = parse_qsl(body, keep_blank_values=True)
    out = []
    changed = False
    for name, value in pairs:
        lowered = name.lower()
        masked = value
        if "card_number" in lowered or lowered in ("pan", "card"):
            digits = _NON_DIGITS.sub("", value)
            if len(digits) >= 13 and "X" not in value.upper():
                masked = mask_pan(digits)
        elif (
            not lowered.endswith("date")
            and not lowered.endswith("_id")
            and _MAYBE_CARD.search(value)
        ):
            masked = mask_card_numbers(value)
        changed = changed or masked != value
        out.append((name, masked))
    return urlencode(out) if changed else body
