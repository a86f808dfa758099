"""Avro object container files: round trip, embedded schema, codecs."""

from __future__ import annotations

import io

import fastavro
import pytest

from demand_assets.formats.arrow import to_table
from demand_assets.formats.avro import (
    DEFAULT_CODEC,
    AvroWriter,
    avro_codec,
    decode_avro,
    encode_avro,
    parsed_schema,
    write_avro,
    write_avro_rows,
)
from demand_assets.formats.avro_columns import blocks, encode_rows
from demand_assets.records import RECORD_TYPES, avro_schema
from demand_assets_tests.builders import sample_records


@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_round_trip(record_type):
    records = sample_records(record_type)
    assert decode_avro(encode_avro(record_type, records)) == records


@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_round_trip_keeps_nulls_nested_structs_and_deletions(record_type):
    records = sample_records(record_type)
    decoded = decode_avro(encode_avro(record_type, records))
    minimal, full, _, deleted, _ = decoded
    assert minimal["isDeleted"] is None
    assert deleted["isDeleted"] is True
    assert deleted["date"]["deleted"] == deleted["provenance"]["changeTime"]
    assert isinstance(full["reference"], dict)
    assert isinstance(full["provenance"], dict)
    if record_type == "demand":
        assert full["system"] == {"id": "u1", "databaseId": "db2", "memberId": "m3"}
        assert minimal["system"] is None
        assert deleted["email"] == "[redacted]"
    if record_type == "event":
        assert minimal["eventDate"] is None
        assert full["eventDate"]["end"] is None
        assert full["eventDate"]["start"]["localDate"] == "2024-06-01"


@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_records_are_valid_for_the_schema(record_type):
    schema = parsed_schema(record_type)
    for record in sample_records(record_type):
        assert fastavro.validation.validate(record, schema, raise_errors=True)


@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_schema_is_embedded(record_type):
    reader = fastavro.reader(io.BytesIO(encode_avro(record_type, sample_records(record_type))))
    assert reader.writer_schema["name"] == f"com.demand.archive.{record_type}"
    names = [f["name"] for f in reader.writer_schema["fields"]]
    assert names == [f["name"] for f in avro_schema(record_type)["fields"]]
    assert "partition_date" not in names


def test_default_codec_is_snappy():
    assert DEFAULT_CODEC == "snappy"
    assert avro_codec(encode_avro("sale", sample_records("sale"))) == "snappy"


@pytest.mark.parametrize("codec", ["deflate", "null", "snappy"])
def test_codec_is_configurable(codec):
    records = sample_records("demand")
    data = encode_avro("demand", records, codec=codec)
    assert avro_codec(data) == codec
    assert decode_avro(data) == records


def test_empty_file_is_valid():
    data = encode_avro("event", [])
    assert decode_avro(data) == []
    assert avro_codec(data) == "snappy"


def test_write_avro_streams_tables_into_a_file_object():
    records = sample_records("notification")
    tables = [to_table("notification", part) for part in (records[:2], [], records[2:])]
    sink = io.BytesIO()
    rows = write_avro(sink, "notification", tables, codec="deflate")
    assert rows == len(records)
    assert decode_avro(sink.getvalue()) == records
    assert avro_codec(sink.getvalue()) == "deflate"


def test_writer_with_no_rows_writes_an_empty_container():
    sink = io.BytesIO()
    writer = AvroWriter(sink, "sale", "null")
    writer.write(to_table("sale", []))
    assert writer.close() == 0
    assert decode_avro(sink.getvalue()) == []
    assert avro_codec(sink.getvalue()) == "null"


def test_slices_of_encoded_rows():
    records = sample_records("demand")
    encoded = encode_rows(to_table("demand", records), avro_schema("demand"))
    sink = io.BytesIO()
    rows = write_avro_rows(sink, "demand", [encoded[1:3], encoded[3:], encoded[:1]])
    assert rows == len(records)
    assert decode_avro(sink.getvalue()) == records[1:3] + records[3:] + records[:1]


def test_small_blocks_of_a_slice():
    records = sample_records("event") * 3
    encoded = encode_rows(to_table("event", records), avro_schema("event"))[2:]
    parts = list(blocks(encoded, block_bytes=1))
    assert [count for count, _ in parts] == [1] * (len(records) - 2)
    assert b"".join(payload for _, payload in parts) == b"".join(value.as_py() for value in encoded)


