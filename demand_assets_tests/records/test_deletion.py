"""Deletion (BR-004, BR-005): isDeleted, date.deleted, PII redaction in records and originals."""

from __future__ import annotations

import copy

import orjson
import pytest

from demand_assets.records import RECORD_TYPES, Archivable, Rejected
from demand_assets.records.deletion import (
    PII_FIELDS,
    REDACTED,
    WITHHELD,
    scrub_change,
    scrub_pii,
    scrub_unparsed,
)
from demand_assets_tests.builders import (
    CHANGE_TIME,
    PII,
    archived,
    change,
    change_document,
    decode,
    rejected,
    valid_item,
)

PII_TYPES = {"demand": ("phoneNumber", "email"), "notification": PII_FIELDS}


class TestScrubPii:
    def test_present_fields_redacted(self):
        item = {**PII, "other": "x"}
        scrub_pii(item)
        assert item == {**dict.fromkeys(PII_FIELDS, REDACTED), "other": "x"}

    def test_absent_fields_stay_absent(self):
        item = {"other": "x"}
        scrub_pii(item)
        assert item == {"other": "x"}

    def test_empty_string_is_present(self):
        item = {"email": ""}
        scrub_pii(item)
        assert item == {"email": REDACTED}

    def test_pii_field_names(self):
        assert set(PII_FIELDS) == {"phoneNumber", "email", "messageBody"}
        assert REDACTED == "[redacted]"


class TestRemoveInThePipeline:
    @pytest.mark.parametrize("record_type", RECORD_TYPES)
    def test_is_deleted_and_date_deleted(self, record_type):
        record = archived(change("REMOVE", valid_item(record_type))).record
        assert record["isDeleted"] is True
        assert record["date"]["deleted"] == CHANGE_TIME

    @pytest.mark.parametrize("record_type", ["event", "sale"])
    def test_date_created_when_absent(self, record_type):
        item = valid_item(record_type)
        assert "date" not in item
        record = archived(change("REMOVE", item)).record
        assert record["date"]["deleted"] == CHANGE_TIME
        if record_type == "event":
            assert record["date"] == {"firstSeen": None, "updated": None, "deleted": CHANGE_TIME}
        else:
            assert record["date"] == {"deleted": CHANGE_TIME}

    def test_event_with_null_date(self):
        record = archived(change("REMOVE", valid_item("event", date=None))).record
        assert record["date"]["deleted"] == CHANGE_TIME

    def test_existing_dates_kept(self):
        item = valid_item(
            "notification",
            date={"created": "2024-01-15T09:30:00Z", "updated": "2024-01-15T09:40:00Z"},
        )
        record = archived(change("REMOVE", item)).record
        assert record["date"] == {
            "created": "2024-01-15T09:30:00Z",
            "updated": "2024-01-15T09:40:00Z",
            "deleted": CHANGE_TIME,
        }

    @pytest.mark.parametrize("bad", ["2024-01-01", ["x"], 5])
    def test_remove_of_non_map_date_names_the_field(self, bad):
        result = rejected(change("REMOVE", valid_item("event", date=bad)))
        assert result.message.startswith("event record: dynamodb.OldImage.date: ")
        assert result.record_type == "event"

    @pytest.mark.parametrize("record_type", ["demand", "notification"])
    def test_pii_redacted_where_present(self, record_type):
        fields = PII_TYPES[record_type]
        item = valid_item(record_type, **{name: PII[name] for name in fields})
        record = archived(change("REMOVE", item)).record
        for name in fields:
            assert record[name] == REDACTED

    @pytest.mark.parametrize("record_type", ["demand", "notification"])
    def test_absent_pii_stays_none(self, record_type):
        record = archived(change("REMOVE", valid_item(record_type))).record
        for name in PII_TYPES[record_type]:
            assert record[name] is None

    def test_null_pii_stays_none(self):
        item = valid_item("notification", email=None, phoneNumber="+1555", messageBody=None)
        record = archived(change("REMOVE", item)).record
        assert record["email"] is None
        assert record["messageBody"] is None
        assert record["phoneNumber"] == REDACTED

    @pytest.mark.parametrize(
        "value",
        [{"N": "15551234567"}, {"N": "+1 555-1234567"}, {"L": [{"S": "+15551234567"}]}],
    )
    def test_wrongly_typed_pii_is_never_kept(self, value):
        # A phone number stored as a number (or any non-string) in a deleted item: archived
        # redacted or rejected, either way the digits appear in no record, message or original.
        document = change_document("REMOVE", valid_item("demand"))
        document["dynamodb"]["OldImage"]["phoneNumber"] = value
        result = decode(orjson.dumps(document))
        if type(result) is Archivable:
            assert result.record["phoneNumber"] == REDACTED
        else:
            assert type(result) is Rejected
            assert "dynamodb.OldImage.phoneNumber" in result.message
            assert "1234567" not in result.message
            assert "1234567" not in result.original

    @pytest.mark.parametrize("event_name", ["INSERT", "MODIFY"])
    @pytest.mark.parametrize("record_type", ["demand", "notification"])
    def test_non_remove_keeps_pii(self, event_name, record_type):
        fields = PII_TYPES[record_type]
        item = valid_item(record_type, **{name: PII[name] for name in fields})
        record = archived(change(event_name, item)).record
        for name in fields:
            assert record[name] == PII[name]
        assert record["isDeleted"] is None
        assert record["date"]["deleted"] is None

    def test_non_remove_keeps_its_own_is_deleted(self):
        record = archived(change("MODIFY", valid_item("sale", isDeleted=False))).record
        assert record["isDeleted"] is False


