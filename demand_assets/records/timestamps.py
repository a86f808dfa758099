"""Timestamps: the change time of a stream record, and the ISO-8601 strings inside items."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from demand_assets.records.errors import RecordError

_EPOCH_NAIVE = datetime(1970, 1, 1)  # UTC
# Below this an ApproximateCreationDateTime without a precision is epoch seconds (the DynamoDB
# Streams format): 1e11 seconds is the year 5138, 1e11 milliseconds is 1973.
_SECONDS_BELOW = 100_000_000_000


def change_time(dynamodb: dict, precision: object = None) -> str:
    """`dynamodb.ApproximateCreationDateTime` as ISO-8601 UTC with milliseconds (SPEC section 2).

    Epoch milliseconds by default, microseconds where the precision says MICROSECOND, and epoch
    seconds (possibly fractional) as DynamoDB Streams writes them.
    """
    path = "dynamodb.ApproximateCreationDateTime"
    value = dynamodb.get("ApproximateCreationDateTime")
    if value is None:
        raise RecordError(path, "missing")
    if type(value) not in (int, float):
        raise RecordError(path, f"expected an epoch number, got {value!r:.40}")
    precision = dynamodb.get("ApproximateCreationDateTimePrecision", precision)
    if precision not in (None, "MILLISECOND", "MICROSECOND"):
        raise RecordError(
            "dynamodb.ApproximateCreationDateTimePrecision", f"unknown {precision!r:.40}"
        )
    try:
        if precision == "MICROSECOND":
            millis = int(value) // 1000
        elif value < _SECONDS_BELOW:
            millis = round(value * 1000)  # seconds; fractions are stored slightly off
        else:
            millis = int(value)
        moment = _EPOCH_NAIVE + timedelta(milliseconds=millis)
    except (OverflowError, ValueError):
        raise RecordError(path, f"out of range: {value!r}") from None
    if moment.year < 1000:
        raise RecordError(path, f"out of range: {value!r}")
    return moment.isoformat(timespec="milliseconds") + "Z"


def format_instant(moment: datetime) -> str:
    """`2024-01-15T10:20:30.123Z` of an aware datetime."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def parse_instant(text: object, path: str) -> datetime:
    """An ISO-8601 timestamp (or date) string as an aware UTC datetime; naive means UTC."""
    if type(text) is not str:
        raise RecordError(path, f"expected an ISO-8601 timestamp, got {text!r:.40}")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise RecordError(path, f"not an ISO-8601 timestamp: {text!r:.40}") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise RecordError(path, f"out of range: {text!r:.40}") from None


def utc_date(text: object, path: str) -> date:
    """The UTC calendar date of an ISO-8601 timestamp string."""
    return parse_instant(text, path).date()
