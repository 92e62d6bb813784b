"""Unit tests of ``parse_timestamp``: ISO 8601 with an offset, epoch seconds or ms."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from ingest.validation import EPOCH_MILLIS_FROM, parse_timestamp
from scorestream.errors import ValidationError

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("2026-03-01T12:00:00+02:00", datetime(2026, 3, 1, 10, 0), id="iso-plus-offset"),
        pytest.param("2026-03-01T12:00:00-05:30", datetime(2026, 3, 1, 17, 30), id="iso-minus-offset"),
        pytest.param("2026-03-01T12:00:00Z", datetime(2026, 3, 1, 12, 0), id="iso-z"),
        pytest.param(" 2026-03-01 12:00:00+00:00 ", datetime(2026, 3, 1, 12, 0), id="iso-space-padded"),
        pytest.param("2026-03-01T12:00:00.123789+00:00", datetime(2026, 3, 1, 12, 0, 0, 123000), id="iso-micro-to-milli"),
        pytest.param(1_772_366_400, datetime(2026, 3, 1, 12, 0), id="epoch-seconds"),
        pytest.param(1_772_366_400.5, datetime(2026, 3, 1, 12, 0, 0, 500000), id="epoch-seconds-float"),
        pytest.param(1_772_366_400_250, datetime(2026, 3, 1, 12, 0, 0, 250000), id="epoch-millis"),
        pytest.param(EPOCH_MILLIS_FROM, datetime(1973, 3, 3, 9, 46, 40), id="millis-from-threshold"),
        pytest.param(0, datetime(1970, 1, 1), id="epoch-zero"),
    ],
)
def test_timestamp_parsed_to_utc(value: object, expected: datetime) -> None:
    parsed = parse_timestamp(value, NOW)

    assert parsed == expected.replace(tzinfo=timezone.utc)
    assert parsed.utcoffset() == timedelta(0)


def test_seconds_below_threshold_are_seconds() -> None:
    # Just under 1e11 is read as seconds, the year 5138, so it is in the future.
    with pytest.raises(ValidationError, match="future"):
        parse_timestamp(EPOCH_MILLIS_FROM - 1, NOW)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("2026-03-01T12:00:00", "no UTC offset", id="iso-without-offset"),
        pytest.param("2026-03-01", "no UTC offset", id="date-only"),
        pytest.param("yesterday", "not ISO 8601", id="words"),
        pytest.param("", "not ISO 8601", id="empty"),
        pytest.param(True, "not a timestamp", id="boolean"),
        pytest.param(-1, "not a valid epoch", id="negative-epoch"),
        pytest.param(float("nan"), "not a valid epoch", id="nan"),
        pytest.param(float("inf"), "not a valid epoch", id="infinity"),
        pytest.param(10**20, "out of range", id="huge-epoch"),
    ],
)
def test_invalid_timestamp_rejected(value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_timestamp(value, NOW)


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        pytest.param(timedelta(minutes=4, seconds=59), True, id="just-under-5-minutes"),
        pytest.param(timedelta(minutes=5), True, id="exactly-5-minutes"),
        pytest.param(timedelta(minutes=5, milliseconds=1), False, id="just-over-5-minutes"),
        pytest.param(timedelta(days=1), False, id="a-day-ahead"),
    ],
)
def test_future_limit_five_minutes(offset: timedelta, accepted: bool) -> None:
    moment = NOW + offset
    for value in (moment.isoformat(), round((moment - EPOCH) / timedelta(milliseconds=1))):
        if accepted:
            assert parse_timestamp(value, NOW) == moment
        else:
            with pytest.raises(ValidationError, match="5 minutes in the future"):
                parse_timestamp(value, NOW)
