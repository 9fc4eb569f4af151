from datetime import UTC, datetime, timedelta, timezone

import pytest

from coc_shared.values import aware_datetime


class Invalid(Exception):
    pass


def test_an_iso_string_with_a_zone_becomes_an_aware_datetime():
    assert aware_datetime("2026-11-27T10:00:00+01:00", "at") == datetime(
        2026, 11, 27, 9, tzinfo=UTC
    )
    value = datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=2)))
    assert aware_datetime(value, "at") is value


@pytest.mark.parametrize(
    "value", ["2026-11-27T10:00:00", datetime(2026, 1, 1), "yesterday", 42, None]
)
def test_naive_unparsable_or_other_values_raise_the_given_error_naming_the_field(value):
    with pytest.raises(Invalid, match="requested_at"):
        aware_datetime(value, "requested_at", Invalid)
