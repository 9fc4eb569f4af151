"""Small value helpers shared by the services' domain models (plain values, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(value):
    """``value`` with a time zone: SQLite gives naive UTC date-times back, PostgreSQL aware ones.
    Anything that is not a naive date-time (None, a date, an aware date-time) is returned as is."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def aware_datetime(
    value: datetime | str, name: str, error: type[Exception] = ValueError
) -> datetime:
    """``value`` (a datetime, or an ISO 8601 string as event data carries it) as a date-time with a
    time zone; raises ``error`` naming the field ``name`` when it is not one (unparsable, naive,
    or not a date-time at all)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise error(f"{name} is not an ISO 8601 date-time: {value!r}") from None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise error(f"{name} must be a date-time with a time zone")
    return value
