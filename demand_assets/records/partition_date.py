"""Which daily partition a record belongs to (BR-008 ... BR-011)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from demand_assets.records.errors import RecordError
from demand_assets.records.timestamps import utc_date

DEFAULT_FIRST_PARTITION = date(2020, 1, 1)


@dataclass(frozen=True)
class PartitionWindow:
    """The daily partitions that the assets define, first and last inclusive."""

    first: date
    last: date

    def check(self, day: date, path: str) -> str:
        if not self.first <= day <= self.last:
            raise RecordError(
                path,
                f"partition date {day.isoformat()} is outside the partitions "
                f"{self.first.isoformat()}..{self.last.isoformat()}",
            )
        return day.isoformat()


def partition_date(
    record_type: str, record: dict, change_time: str, window: PartitionWindow
) -> str:
    """`YYYY-MM-DD`, the UTC calendar date of the type's partition timestamp."""
    path, value = partition_source(record_type, record, change_time)
    if value is None:
        raise RecordError(path, "missing; the partition date is taken from it")
    return window.check(utc_date(value, path), path)


CHANGE_TIME = "dynamodb.ApproximateCreationDateTime"

# Where each type's partition date comes from, in order of preference (BR-008 ... BR-011).
PARTITION_SOURCES: dict[str, tuple[str, ...]] = {
    "demand": ("date.requested",),
    "notification": ("date.created",),
    "event": ("date.firstSeen", "eventDate.start.dateTime", CHANGE_TIME),
    "sale": ("saleStartDateTime",),
}


def partition_source(record_type: str, record: dict, change_time: str) -> tuple[str, object]:
    """The field the partition date comes from, and its value, after the type's fall-backs."""
    try:
        sources = PARTITION_SOURCES[record_type]
    except KeyError:
        raise ValueError(f"no partition rule for record type {record_type!r}") from None
    for path in sources:
        value = change_time if path == CHANGE_TIME else field_value(record, path)
        if value is not None:
            return path, value
    return sources[-1], None


def field_value(record: dict, path: str) -> object:
    """The value at a dotted path of a record; None where any part is absent."""
    value: object = record
    for part in path.split("."):
        if type(value) is not dict:
            return None
        value = value.get(part)
    return value
