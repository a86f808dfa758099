"""timestamps: the change time (SPEC section 2) and the ISO-8601 strings inside items."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from demand_assets.records.errors import RecordError
from demand_assets.records.timestamps import change_time, format_instant, parse_instant, utc_date

FIELD = "dynamodb.ApproximateCreationDateTime"
ISO_MILLIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def at(value, precision=None, **extra):
    return change_time({"ApproximateCreationDateTime": value, **extra}, precision)


class TestChangeTime:
    def test_epoch_milliseconds_by_default(self):
        assert at(1_705_314_030_123) == "2024-01-15T10:20:30.123Z"

    def test_explicit_millisecond_precision(self):
        assert (
            at(1_705_314_030_123, ApproximateCreationDateTimePrecision="MILLISECOND")
            == "2024-01-15T10:20:30.123Z"
        )

    def test_microsecond_precision_inside_dynamodb(self):
        value = at(1_705_314_030_123_456, ApproximateCreationDateTimePrecision="MICROSECOND")
        assert value == "2024-01-15T10:20:30.123Z"

    def test_microsecond_precision_given_by_the_caller(self):
        # decode passes the stream record's top-level precision as the fall-back
        assert at(1_705_314_030_123_999, "MICROSECOND") == "2024-01-15T10:20:30.123Z"

    def test_precision_inside_dynamodb_wins_over_the_callers(self):
        value = at(
            1_705_314_030_123, "MICROSECOND", ApproximateCreationDateTimePrecision="MILLISECOND"
        )
        assert value == "2024-01-15T10:20:30.123Z"

    def test_epoch_seconds_integer(self):
        assert at(1_705_314_030) == "2024-01-15T10:20:30.000Z"

    @pytest.mark.parametrize(
        ("seconds", "expected"),
        [
            (1_705_314_030.5, "2024-01-15T10:20:30.500Z"),
            (1_705_314_030.123, "2024-01-15T10:20:30.123Z"),
            (1_705_314_030.999, "2024-01-15T10:20:30.999Z"),
            (1_705_314_030.0, "2024-01-15T10:20:30.000Z"),
            # 2191795611.062 is stored as 2191795611.06199979...: truncating value * 1000
            # loses a millisecond that the written number has
            (2_191_795_611.062, "2039-06-16T00:06:51.062Z"),
        ],
    )
    def test_epoch_seconds_fractional(self, seconds, expected):
        assert at(seconds) == expected

    def test_fractional_milliseconds_are_truncated(self):
        assert at(1_705_314_030_123.9) == "2024-01-15T10:20:30.123Z"

    def test_seconds_milliseconds_boundary(self):
        # below 1e11 a number is seconds (year 5138 at most), from 1e11 on it is milliseconds
        assert at(99_999_999_999).startswith("5138-11-16T09:46:39")
        assert at(100_000_000_000) == "1973-03-03T09:46:40.000Z"

    def test_epoch_zero(self):
        assert at(0) == "1970-01-01T00:00:00.000Z"

    def test_before_the_epoch(self):
        assert at(-1) == "1969-12-31T23:59:59.000Z"

    def test_missing(self):
        with pytest.raises(RecordError) as info:
            change_time({})
        assert info.value.path == FIELD
        assert info.value.message == f"{FIELD}: missing"

    def test_null(self):
        with pytest.raises(RecordError) as info:
            at(None)
        assert info.value.path == FIELD

    @pytest.mark.parametrize("value", ["1705314030123", "", True, False, [1], {"N": "1"}])
    def test_not_a_number(self, value):
        with pytest.raises(RecordError) as info:
            at(value)
        assert info.value.path == FIELD
        assert "expected an epoch number" in info.value.problem

    @pytest.mark.parametrize(
        ("value", "precision"),
        [
            (1e300, None),
            (-1e300, None),
            (-1e306, None),  # below 1e11, so taken as seconds: * 1000 overflows to -inf
            (-1.7976931348623157e308, None),
            (10**30, None),
            (-(10**30), None),
            (10**22, "MICROSECOND"),
            (-(10**22), "MICROSECOND"),
            (-40_000_000_000, None),  # seconds: the year 702
            (-40_000_000_000_000, "MILLISECOND"),
        ],
    )
    def test_out_of_range(self, value, precision):
        with pytest.raises(RecordError) as info:
            at(value, precision)
        assert info.value.path == FIELD
        assert "out of range" in info.value.problem

    @pytest.mark.parametrize("precision", ["NANOSECOND", "microsecond", 1])
    def test_unknown_precision(self, precision):
        with pytest.raises(RecordError) as info:
            at(1_705_314_030_123, ApproximateCreationDateTimePrecision=precision)
        assert info.value.path == "dynamodb.ApproximateCreationDateTimePrecision"

    @settings(max_examples=200)
    @given(st.integers(min_value=100_000_000_000, max_value=253_402_300_799_999))
    def test_milliseconds_format_and_value(self, millis):
        text = at(millis)
        assert ISO_MILLIS.match(text)
        expected = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis)
        assert datetime.fromisoformat(text) == expected

    @settings(max_examples=100)
    @example(2_191_795_611, 62)
    @given(st.integers(min_value=1_000_000_000, max_value=99_999_999_999), st.integers(0, 999))
    def test_fractional_seconds_keep_their_milliseconds(self, seconds, millis):
        text = at(float(f"{seconds}.{millis:03d}"))
        assert ISO_MILLIS.match(text)
        assert text.endswith(f".{millis:03d}Z")


class TestInstants:
    def test_format_instant(self):
        moment = datetime(2024, 1, 5, 3, 4, 5, 678_999, tzinfo=UTC)
        assert format_instant(moment) == "2024-01-05T03:04:05.678Z"

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("2024-01-15T23:30:00-05:00", datetime(2024, 1, 16, 4, 30, tzinfo=UTC)),
            ("2024-01-16T01:00:00+05:00", datetime(2024, 1, 15, 20, 0, tzinfo=UTC)),
            ("2024-01-15T10:20:30.123Z", datetime(2024, 1, 15, 10, 20, 30, 123_000, tzinfo=UTC)),
            ("2024-01-15T10:20:30", datetime(2024, 1, 15, 10, 20, 30, tzinfo=UTC)),
            ("2024-01-15", datetime(2024, 1, 15, tzinfo=UTC)),
        ],
    )
    def test_parse_instant_is_utc(self, text, expected):
        moment = parse_instant(text, "date.x")
        assert moment == expected
        assert moment.utcoffset() == timedelta(0)

    def test_naive_means_utc(self):
        assert parse_instant("2024-01-15T10:00:00", "p").tzinfo is UTC

    @pytest.mark.parametrize(
        "text", ["yesterday", "", "2024-13-01", "2024-01-15T25:00:00", "15/01/2024"]
    )
    def test_unparseable(self, text):
        with pytest.raises(RecordError) as info:
            parse_instant(text, "date.requested")
        assert info.value.path == "date.requested"
        assert "not an ISO-8601 timestamp" in info.value.problem

    @pytest.mark.parametrize("value", [None, 5, 1.5, True, ["2024-01-15"]])
    def test_not_a_string(self, value):
        with pytest.raises(RecordError) as info:
            parse_instant(value, "saleStartDateTime")
        assert info.value.path == "saleStartDateTime"

    @pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
    def test_out_of_range_after_conversion(self, text):
        with pytest.raises(RecordError) as info:
            parse_instant(text, "date.created")
        assert info.value.path == "date.created"
        assert "out of range" in info.value.problem

    def test_utc_date(self):
        assert utc_date("2024-01-15T23:30:00-05:00", "p") == date(2024, 1, 16)
        assert utc_date("2024-01-16T02:00:00+03:00", "p") == date(2024, 1, 15)

    def test_utc_date_other_timezone_object(self):
        moment = datetime(2024, 1, 15, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
        assert utc_date(moment.isoformat(), "p") == date(2024, 1, 16)
