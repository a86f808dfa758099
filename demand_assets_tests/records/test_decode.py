"""decode_change / decode_batch: image selection, type filter, provenance, rejections."""

from __future__ import annotations

import orjson
import pytest

from demand_assets.records import (
    RECORD_TYPES,
    Archivable,
    Rejected,
    Skipped,
    decode_batch,
    error_document,
)
from demand_assets.records.schemas import avro_schema
from demand_assets_tests.builders import (
    CHANGE_TIME,
    CHANGE_TIME_MS,
    MISSING,
    SEQUENCE_NUMBER,
    SHARD_ID,
    WINDOW,
    archived,
    change,
    change_document,
    decode,
    rejected,
    valid_item,
)


class TestImageSelection:
    @pytest.mark.parametrize("record_type", RECORD_TYPES)
    def test_insert_uses_new_image(self, record_type):
        result = archived(change("INSERT", valid_item(record_type, name="new")))
        assert result.record_type == record_type
        assert result.record["provenance"]["eventName"] == "INSERT"

    def test_insert_ignores_an_old_image(self):
        data = change(
            "INSERT",
            valid_item("demand", fanId="new-fan"),
            old_item=valid_item("demand", fanId="old-fan"),
        )
        assert archived(data).record["fanId"] == "new-fan"

    @pytest.mark.parametrize("record_type", RECORD_TYPES)
    def test_modify_uses_new_image_not_old_image(self, record_type):
        new = valid_item(record_type, eventId="new-event")
        old = valid_item(record_type, eventId="old-event", type="fanProfile")
        result = archived(change("MODIFY", new, old_item=old))
        assert result.record["isDeleted"] is None
        if record_type != "event":
            assert result.record["eventId"] == "new-event"

    def test_modify_without_new_image_is_rejected_even_with_old_image(self):
        result = rejected(change("MODIFY", None, old_item=valid_item("sale")))
        assert "dynamodb.NewImage" in result.message

    @pytest.mark.parametrize("record_type", RECORD_TYPES)
    def test_remove_uses_old_image(self, record_type):
        result = archived(change("REMOVE", valid_item(record_type)))
        assert result.record["isDeleted"] is True
        assert result.record["provenance"]["eventName"] == "REMOVE"

    def test_remove_ignores_a_new_image(self):
        document = change_document("REMOVE", valid_item("sale", name="old"))
        document["dynamodb"]["NewImage"] = {"type": {"S": "sale"}, "name": {"S": "new"}}
        assert archived(orjson.dumps(document)).record["name"] == "old"

    @pytest.mark.parametrize("event_name", ["UPDATE", "insert", "", None, 5, ["INSERT"], "DELETE"])
    def test_unknown_event_name(self, event_name):
        result = rejected(change(event_name, valid_item("demand")))
        assert result.message.startswith("eventName: ")
        assert result.record_type is None

    def test_missing_event_name(self):
        document = change_document("INSERT", valid_item("demand"))
        del document["eventName"]
        assert rejected(orjson.dumps(document)).message.startswith("eventName")

    @pytest.mark.parametrize(
        ("event_name", "image_name"),
        [("INSERT", "NewImage"), ("MODIFY", "NewImage"), ("REMOVE", "OldImage")],
    )
    def test_missing_image(self, event_name, image_name):
        result = rejected(change(event_name, None))
        assert result.message.startswith(f"dynamodb.{image_name}: missing")
        assert result.change_time == CHANGE_TIME

    @pytest.mark.parametrize("bad", [[], "x", None, 1])
    def test_image_not_an_object(self, bad):
        document = change_document("INSERT", valid_item("demand"))
        document["dynamodb"]["NewImage"] = bad
        assert rejected(orjson.dumps(document)).message.startswith("dynamodb.NewImage")


