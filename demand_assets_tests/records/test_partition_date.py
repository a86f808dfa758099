"""Partition date (BR-008 ... BR-011): per type, fall-backs, UTC conversion, window."""

from __future__ import annotations

from datetime import date

import pytest

from demand_assets.records import Archivable, PartitionWindow, Rejected
from demand_assets.records.errors import RecordError
from demand_assets.records.partition_date import (
    DEFAULT_FIRST_PARTITION,
    partition_date,
    partition_source,
)
from demand_assets_tests.builders import CHANGE_TIME, change, decode, valid_item

WINDOW = PartitionWindow(date(2020, 1, 1), date(2025, 12, 31))


def day(data: bytes, window: PartitionWindow = WINDOW) -> str:
    result = decode(data, window)
    assert type(result) is Archivable, result
    return result.partition_date


def rejection(data: bytes, window: PartitionWindow = WINDOW) -> str:
    result = decode(data, window)
    assert type(result) is Rejected, result
    return result.message


def demand(requested, **extra):
    return valid_item("demand", date={"requested": requested}, **extra)


def notification(created):
    return valid_item("notification", date={"created": created})


def sale(start):
    return valid_item("sale", saleStartDateTime=start)


def event(first_seen=None, start=None):
    item = valid_item("event")
    if first_seen is not None:
        item["date"] = {"firstSeen": first_seen, "updated": "2023-01-01T00:00:00Z"}
    if start is not None:
        item["eventDate"] = {"start": {"dateTime": start, "localDate": "2022-02-02"}}
    return item


BUILDERS = {"demand": demand, "notification": notification, "sale": sale}
FIELDS = {"demand": "date.requested", "notification": "date.created", "sale": "saleStartDateTime"}


@pytest.mark.parametrize("record_type", ["demand", "notification", "sale"])
class TestSingleSource:
    def test_date_of_the_field(self, record_type):
        assert day(change("INSERT", BUILDERS[record_type]("2024-05-06T07:08:09Z"))) == "2024-05-06"

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("2024-01-15T23:30:00-05:00", "2024-01-16"),
            ("2024-01-16T01:00:00+05:00", "2024-01-15"),
            ("2024-01-15T23:59:59.999Z", "2024-01-15"),
            ("2024-01-16T00:00:00+00:00", "2024-01-16"),
            ("2024-01-15T23:30:00", "2024-01-15"),  # naive is UTC
            ("2024-01-15", "2024-01-15"),
        ],
    )
    def test_utc_calendar_date(self, record_type, text, expected):
        assert day(change("INSERT", BUILDERS[record_type](text))) == expected

    def test_remove_partitions_by_the_same_field(self, record_type):
        assert day(change("REMOVE", BUILDERS[record_type]("2021-07-08T00:00:00Z"))) == "2021-07-08"

    @pytest.mark.parametrize("text", ["tomorrow", "", "2024-02-30T00:00:00Z", "15.01.2024"])
    def test_unparseable(self, record_type, text):
        message = rejection(change("INSERT", BUILDERS[record_type](text)))
        assert f"dynamodb.NewImage.{FIELDS[record_type]}: not an ISO-8601" in message

    @pytest.mark.parametrize("text", ["2019-12-31T23:59:59Z", "2026-01-01T00:00:00Z"])
    def test_outside_the_window(self, record_type, text):
        message = rejection(change("INSERT", BUILDERS[record_type](text)))
        assert f"dynamodb.NewImage.{FIELDS[record_type]}: partition date" in message
        assert "outside the partitions 2020-01-01..2025-12-31" in message

    def test_outside_the_window_after_utc_conversion(self, record_type):
        message = rejection(change("INSERT", BUILDERS[record_type]("2025-12-31T20:00:00-05:00")))
        assert "partition date 2026-01-01 is outside" in message

    @pytest.mark.parametrize("text", ["2020-01-01T00:00:00Z", "2025-12-31T23:59:59.999Z"])
    def test_window_is_inclusive(self, record_type, text):
        assert day(change("INSERT", BUILDERS[record_type](text))) == text[:10]

    def test_missing(self, record_type):
        item = BUILDERS[record_type]("2024-01-01")
        if record_type == "sale":
            del item["saleStartDateTime"]
        else:
            item["date"] = {}
        message = rejection(change("INSERT", item))
        assert f"dynamodb.NewImage.{FIELDS[record_type]}: required field missing" in message


