"""RecordError, error documents (SPEC section 5) and the Avro schemas (SPEC section 4)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import fastavro
import pytest

from demand_assets.records import RECORD_TYPES, RecordError, avro_schema, error_document
from demand_assets.records.schemas import DERIVED_FIELDS, SCHEMA_DIR, avro_schema_text

PROJECT = Path(__file__).resolve().parents[2]


class TestRecordError:
    def test_message_names_the_path(self):
        error = RecordError("dynamodb.NewImage.date.requested", "required field missing")
        assert error.message == "dynamodb.NewImage.date.requested: required field missing"
        assert str(error) == error.message
        assert error.path == "dynamodb.NewImage.date.requested"
        assert error.problem == "required field missing"

    def test_without_a_path(self):
        assert RecordError("", "not a JSON object").message == "not a JSON object"


class TestErrorDocument:
    def test_shape(self):
        events = ['{"eventName":"INSERT"}', "garbage"]
        document = error_document("eventName: bad", events, "2024-01-15T10:20:30.123Z")
        assert document == {
            "timestamp": "2024-01-15T10:20:30.123Z",
            "error": {"message": "eventName: bad"},
            "events": ['{"eventName":"INSERT"}', "garbage"],
        }
        assert list(document) == ["timestamp", "error", "events"]
        assert json.loads(json.dumps(document)) == document

    def test_events_is_a_copy(self):
        events = ["a"]
        document = error_document("m", events, "t")
        events.append("b")
        assert document["events"] == ["a"]

    def test_events_from_any_iterable(self):
        assert error_document("m", ("a", "b"), "t")["events"] == ["a", "b"]


class TestSchemas:
    def test_record_types(self):
        assert RECORD_TYPES == ("demand", "notification", "event", "sale")

    @pytest.mark.parametrize("record_type", RECORD_TYPES)
    def test_valid_avro(self, record_type):
        schema = avro_schema(record_type)
        fastavro.parse_schema(schema)
        assert schema["name"] == record_type
        assert schema["namespace"] == "com.demand.archive"

    @pytest.mark.parametrize("record_type", RECORD_TYPES)
    def test_common_fields(self, record_type):
        names = [f["name"] for f in avro_schema(record_type)["fields"]]
        for name in ("type", "date", "reference", "isDeleted", "provenance"):
            assert name in names
        assert "partition_date" not in names
        assert len(names) == len(set(names))

    @pytest.mark.parametrize("record_type", RECORD_TYPES)
    def test_provenance_fields(self, record_type):
        (field,) = [f for f in avro_schema(record_type)["fields"] if f["name"] == "provenance"]
        assert [f["name"] for f in field["type"]["fields"]] == [
            "eventID",
            "eventName",
            "changeTime",
            "shardId",
            "sequenceNumber",
        ]

    def test_pii_fields(self):
        def names(record_type):
            return {f["name"] for f in avro_schema(record_type)["fields"]}

        assert {"phoneNumber", "email"} <= names("demand")
        assert {"phoneNumber", "email", "messageBody"} <= names("notification")

    def test_derived_fields(self):
        assert {"reference", "system", "provenance"} == DERIVED_FIELDS

    def test_unknown_type(self):
        with pytest.raises(KeyError):
            avro_schema("fanProfile")

    @pytest.mark.parametrize("record_type", RECORD_TYPES)
    def test_schema_text(self, record_type):
        text = avro_schema_text(record_type)
        assert json.loads(text) == avro_schema(record_type)
        assert text == json.dumps(avro_schema(record_type), separators=(",", ":"))

    def test_one_file_per_type(self):
        assert sorted(p.stem for p in SCHEMA_DIR.glob("*.avsc")) == sorted(RECORD_TYPES)

    def test_avsc_files_ship_in_the_package(self):
        # A non-editable install (wheel, Docker image) must carry the .avsc files. setuptools
        # only ships them when package-data names the package that holds them.
        config = tomllib.loads((PROJECT / "pyproject.toml").read_text())
        package_data = config["tool"]["setuptools"].get("package-data", {})
        package = "demand_assets.records"
        shipped = {
            path
            for name, globs in package_data.items()
            for glob in globs
            for path in (PROJECT / name.replace(".", "/")).glob(glob)
        }
        assert set(SCHEMA_DIR.glob("*.avsc")) <= shipped, (
            f"package-data {package_data} does not cover {package}/schemas/*.avsc"
        )