class TestTypeFilter:
    @pytest.mark.parametrize("event_name", ["INSERT", "MODIFY", "REMOVE"])
    def test_other_type_is_skipped(self, event_name):
        result = decode(change(event_name, {"pk": "x", "type": "fanProfile", "junk": {"a": 1}}))
        assert result == Skipped("fanProfile")

    def test_no_type_is_skipped(self):
        assert decode(change("INSERT", {"pk": "x"})) == Skipped("(no type)")

    def test_non_string_type_is_skipped(self):
        assert decode(change("INSERT", {"pk": "x", "type": 5})) == Skipped("(non-string type)")

    def test_types_are_case_sensitive(self):
        assert decode(change("INSERT", valid_item("demand", type="Demand"))) == Skipped("Demand")

    def test_skipped_items_are_not_validated(self):
        document = change_document("INSERT", {"type": "config"})
        document["dynamodb"]["NewImage"]["broken"] = {"X": "?"}
        assert decode(orjson.dumps(document)) == Skipped("config")

    def test_claiming_a_type_means_validation(self):
        result = rejected(change("INSERT", {"type": "sale"}))
        assert result.record_type == "sale"
        assert result.message.startswith("sale record: dynamodb.NewImage.")


class TestProvenance:
    @pytest.mark.parametrize("record_type", RECORD_TYPES)
    @pytest.mark.parametrize("event_name", ["INSERT", "MODIFY", "REMOVE"])
    def test_fields(self, record_type, event_name):
        data = change(event_name, valid_item(record_type), event_id="0c4f5a1e-ev")
        result = decode_change_with(data, "shardId-000000000007", "4959000000001")
        assert result.record["provenance"] == {
            "eventID": "0c4f5a1e-ev",
            "eventName": event_name,
            "changeTime": CHANGE_TIME,
            "shardId": "shardId-000000000007",
            "sequenceNumber": "4959000000001",
        }

    def test_change_time_with_microsecond_precision(self):
        data = change(
            "INSERT",
            valid_item("sale"),
            change_time_ms=CHANGE_TIME_MS * 1000 + 456,
            precision="MICROSECOND",
        )
        assert archived(data).record["provenance"]["changeTime"] == CHANGE_TIME

    def test_top_level_precision(self):
        document = change_document(
            "INSERT", valid_item("sale"), change_time_ms=CHANGE_TIME_MS * 1000
        )
        document["ApproximateCreationDateTimePrecision"] = "MICROSECOND"
        assert archived(orjson.dumps(document)).record["provenance"]["changeTime"] == CHANGE_TIME

    def test_change_time_in_epoch_seconds(self):
        data = change("INSERT", valid_item("sale"), change_time_ms=1_705_314_030)
        assert archived(data).record["provenance"]["changeTime"] == "2024-01-15T10:20:30.000Z"

    @pytest.mark.parametrize("event_id", [MISSING, "", None, 5])
    def test_bad_event_id(self, event_id):
        result = rejected(change("INSERT", valid_item("sale"), event_id=event_id))
        assert result.message.startswith("eventID: ")

    @pytest.mark.parametrize("value", [MISSING, None, "1705314030123", 1e300, -1e306, 2**64 - 1])
    def test_bad_change_time(self, value):
        document = change_document("INSERT", valid_item("sale"))
        if value is MISSING:
            del document["dynamodb"]["ApproximateCreationDateTime"]
        else:
            document["dynamodb"]["ApproximateCreationDateTime"] = value
        result = rejected(orjson.dumps(document))
        assert result.message.startswith("dynamodb.ApproximateCreationDateTime: ")
        assert result.change_time is None

    @pytest.mark.parametrize("bad", [MISSING, None, [], "x"])
    def test_bad_dynamodb(self, bad):
        document = change_document("INSERT", valid_item("sale"))
        if bad is MISSING:
            del document["dynamodb"]
        else:
            document["dynamodb"] = bad
        assert rejected(orjson.dumps(document)).message.startswith("dynamodb: ")


def decode_change_with(data: bytes, shard_id: str, sequence_number: str) -> Archivable:
    from demand_assets.records import decode_change

    result = decode_change(data, shard_id, sequence_number, WINDOW)
    assert type(result) is Archivable, result
    return result


