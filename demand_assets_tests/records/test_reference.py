"""Reference (BR-006): id and timestamp per type, with every fall-back."""

from __future__ import annotations

import pytest

from demand_assets.records import Archivable, Rejected
from demand_assets.records.errors import RecordError
from demand_assets.records.reference import latest_timestamp, reference
from demand_assets_tests.builders import CHANGE_TIME, change, decode, valid_item


def ref(data: bytes) -> dict:
    result = decode(data)
    assert type(result) is Archivable, result
    return result.record["reference"]


class TestDemand:
    def test_id(self):
        item = valid_item("demand", eventId="E", saleId="S", fanId="F")
        assert ref(change("INSERT", item))["id"] == "E_S_F"

    def test_only_requested(self):
        assert ref(change("INSERT", valid_item("demand"))) == {
            "id": "e-1_s-1_f-1",
            "timestamp": "2024-01-15T09:00:00.000Z",
        }

    @pytest.mark.parametrize("latest", ["triggered", "notified"])
    def test_latest_date_wins(self, latest):
        dates = {
            "requested": "2024-01-15T09:00:00Z",
            "triggered": "2024-01-15T09:10:00Z",
            "notified": "2024-01-15T09:05:00Z",
        }
        if latest == "notified":
            dates["notified"] = "2024-01-15T09:20:00Z"
        item = valid_item("demand", date=dates)
        assert ref(change("INSERT", item))["timestamp"] == dates[latest]

    def test_latest_by_instant_not_by_string(self):
        dates = {
            # 10:00 UTC
            "requested": "2024-01-15T10:00:00+00:00",
            # 11:00 UTC: the latest instant, although the smallest string
            "triggered": "2024-01-15T06:00:00-05:00",
            # 07:00 UTC: the largest string, although an earlier instant
            "notified": "2024-01-15T12:00:00+05:00",
        }
        item = valid_item("demand", date=dates)
        assert ref(change("INSERT", item))["timestamp"] == "2024-01-15T06:00:00-05:00"

    def test_naive_timestamps_are_utc(self):
        dates = {"requested": "2024-01-15T10:00:00", "triggered": "2024-01-15T09:30:00-01:00"}
        item = valid_item("demand", date=dates)
        assert ref(change("INSERT", item))["timestamp"] == "2024-01-15T09:30:00-01:00"

    def test_kept_as_written(self):
        dates = {"requested": "2024-01-15T10:00:00.5+01:00"}
        item = valid_item("demand", date=dates)
        assert ref(change("INSERT", item))["timestamp"] == "2024-01-15T10:00:00.5+01:00"

    def test_remove_takes_deleted(self):
        assert ref(change("REMOVE", valid_item("demand")))["timestamp"] == CHANGE_TIME

    def test_remove_earlier_than_a_date_keeps_the_latest(self):
        dates = {"requested": "2024-01-15T09:00:00Z", "notified": "2024-01-16T00:00:00Z"}
        item = valid_item("demand", date=dates)
        assert ref(change("REMOVE", item))["timestamp"] == "2024-01-16T00:00:00Z"

    def test_unparseable_date_is_rejected_with_its_path(self):
        item = valid_item("demand", date={"requested": "2024-01-15T09:00:00Z", "triggered": "soon"})
        result = decode(change("INSERT", item))
        assert type(result) is Rejected
        assert "dynamodb.NewImage.date.triggered" in result.message

    def test_latest_timestamp_directly(self):
        dates = {"a": None, "b": "2024-01-01T00:00:00Z", "c": "2024-01-01T00:00:00+00:00"}
        assert latest_timestamp(dates, "date") == "2024-01-01T00:00:00Z"  # ties: first wins
        with pytest.raises(RecordError) as info:
            latest_timestamp({"x": "bad"}, "date")
        assert info.value.path == "date.x"


@pytest.mark.parametrize("record_type", ["notification", "event"])
class TestNotificationAndEvent:
    def _item(self, record_type, **dates):
        if record_type == "notification":
            return valid_item(record_type, date={"created": "2024-01-15T09:30:00Z", **dates})
        return valid_item(record_type, date=dates) if dates else valid_item(record_type)

    def test_id(self, record_type):
        if record_type == "notification":
            item = valid_item(record_type, eventId="E", saleId="S", fanId="F")
            assert ref(change("INSERT", item))["id"] == "E_S_F"
        else:
            assert ref(change("INSERT", valid_item(record_type, id="E9")))["id"] == "E9"

    def test_deleted_first(self, record_type):
        item = self._item(record_type, updated="2024-01-15T09:40:00Z")
        assert ref(change("REMOVE", item))["timestamp"] == CHANGE_TIME

    def test_explicit_deleted_beats_updated(self, record_type):
        item = self._item(record_type, updated="2024-01-15T09:40:00Z", deleted="2024-01-15T09:50Z")
        assert ref(change("INSERT", item))["timestamp"] == "2024-01-15T09:50Z"

    def test_updated_second(self, record_type):
        item = self._item(record_type, updated="2024-01-15T09:40:00Z")
        assert ref(change("MODIFY", item))["timestamp"] == "2024-01-15T09:40:00Z"

    def test_change_time_last(self, record_type):
        assert ref(change("INSERT", self._item(record_type)))["timestamp"] == CHANGE_TIME

    def test_null_updated_falls_back(self, record_type):
        item = self._item(record_type, updated=None)
        assert ref(change("INSERT", item))["timestamp"] == CHANGE_TIME


class TestEventWithoutDate:
    def test_change_time(self):
        assert ref(change("INSERT", valid_item("event", date=None)))["timestamp"] == CHANGE_TIME


class TestSale:
    def test_id(self):
        item = valid_item("sale", id="S", eventId="E")
        assert ref(change("INSERT", item))["id"] == "E_S"

    def test_deleted_first(self):
        assert ref(change("REMOVE", valid_item("sale")))["timestamp"] == CHANGE_TIME

    def test_explicit_deleted(self):
        item = valid_item("sale", date={"deleted": "2024-02-01T00:00:00Z"})
        assert ref(change("INSERT", item))["timestamp"] == "2024-02-01T00:00:00Z"

    def test_sale_start_second(self):
        assert ref(change("INSERT", valid_item("sale")))["timestamp"] == "2024-03-01T15:00:00.000Z"

    def test_null_date_falls_back_to_sale_start(self):
        item = valid_item("sale", date={"deleted": None})
        assert ref(change("INSERT", item))["timestamp"] == "2024-03-01T15:00:00.000Z"

    def test_change_time_last(self):
        # saleStartDateTime is required, so this fall-back is reachable only directly
        record = {"id": "S", "eventId": "E", "saleStartDateTime": None, "date": None}
        assert reference("sale", record, CHANGE_TIME) == {"id": "E_S", "timestamp": CHANGE_TIME}


def test_unknown_type():
    with pytest.raises(ValueError):
        reference("fanProfile", {}, CHANGE_TIME)
