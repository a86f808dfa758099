"""Parquet files: round trip, snappy, nested structs, schema derived from the Avro schema."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from demand_assets.formats.arrow import arrow_type, to_table
from demand_assets.formats.parquet import (
    COMPRESSION,
    ParquetWriter,
    arrow_schema,
    decode_parquet,
    encode_parquet,
    write_parquet,
)
from demand_assets.records import RECORD_TYPES, avro_schema
from demand_assets_tests.builders import sample_records


@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_round_trip(record_type):
    records = sample_records(record_type)
    assert decode_parquet(encode_parquet(record_type, records)) == records


@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_round_trip_keeps_nulls_nested_structs_and_deletions(record_type):
    minimal, full, _, deleted, _ = decode_parquet(
        encode_parquet(record_type, sample_records(record_type))
    )
    assert minimal["isDeleted"] is None
    assert deleted["isDeleted"] is True
    assert deleted["date"]["deleted"] == deleted["provenance"]["changeTime"]
    if record_type == "demand":
        assert full["system"] == {"id": "u1", "databaseId": "db2", "memberId": "m3"}
        assert minimal["system"] is None
        assert deleted["phoneNumber"] == "[redacted]"
    if record_type == "event":
        assert minimal["eventDate"] is None
        assert full["eventDate"]["end"] is None
    if record_type == "sale":
        assert minimal["date"] is None
        assert full["date"] == {"deleted": None}


@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_snappy_everywhere(record_type):
    assert COMPRESSION == "snappy"
    metadata = pq.ParquetFile(
        io.BytesIO(encode_parquet(record_type, sample_records(record_type)))
    ).metadata
    assert metadata.num_rows == 5
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for column in range(row_group.num_columns):
            assert row_group.column(column).compression == "SNAPPY"
    assert metadata.row_group(0).column(0).compression == "SNAPPY"


@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_nested_fields_are_structs(record_type):
    data = encode_parquet(record_type, sample_records(record_type))
    schema = pq.read_schema(io.BytesIO(data))
    for name in ("reference", "provenance"):
        assert pa.types.is_struct(schema.field(name).type)
    assert pa.types.is_struct(schema.field("date").type)
    if record_type == "demand":
        assert pa.types.is_struct(schema.field("system").type)
    if record_type == "event":
        event_date = schema.field("eventDate").type
        assert pa.types.is_struct(event_date)
        assert pa.types.is_struct(event_date.field("start").type)
    assert [f.name for f in schema] == [f.name for f in arrow_schema(record_type)]


@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_partition_date_is_not_a_column(record_type):
    assert "partition_date" not in arrow_schema(record_type).names
    data = encode_parquet(record_type, sample_records(record_type))
    assert "partition_date" not in pq.read_schema(io.BytesIO(data)).names


def _avro_nullable(avro_type) -> bool:
    return isinstance(avro_type, list) and "null" in avro_type


def _avro_record(avro_type):
    if isinstance(avro_type, list):
        (avro_type,) = [t for t in avro_type if t != "null"]
    if isinstance(avro_type, dict) and avro_type.get("type") == "record":
        return avro_type
    return None


def _assert_matches(avro_fields, arrow_fields, path=""):
    assert [f["name"] for f in avro_fields] == [f.name for f in arrow_fields]
    for avro_field, arrow_field in zip(avro_fields, arrow_fields, strict=True):
        where = f"{path}{avro_field['name']}"
        assert arrow_field.nullable == _avro_nullable(avro_field["type"]), where
        record = _avro_record(avro_field["type"])
        if record is not None:
            assert pa.types.is_struct(arrow_field.type), where
            _assert_matches(record["fields"], list(arrow_field.type), f"{where}.")
        else:
            assert arrow_field.type == pa.string() or arrow_field.type == pa.bool_(), where


@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_arrow_schema_nullability_matches_avro(record_type):
    _assert_matches(avro_schema(record_type)["fields"], list(arrow_schema(record_type)))


@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_required_strings_are_not_null(record_type):
    schema = arrow_schema(record_type)
    assert schema.field("type").type == pa.string()
    assert not schema.field("type").nullable
    assert not schema.field("reference").nullable
    assert not schema.field("reference").type.field("id").nullable
    assert schema.field("isDeleted").type == pa.bool_()
    assert schema.field("isDeleted").nullable


def test_arrow_schema_metadata_names_the_avro_record():
    assert arrow_schema("sale").metadata == {b"avro.schema.name": b"com.demand.archive.sale"}


def test_required_field_cannot_be_null():
    record = sample_records("sale")[0]
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError, ValueError)):
        encode_parquet("sale", [{**record, "id": None}])


def test_empty_file_is_valid():
    data = encode_parquet("demand", [])
    assert decode_parquet(data) == []
    assert pq.read_schema(io.BytesIO(data)).names == arrow_schema("demand").names


def test_small_tables_are_gathered_into_one_row_group():
    records = sample_records("notification")
    sink = io.BytesIO()
    tables = [to_table("notification", part) for part in (records[:2], [], records[2:])]
    rows = write_parquet(sink, "notification", tables)
    assert rows == len(records)
    data = sink.getvalue()
    assert pq.ParquetFile(io.BytesIO(data)).metadata.num_row_groups == 1
    assert decode_parquet(data) == records


@pytest.mark.parametrize("chunk", [1, 2, 3, 7])
def test_row_groups_hold_row_group_rows_whatever_the_chunks(chunk):
    records = (sample_records("notification") * 4)[:11]
    sink = io.BytesIO()
    writer = ParquetWriter(sink, "notification", row_group_rows=4)
    for start in range(0, len(records), chunk):
        writer.write(to_table("notification", records[start : start + chunk]))
    assert writer.close() == 11
    metadata = pq.ParquetFile(io.BytesIO(sink.getvalue())).metadata
    sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    assert sizes == [4, 4, 3]
    assert decode_parquet(sink.getvalue()) == records


class TestArrowType:
    """Avro types the four schemas do not use today, so a schema change maps correctly."""

    @pytest.mark.parametrize(
        ("avro", "arrow"),
        [
            ("string", pa.string()),
            ("boolean", pa.bool_()),
            ("int", pa.int32()),
            ("long", pa.int64()),
            ("float", pa.float32()),
            ("double", pa.float64()),
            ("bytes", pa.binary()),
            ({"type": "enum", "name": "e", "symbols": ["a"]}, pa.string()),
        ],
    )
    def test_primitives(self, avro, arrow):
        assert arrow_type(avro) == (arrow, False)
        assert arrow_type(["null", avro]) == (arrow, True)

    def test_array(self):
        data_type, nullable = arrow_type({"type": "array", "items": ["null", "long"]})
        assert not nullable
        assert data_type == pa.list_(pa.field("element", pa.int64(), nullable=True))

    def test_map(self):
        data_type, _ = arrow_type({"type": "map", "values": "string"})
        assert data_type == pa.map_(pa.string(), pa.field("value", pa.string(), nullable=False))

    def test_record(self):
        record = {"type": "record", "name": "r", "fields": [{"name": "a", "type": "long"}]}
        data_type, nullable = arrow_type(record)
        assert data_type == pa.struct([pa.field("a", pa.int64(), nullable=False)])
        assert not nullable

    def test_wrapped_type(self):
        assert arrow_type({"type": {"type": "array", "items": "string"}})[0] == pa.list_(
            pa.field("element", pa.string(), nullable=False)
        )

    def test_other_unions_unsupported(self):
        with pytest.raises(NotImplementedError):
            arrow_type(["null", "string", "long"])