class TestArchivable:
    @pytest.mark.parametrize("record_type", RECORD_TYPES)
    def test_record_has_exactly_the_schema_fields(self, record_type):
        result = archived(change("INSERT", valid_item(record_type)))
        assert set(result.record) == {f["name"] for f in avro_schema(record_type)["fields"]}
        assert "partition_date" not in result.record
        assert "pk" not in result.record and "sk" not in result.record

    def test_demand(self):
        item = valid_item(
            "demand",
            artistId="a-1",
            email="fan@example.com",
            systemUserId="u1.db2.m3",
            date={"requested": "2024-01-15T09:00:00.000Z", "triggered": "2024-01-15T09:05:00Z"},
        )
        result = archived(change("INSERT", item))
        assert result.partition_date == "2024-01-15"
        assert result.record == {
            "type": "demand",
            "fanId": "f-1",
            "eventId": "e-1",
            "saleId": "s-1",
            "artistId": "a-1",
            "eventName": None,
            "saleName": None,
            "artistName": None,
            "requestedDateTime": "2024-01-15T09:00:00.000Z",
            "phoneNumber": None,
            "email": "fan@example.com",
            "contactMethod": None,
            "demandType": None,
            "date": {
                "requested": "2024-01-15T09:00:00.000Z",
                "triggered": "2024-01-15T09:05:00Z",
                "notified": None,
                "deleted": None,
            },
            "systemUserId": "u1.db2.m3",
            "system": {"id": "u1", "databaseId": "db2", "memberId": "m3"},
            "reference": {"id": "e-1_s-1_f-1", "timestamp": "2024-01-15T09:05:00Z"},
            "isDeleted": None,
            "provenance": {
                "eventID": "evt-0001",
                "eventName": "INSERT",
                "changeTime": CHANGE_TIME,
                "shardId": SHARD_ID,
                "sequenceNumber": SEQUENCE_NUMBER,
            },
        }

    def test_derived_fields_in_the_item_are_replaced(self):
        item = valid_item(
            "demand",
            reference={"id": "forged", "timestamp": "forged"},
            system={"id": "x", "databaseId": "y", "memberId": "z"},
            provenance={"eventID": "forged"},
        )
        record = archived(change("INSERT", item)).record
        assert record["reference"]["id"] == "e-1_s-1_f-1"
        assert record["system"] is None
        assert record["provenance"]["eventID"] == "evt-0001"

    @pytest.mark.parametrize("record_type", ["notification", "event", "sale"])
    def test_only_demand_has_system(self, record_type):
        record = archived(change("INSERT", valid_item(record_type, systemUserId="a.b.c"))).record
        assert "system" not in record
        assert "systemUserId" not in record


class TestRejected:
    def test_not_json(self):
        result = rejected(b'{"eventName": "INSERT", ')
        assert result.message.startswith("not a JSON document")
        assert result.original == '{"eventName": "INSERT", '
        assert result.change_time is None
        assert result.record_type is None

    def test_empty_payload(self):
        assert rejected(b"").message.startswith("not a JSON document")

    @pytest.mark.parametrize("payload", [b"[]", b"5", b'"INSERT"', b"null", b"true"])
    def test_not_an_object(self, payload):
        result = rejected(payload)
        assert result.message == "not a JSON object"
        assert result.original == payload.decode()

    def test_invalid_utf8_is_kept_readable(self):
        result = rejected(b'{"eventName": "\xff\xfe"}')
        assert isinstance(result.original, str)
        assert "\\xff\\xfe" in result.original

    def test_original_of_insert_is_the_exact_payload(self):
        data = change("INSERT", valid_item("demand", email="keep@example.com", fanId=5))
        result = rejected(data)
        assert result.original == data.decode()

    def test_message_names_the_type_and_the_field(self):
        result = rejected(change("INSERT", valid_item("notification", fanId=5)))
        assert result.message.startswith("notification record: dynamodb.NewImage.fanId: ")
        assert "expected a string" in result.message
        assert result.record_type == "notification"
        assert result.change_time == CHANGE_TIME

    def test_malformed_attribute_value_names_its_path(self):
        document = change_document("INSERT", valid_item("event"))
        document["dynamodb"]["NewImage"]["eventDate"] = {
            "M": {"start": {"M": {"dateTime": {"S": "2024-01-15", "N": "1"}}}}
        }
        result = rejected(orjson.dumps(document))
        assert "dynamodb.NewImage.eventDate.start.dateTime" in result.message

    def test_error_document_of_a_rejected_change(self):
        data = change("INSERT", valid_item("demand", systemUserId="nope"))
        result = rejected(data)
        document = error_document(result.message, [result.original], "2024-01-15T10:20:31.000Z")
        assert document == {
            "timestamp": "2024-01-15T10:20:31.000Z",
            "error": {"message": result.message},
            "events": [data.decode()],
        }
        assert orjson.loads(document["events"][0]) == orjson.loads(data)
        assert orjson.loads(orjson.dumps(document)) == document


