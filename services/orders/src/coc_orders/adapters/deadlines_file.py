"""Reads the stuck-order deadlines' JSON file: the one shipped in the package, or another one
(ORDERS_DEADLINES_PATH); the rules that check it are the domain's (``parse_deadlines``)."""

from __future__ import annotations

import json
from pathlib import Path

from ..domain.stuck import Deadlines, parse_deadlines

SHIPPED = Path(__file__).resolve().parent.parent / "deadlines" / "deadlines.json"


def load_deadlines(path: str | Path | None = None) -> Deadlines:
    """The deadlines of ``path`` (the shipped file when empty); ValueError names the problem."""
    try:
        with open(path or SHIPPED, encoding="utf-8") as f:
            document = json.load(f)
    except OSError as exc:
        raise ValueError(f"cannot read the deadlines file: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"the deadlines file is not JSON: {exc}") from None
    return parse_deadlines(document)