def test_unknown_codec_is_refused():
    with pytest.raises(ValueError):
        encode_avro("sale", sample_records("sale"), codec="zstandard-9000")


@pytest.mark.parametrize("codec", ["null", "deflate", "snappy"])
def test_same_records_same_bytes(codec):
    records = sample_records("demand")
    assert encode_avro("demand", records, codec=codec) == encode_avro(
        "demand", [dict(r) for r in records], codec=codec
    )


@pytest.mark.parametrize("record_type", RECORD_TYPES)
@pytest.mark.parametrize("codec", ["null", "deflate", "snappy"])
def test_readable_as_fastavro_writes_it(record_type, codec):
    records = sample_records(record_type)
    ours = encode_avro(record_type, records, codec=codec)
    theirs = io.BytesIO()
    fastavro.writer(theirs, parsed_schema(record_type), records, codec=codec)
    assert decode_avro(ours) == decode_avro(theirs.getvalue()) == records
    if codec == "null":
        # one block, same sync marker (the file's last 16 bytes): the very same bytes
        same = io.BytesIO()
        fastavro.writer(
            same, parsed_schema(record_type), records, codec=codec, sync_marker=ours[-16:]
        )
        assert ours == same.getvalue()


@pytest.mark.parametrize("length", [0, 1, 63, 64, 127, 128, 8191, 8192, 100_000])
def test_string_lengths_across_varint_boundaries(length):
    record = sample_records("notification")[1]
    records = [{**record, "messageBody": "é" * length, "saleName": "x" * length}]
    assert decode_avro(encode_avro("notification", records)) == records


def test_many_records_span_several_blocks():
    template = sample_records("notification")[1]
    records = [
        {**template, "fanId": f"f-{i}", "messageBody": f"{i}" * 300, "saleName": None}
        for i in range(5000)
    ]
    data = encode_avro("notification", records)
    assert len(data) > 0
    reader = fastavro.block_reader(io.BytesIO(data))
    assert sum(1 for _ in reader) >= 2
    assert decode_avro(data) == records


# -- the columnar encoder's limits ---------------------------------------------------------------


@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_every_archived_schema_is_one_the_columnar_encoder_can_write(record_type):
    from demand_assets.formats.avro_columns import unsupported

    assert unsupported(avro_schema(record_type)) == []


@pytest.mark.parametrize(
    ("field_type", "named"),
    [
        ({"type": "array", "items": "string"}, "tags: Avro type 'array'"),
        ({"type": "map", "values": "long"}, "tags: Avro type 'map'"),
        ({"type": "enum", "name": "Colour", "symbols": ["RED"]}, "tags: Avro type 'enum'"),
        ({"type": "fixed", "name": "Id", "size": 16}, "tags: Avro type 'fixed'"),
        (["null", "string", "long"], "tags: union"),
        (["string", "null"], "tags: union"),
        (["null", {"type": "array", "items": "long"}], "tags: Avro type 'array'"),
    ],
)
def test_a_schema_the_encoder_cannot_write_is_refused_naming_the_field(field_type, named):
    """A schema change the evolution check would allow (a nullable array added, say) must not
    reach the writers: it is refused when the schemas load, naming the field."""
    from demand_assets.formats.avro_columns import NotVectorized, check_schema

    schema = dict(avro_schema("demand"))
    nested = {"type": "record", "name": "Extra", "fields": [{"name": "tags", "type": field_type}]}
    schema["fields"] = [*schema["fields"], {"name": "extra", "type": ["null", nested]}]
    with pytest.raises(NotVectorized, match="extra." + named.split(":")[0]) as raised:
        check_schema(schema)
    assert named.split(": ", 1)[1] in str(raised.value)


def test_the_encoder_still_refuses_at_write_what_the_check_refuses():
    """The check and the encoder agree: what `unsupported` lets through encodes."""
    import pyarrow as pa

    from demand_assets.formats.avro_columns import NotVectorized

    schema = {"type": "record", "name": "R", "fields": [{"name": "xs", "type": "int"}]}
    assert len(encode_rows(pa.table({"xs": [1, 2]}), schema)) == 2
    bad = {
        "type": "record",
        "name": "R",
        "fields": [{"name": "xs", "type": {"type": "map", "values": "int"}}],
    }
    with pytest.raises(NotVectorized):
        encode_rows(pa.table({"xs": pa.array([[("a", 1)]], pa.map_(pa.string(), pa.int32()))}), bad)
