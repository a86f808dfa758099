"""Strict validation against each type's Avro schema (BR-003): no coercion, full field paths."""

from __future__ import annotations

import pytest

from demand_assets.records import RECORD_TYPES, Archivable, Rejected
from demand_assets.records.schemas import avro_schema
from demand_assets_tests.builders import MISSING, change, decode, valid_item

REQUIRED = {
    "demand": ["type", "fanId", "eventId", "saleId", "requestedDateTime", "date"],
    "notification": ["type", "fanId", "eventId", "saleId", "date"],
    "event": ["type", "id"],
    "sale": ["type", "id", "eventId", "saleStartDateTime"],
}


def message(data: bytes) -> str:
    result = decode(data)
    assert type(result) is Rejected, result
    return result.message


def record(data: bytes) -> dict:
    result = decode(data)
    assert type(result) is Archivable, result
    return result.record


class TestRequired:
    @pytest.mark.parametrize(
        ("record_type", "name"),
        [(t, name) for t, names in REQUIRED.items() for name in names if name != "type"],
    )
    @pytest.mark.parametrize("event_name", ["INSERT", "REMOVE"])
    def test_missing_top_level(self, record_type, name, event_name):
        text = message(change(event_name, valid_item(record_type, **{name: MISSING})))
        image = "OldImage" if event_name == "REMOVE" else "NewImage"
        path = f"dynamodb.{image}.{name}"
        # (a REMOVE may create `date` before validating; then the missing field is inside it)
        assert text.startswith(f"{record_type} record: {path}")
        assert text.endswith(": required field missing")

    @pytest.mark.parametrize("record_type", RECORD_TYPES)
    def test_null_is_missing(self, record_type):
        name = REQUIRED[record_type][1]
        text = message(change("INSERT", valid_item(record_type, **{name: None})))
        assert text.startswith(f"{record_type} record: dynamodb.NewImage.{name}: ")

    def test_nested_date_requested(self):
        item = valid_item("demand", date={"triggered": "2024-01-15T00:00:00Z"})
        assert message(change("INSERT", item)) == (
            "demand record: dynamodb.NewImage.date.requested: required field missing"
        )

    def test_nested_date_created(self):
        item = valid_item("notification", date={"updated": "2024-01-15T00:00:00Z"})
        assert "dynamodb.NewImage.date.created: required field missing" in message(
            change("MODIFY", item)
        )

    def test_schema_required_fields(self):
        for record_type, names in REQUIRED.items():
            fields = avro_schema(record_type)["fields"]
            required = [
                f["name"]
                for f in fields
                if not isinstance(f["type"], list) and f["name"] not in ("reference", "provenance")
            ]
            assert required == names


class TestWrongType:
    @pytest.mark.parametrize("record_type", RECORD_TYPES)
    def test_number_for_string(self, record_type):
        name = REQUIRED[record_type][1]
        text = message(change("INSERT", valid_item(record_type, **{name: 5})))
        assert text.startswith(f"{record_type} record: dynamodb.NewImage.{name}: ")
        assert "expected a string" in text

    def test_number_for_optional_string(self):
        text = message(change("INSERT", valid_item("sale", name=1.5)))
        assert "dynamodb.NewImage.name: expected a string" in text

    @pytest.mark.parametrize("value", ["true", 1, 0, ["x"], {"a": 1}, None])
    def test_not_a_boolean_for_is_deleted(self, value):
        if value is None:
            assert (
                record(change("INSERT", valid_item("demand", isDeleted=None)))["isDeleted"] is None
            )
            return
        text = message(change("INSERT", valid_item("demand", isDeleted=value)))
        assert "dynamodb.NewImage.isDeleted: expected a boolean" in text

    @pytest.mark.parametrize("record_type", ["demand", "notification"])
    def test_list_for_map(self, record_type):
        text = message(change("INSERT", valid_item(record_type, date=["2024-01-15"])))
        assert text.startswith(f"{record_type} record: dynamodb.NewImage.date: expected a map")

    def test_string_for_map(self):
        text = message(change("INSERT", valid_item("event", eventDate="2024-01-15")))
        assert "dynamodb.NewImage.eventDate: expected a map" in text

    def test_deeply_nested_wrong_type(self):
        item = valid_item("event", eventDate={"end": {"localDate": True}})
        text = message(change("INSERT", item))
        assert "dynamodb.NewImage.eventDate.end.localDate: expected a string" in text

    def test_boolean_for_string(self):
        text = message(change("INSERT", valid_item("demand", email=False)))
        assert "dynamodb.NewImage.email: expected a string" in text

    def test_binary_for_string(self):
        text = message(change("INSERT", valid_item("sale", id=b"\x01")))
        assert "dynamodb.NewImage.id: expected a string" in text

    def test_set_for_string(self):
        text = message(change("INSERT", valid_item("sale", name={"a"})))
        assert "dynamodb.NewImage.name: expected a string" in text

    def test_string_for_nested_date(self):
        item = valid_item("demand", date={"requested": "2024-01-15T00:00:00Z", "notified": 17})
        assert "dynamodb.NewImage.date.notified: expected a string" in message(
            change("INSERT", item)
        )

    def test_remove_path_uses_old_image(self):
        text = message(change("REMOVE", valid_item("sale", eventId=7)))
        assert text.startswith("sale record: dynamodb.OldImage.eventId: ")

    def test_type_itself_is_not_coerced(self):
        # `{"S": "demand"}` decides the type; a second tag makes the attribute malformed
        data = change("INSERT", valid_item("demand")).replace(
            b'"type":{"S":"demand"}', b'"type":{"S":"demand","N":"1"}'
        )
        assert "dynamodb.NewImage.type" in message(data)


class TestExtraAttributes:
    @pytest.mark.parametrize("record_type", RECORD_TYPES)
    def test_dropped(self, record_type):
        item = valid_item(record_type, ttl=1_700_000_000, gsi1pk="x", tags={"a", "b"}, blob=b"1")
        result = record(change("INSERT", item))
        for name in ("pk", "sk", "ttl", "gsi1pk", "tags", "blob"):
            assert name not in result

    def test_nested_extra_attributes_dropped(self):
        item = valid_item(
            "demand", date={"requested": "2024-01-15T09:00:00Z", "expires": 5, "other": [1]}
        )
        assert record(change("INSERT", item))["date"] == {
            "requested": "2024-01-15T09:00:00Z",
            "triggered": None,
            "notified": None,
            "deleted": None,
        }

    def test_extra_attribute_of_any_form_never_raises(self):
        data = change("INSERT", valid_item("sale")).replace(b'"pk":{"S"', b'"pk":{"Z"')
        assert type(decode(data)) in (Archivable, Rejected)
