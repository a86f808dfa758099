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


def partition_source(record_type: str, record: dict, change_time: str) -> tuple[str, object]:
    """The field the partition date comes from, and its value, after the type's fall-backs."""
    dates = record.get("date") or {}
    if record_type == "demand":
        return "date.requested", dates.get("requested")
    if record_type == "notification":
        return "date.created", dates.get("created")
    if record_type == "event":
        if dates.get("firstSeen") is not None:
            return "date.firstSeen", dates["firstSeen"]
        start = ((record.get("eventDate") or {}).get("start") or {}).get("dateTime")
        if start is not None:
            return "eventDate.start.dateTime", start
        return "dynamodb.ApproximateCreationDateTime", change_time
    if record_type == "sale":
        return "saleStartDateTime", record.get("saleStartDateTime")
    raise ValueError(f"no partition rule for record type {record_type!r}")