class TestDeepNesting:
    @pytest.mark.parametrize("name", ["junk", "isDeleted"])
    @pytest.mark.parametrize("tag", ["M", "L"])
    def test_deeply_nested_attribute_is_rejected_not_raised(self, tag, name):
        # DynamoDB allows 32 levels; the JSON parser allows ~510 attribute levels. A record in
        # between must become an error document (or be archived without the unknown
        # attribute), never crash the stream (SPEC section 5).
        depth = 505
        if tag == "M":
            value = '{"M":{"a":' * depth + '{"S":"x"}' + "}}" * depth
        else:
            value = '{"L":[' * depth + '{"S":"x"}' + "]}" * depth
        data = (
            '{"eventID":"e","eventName":"INSERT","dynamodb":{"ApproximateCreationDateTime":'
            f'{CHANGE_TIME_MS},"NewImage":{{"type":{{"S":"event"}},"id":{{"S":"e"}},'
            f'"{name}":{value}}}}}}}'
        ).encode()
        orjson.loads(data)  # valid JSON, within the parser's depth limit
        result = decode(data)
        if type(result) is Rejected:
            assert f"dynamodb.NewImage.{name}" in result.message
        else:
            assert type(result) is Archivable
            assert name == "junk"


class TestBatch:
    def test_sorted_by_fate(self):
        changes = [
            change("INSERT", valid_item("demand")),
            change("INSERT", valid_item("demand", fanId="f-2")),
            change(
                "INSERT",
                valid_item(
                    "demand",
                    date={"requested": "2024-02-01T00:00:00Z"},
                ),
            ),
            change("REMOVE", valid_item("sale")),
            change("INSERT", {"type": "fanProfile"}),
            change("MODIFY", {"type": "fanProfile"}),
            change("INSERT", {"pk": "x"}),
            change("INSERT", valid_item("demand", fanId=1)),
            b"garbage",
        ]
        batch = decode_batch(
            [(data, "shardId-1", str(i)) for i, data in enumerate(changes)], WINDOW
        )
        assert sorted(batch.archivable) == [
            ("demand", "2024-01-15"),
            ("demand", "2024-02-01"),
            ("sale", "2024-03-01"),
        ]
        assert [r["fanId"] for r in batch.archivable[("demand", "2024-01-15")]] == ["f-1", "f-2"]
        assert [
            r["provenance"]["sequenceNumber"] for r in batch.archivable[("demand", "2024-01-15")]
        ] == ["0", "1"]
        assert batch.archivable_count == 4
        assert batch.skipped == {"fanProfile": 2, "(no type)": 1}
        assert len(batch.rejected) == 2
        assert all(type(r) is Rejected for r in batch.rejected)

    def test_empty(self):
        batch = decode_batch([], WINDOW)
        assert batch.archivable == {}
        assert batch.rejected == []
        assert not batch.skipped
        assert batch.archivable_count == 0
