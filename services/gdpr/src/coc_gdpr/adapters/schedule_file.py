"""Reads the retention schedule's JSON file: the one shipped in the package, or another one."""

from __future__ import annotations

import json
from pathlib import Path

from ..domain.retention import RetentionError, Schedule, parse_schedule

SHIPPED = Path(__file__).resolve().parent.parent / "retention_schedule.json"


def load_schedule(path: str | None = None, known_event_types: set[str] | None = None) -> Schedule:
    """The schedule of ``path`` (the shipped one when empty); RetentionError names every
    problem."""
    source = Path(path) if path else SHIPPED
    try:
        raw = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RetentionError(f"{source}: {exc}") from None
    return parse_schedule(raw, known_event_types)