def _secrets_absent(text: str) -> None:
    for value in PII.values():
        assert value not in text
    for word in ("fan@example", "5551234567", "Ann", "go!"):
        assert word not in text


class TestRejectedOriginal:
    def test_remove_original_redacted(self):
        item = valid_item("notification", **PII, fanId=5)  # rejected: fanId is a number
        result = rejected(change("REMOVE", item))
        _secrets_absent(result.message + result.original)
        old_image = orjson.loads(result.original)["dynamodb"]["OldImage"]
        for name in PII_FIELDS:
            assert old_image[name] == {"S": REDACTED}
        assert old_image["fanId"] == {"N": "5"}
        assert old_image["eventId"] == {"S": "e-1"}

    @pytest.mark.parametrize(
        "overrides",
        [
            {"systemUserId": "no-dots"},
            {"date": {"triggered": "2024-01-15T00:00:00Z"}},
            {"requestedDateTime": 5},
            {"date": {"requested": "2019-12-31T23:59:59Z"}},
            {"date": {"requested": "tomorrow"}},
            {"date": "not a map"},
        ],
    )
    def test_remove_rejected_for_other_reasons_is_redacted(self, overrides):
        item = valid_item("demand", phoneNumber=PII["phoneNumber"], email=PII["email"], **overrides)
        result = rejected(change("REMOVE", item))
        _secrets_absent(result.message + result.original)
        assert result.record_type == "demand"

    def test_remove_without_old_image_but_with_new_image_is_redacted(self):
        document = change_document("REMOVE", None)
        document["dynamodb"]["NewImage"] = {"type": {"S": "demand"}, "email": {"S": PII["email"]}}
        result = rejected(orjson.dumps(document))
        assert "dynamodb.OldImage" in result.message
        _secrets_absent(result.message + result.original)

    def test_remove_with_malformed_pii_value_is_archived_redacted(self):
        # A REMOVE's PII is redacted before validation: whatever its type, it never reaches a
        # message or a file, and the deletion is archived.
        document = change_document("REMOVE", valid_item("demand"))
        document["dynamodb"]["OldImage"]["email"] = PII["email"]  # not an attribute value
        document["dynamodb"]["OldImage"]["phoneNumber"] = {"N": "15551234567"}
        result = decode(orjson.dumps(document))
        assert isinstance(result, Archivable)
        assert result.record["email"] == REDACTED
        assert result.record["phoneNumber"] == REDACTED

    def test_remove_with_bad_change_time_is_redacted(self):
        document = change_document("REMOVE", valid_item("notification", **PII))
        document["dynamodb"]["ApproximateCreationDateTime"] = "yesterday"
        result = rejected(orjson.dumps(document))
        _secrets_absent(result.message + result.original)

    def test_non_remove_original_keeps_pii(self):
        item = valid_item("notification", **PII, fanId=5)
        result = rejected(change("INSERT", item))
        assert PII["email"] in result.original

    def test_unparseable_remove_is_redacted(self):
        data = change("REMOVE", valid_item("notification", **PII))[:-3]  # truncated
        result = rejected(data)
        assert result.message.startswith("not a JSON document")
        _secrets_absent(result.message + result.original)
        assert WITHHELD.decode() in result.original

    def test_unparseable_non_remove_kept_verbatim(self):
        data = change("INSERT", valid_item("notification", **PII))[:-3]
        assert rejected(data).original == data.decode()

    def test_non_object_json_mentioning_remove_is_redacted(self):
        data = orjson.dumps([orjson.loads(change("REMOVE", valid_item("demand", **PII)))])
        result = rejected(data)
        assert result.message == "not a JSON object"
        _secrets_absent(result.message + result.original)

    def test_invalid_utf8_remove_is_redacted(self):
        data = change("REMOVE", valid_item("demand", email=PII["email"])).replace(
            b'"e-1"', b'"e-\xff"'
        )
        result = rejected(data)
        assert result.message.startswith("not a JSON document")
        _secrets_absent(result.message + result.original)

    def test_remove_truncated_anywhere_leaks_no_pii(self):
        # A truncated Kinesis payload of a REMOVE (the commonest unparseable record): whatever
        # the cut, no part of a PII value may survive, including text after a comma or a brace.
        body = "Hi Ann, your code: {SECRET} - see you, Bob"
        data = change("REMOVE", valid_item("notification", messageBody=body, email=PII["email"]))
        words = ("Ann", "your", "code", "SECRET", "see", "Bob", "fan@example")
        leaks = {}
        for cut in range(len(data)):
            original = rejected(data[:cut]).original
            leaked = [word for word in words if word in original]
            if leaked:
                leaks[cut] = (leaked, original[-60:])
        assert not leaks, f"{len(leaks)} cuts leak PII, e.g. {next(iter(leaks.values()))}"


