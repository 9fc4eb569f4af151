"""Reading structured creditor references (ISO 11649, ``RF`` + 2 check digits + up to 21
characters) back from bank labels.

Each order's reference is ``coc_shared.transfer.creditor_reference`` of its order number (the
customer copies it into the transfer's remittance information; notifications prints the same one);
the check digits (ISO 7064 mod 97-10) detect a mistyped reference. A bank label is searched with
spaces and case ignored.
"""

from __future__ import annotations

import re

from stdnum import iso11649

from coc_shared.transfer import creditor_reference, format_reference

__all__ = ["compact_text", "creditor_reference", "format_reference", "references_in"]

_CANDIDATE = re.compile(r"RF\d{2}[0-9A-Z]{1,21}")


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