class TestEvent:
    def test_first_seen(self):
        item = event("2022-03-04T05:06:07Z", start="2023-01-01T00:00:00Z")
        assert day(change("INSERT", item)) == "2022-03-04"

    def test_event_start_when_no_first_seen(self):
        assert day(change("INSERT", event(start="2023-04-05T23:30:00-05:00"))) == "2023-04-06"

    def test_event_start_when_first_seen_null(self):
        item = event(start="2023-04-05T10:00:00Z")
        item["date"] = {"firstSeen": None, "updated": "2023-01-01T00:00:00Z"}
        assert day(change("INSERT", item)) == "2023-04-05"

    def test_change_time_when_neither(self):
        assert day(change("INSERT", event())) == CHANGE_TIME[:10]

    def test_change_time_when_event_date_has_no_start(self):
        item = valid_item("event", eventDate={"start": None, "end": {"dateTime": "2023-01-01"}})
        assert day(change("INSERT", item)) == CHANGE_TIME[:10]

    def test_change_time_when_start_has_no_date_time(self):
        item = valid_item("event", eventDate={"start": {"localDate": "2023-01-01"}})
        assert day(change("INSERT", item)) == CHANGE_TIME[:10]

    def test_remove_without_first_seen_uses_event_start(self):
        assert day(change("REMOVE", event(start="2023-04-05T10:00:00Z"))) == "2023-04-05"

    def test_remove_without_any_date_uses_change_time(self):
        assert day(change("REMOVE", event())) == CHANGE_TIME[:10]

    def test_first_seen_unparseable_does_not_fall_back(self):
        message = rejection(change("INSERT", event("whenever", start="2023-04-05T10:00:00Z")))
        assert "dynamodb.NewImage.date.firstSeen: not an ISO-8601" in message

    def test_event_start_unparseable(self):
        message = rejection(change("INSERT", event(start="next friday")))
        assert "dynamodb.NewImage.eventDate.start.dateTime: not an ISO-8601" in message

    def test_first_seen_outside_the_window(self):
        message = rejection(change("INSERT", event("2019-06-01T00:00:00Z")))
        assert "dynamodb.NewImage.date.firstSeen: partition date 2019-06-01 is outside" in message

    def test_event_start_outside_the_window(self):
        message = rejection(change("INSERT", event(start="2031-06-01T00:00:00Z")))
        assert "dynamodb.NewImage.eventDate.start.dateTime: partition date 2031-06-01" in message

    def test_change_time_outside_the_window(self):
        window = PartitionWindow(date(2020, 1, 1), date(2023, 12, 31))
        message = rejection(change("INSERT", event()), window)
        assert message == (
            "event record: dynamodb.ApproximateCreationDateTime: partition date 2024-01-15 "
            "is outside the partitions 2020-01-01..2023-12-31"
        )

    def test_first_seen_utc_conversion(self):
        assert day(change("INSERT", event("2022-03-04T23:30:00-05:00"))) == "2022-03-05"


class TestDirectly:
    def test_default_first_partition(self):
        assert date(2020, 1, 1) == DEFAULT_FIRST_PARTITION

    def test_window_check(self):
        window = PartitionWindow(date(2024, 1, 1), date(2024, 1, 31))
        assert window.check(date(2024, 1, 1), "p") == "2024-01-01"
        assert window.check(date(2024, 1, 31), "p") == "2024-01-31"
        with pytest.raises(RecordError) as info:
            window.check(date(2024, 2, 1), "saleStartDateTime")
        assert info.value.path == "saleStartDateTime"

    @pytest.mark.parametrize(
        ("record_type", "path"),
        [
            ("demand", "date.requested"),
            ("notification", "date.created"),
            ("sale", "saleStartDateTime"),
        ],
    )
    def test_missing(self, record_type, path):
        with pytest.raises(RecordError) as info:
            partition_date(record_type, {"date": None}, CHANGE_TIME, WINDOW)
        assert info.value.path == path
        assert "missing" in info.value.problem

    def test_sources(self):
        assert partition_source("event", {}, CHANGE_TIME) == (
            "dynamodb.ApproximateCreationDateTime",
            CHANGE_TIME,
        )
        record = {"eventDate": {"start": {"dateTime": "x"}}, "date": {"firstSeen": None}}
        assert partition_source("event", record, CHANGE_TIME) == ("eventDate.start.dateTime", "x")

    def test_unknown_type(self):
        with pytest.raises(ValueError):
            partition_date("fanProfile", {}, CHANGE_TIME, WINDOW)