class TestScrubChange:
    def test_non_remove_unchanged(self):
        document = change_document("INSERT", valid_item("notification", **PII))
        assert scrub_change(document) is document

    def test_remove_redacts_both_images_without_mutating_the_input(self):
        document = change_document("REMOVE", valid_item("notification", **PII))
        document["dynamodb"]["NewImage"] = {"email": {"S": "x@y"}}
        before = copy.deepcopy(document)
        scrubbed = scrub_change(document)
        assert document == before
        assert scrubbed["dynamodb"]["OldImage"]["email"] == {"S": REDACTED}
        assert scrubbed["dynamodb"]["OldImage"]["messageBody"] == {"S": REDACTED}
        assert scrubbed["dynamodb"]["OldImage"]["phoneNumber"] == {"S": REDACTED}
        assert scrubbed["dynamodb"]["NewImage"]["email"] == {"S": REDACTED}
        assert scrubbed["dynamodb"]["OldImage"]["fanId"] == {"S": "f-1"}
        assert scrubbed["eventID"] == document["eventID"]

    def test_remove_without_pii_unchanged(self):
        document = change_document("REMOVE", valid_item("sale"))
        assert scrub_change(document) == document

    def test_remove_with_odd_dynamodb(self):
        document = {"eventName": "REMOVE", "dynamodb": "x"}
        assert scrub_change(document) is document


class TestScrubUnparsed:
    def test_without_remove_unchanged(self):
        data = b'{"eventName":"INSERT","email":{"S":"a@b.c"'
        assert scrub_unparsed(data) is data

    @pytest.mark.parametrize(
        "fragment",
        [
            b'"email":{"S":"a@b.c"}',
            b'"email" : { "S" : "a@b.c" }',
            b'"phoneNumber":"+1555"',
            b'"phoneNumber":15551234',
            b'"messageBody":{"S":"a \\"quoted\\" b"}',
            b'"email":{"S":"a@b.c',
        ],
    )
    def test_everything_from_the_first_pii_name_on_is_withheld(self, fragment):
        head = b'{"eventName":"REMOVE","dynamodb":{"OldImage":{"fanId":{"S":"f-1"},'
        name = fragment.split(b":")[0].rstrip()
        assert scrub_unparsed(head + fragment) == head + name + WITHHELD

    def test_every_occurrence(self):
        data = (
            b'REMOVE {"email":{"S":"one@x"},"phoneNumber":{"S":"123"},'
            b'"messageBody":{"S":"hi"},"email":{"S":"two@x"}'
        )
        scrubbed = scrub_unparsed(data)
        for secret in (b"one@x", b"123", b"hi", b"two@x"):
            assert secret not in scrubbed
        assert scrubbed.count(WITHHELD) == 1

    @pytest.mark.parametrize(
        "data",
        [
            # keys in another order (sorted: "dynamodb" first), cut before the eventName
            orjson.dumps(
                change_document("REMOVE", valid_item("notification", **PII)),
                option=orjson.OPT_SORT_KEYS,
            ).split(b'"eventID"')[0],
            b'{"eventName":"REMOVE","dynamodb":{"OldImage":{"em\\u0061il":{"S":"fan@example.com"',
            b'{"eventName":"REMOV\\u0045","dynamodb":{"OldImage":{"email":{"S":"fan@example.com"',
        ],
        ids=["sorted keys", "escaped PII name", "escaped REMOVE"],
    )
    def test_a_remove_not_spelled_out_before_the_cut_is_withheld(self, data):
        scrubbed = scrub_unparsed(data)
        assert WITHHELD in scrubbed
        for value in PII.values():
            assert value.encode() not in scrubbed

    @pytest.mark.parametrize(
        "value",
        [
            b'{"S":"Hi Ann, SECRET',
            b'{"S":"a}SECRET"}',
            b'{"S":"a\\"}SECRET"}',
            b'{"S":"{x}SECRET"}',
        ],
    )
    def test_no_part_of_the_value_survives(self, value):
        data = b'{"eventName":"REMOVE","dynamodb":{"OldImage":{"messageBody":' + value
        assert b"SECRET" not in scrub_unparsed(data)
