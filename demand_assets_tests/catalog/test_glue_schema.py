"""Glue columns and TableInputs derived from the Avro schemas (no AWS needed)."""

from __future__ import annotations

import hashlib
import json

import pytest

from demand_assets.catalog.glue_schema import (
    AVRO_LITERAL,
    FINGERPRINT,
    SCHEMA_LITERAL,
    columns,
    hive_type,
    named_types,
    table_input,
    table_name,
)
from demand_assets.records import RECORD_TYPES, avro_schema
from demand_assets.records.schemas import avro_schema_text

LOCATION = "s3://test-archive/demand/avro/demand/"


@pytest.mark.parametrize(
    ("avro_type", "expected"),
    [
        ("string", "string"),
        ("boolean", "boolean"),
        ("int", "int"),
        ("long", "bigint"),
        ("float", "float"),
        ("double", "double"),
        ("bytes", "binary"),
        ({"type": "string"}, "string"),
        (["null", "long"], "bigint"),
        (["double", "null"], "double"),
        (["null", "int", "string"], "uniontype<int,string>"),
        ({"type": "array", "items": "string"}, "array<string>"),
        ({"type": "array", "items": ["null", "long"]}, "array<bigint>"),
        ({"type": "map", "values": "boolean"}, "map<string,boolean>"),
        (
            {"type": "map", "values": {"type": "array", "items": "double"}},
            "map<string,array<double>>",
        ),
        ({"type": "enum", "name": "kind", "symbols": ["A", "B"]}, "string"),
        ({"type": "fixed", "name": "md5", "size": 16}, "binary"),
        ({"type": "int", "logicalType": "date"}, "date"),
        ({"type": "long", "logicalType": "timestamp-millis"}, "timestamp"),
        ({"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}, "decimal(9,2)"),
        ({"type": "string", "logicalType": "uuid"}, "string"),
        (
            {
                "type": "record",
                "name": "r",
                "fields": [
                    {"name": "a", "type": "string"},
                    {"name": "b", "type": ["null", {"type": "array", "items": "int"}]},
                    {
                        "name": "c",
                        "type": {
                            "type": "record",
                            "name": "c",
                            "fields": [{"name": "x", "type": "long"}],
                        },
                    },
                ],
            },
            "struct<a:string,b:array<int>,c:struct<x:bigint>>",
        ),
    ],
)
def test_hive_type(avro_type, expected):
    assert hive_type(avro_type) == expected


def test_hive_type_resolves_named_references():
    schema = {
        "type": "record",
        "name": "outer",
        "namespace": "com.x",
        "fields": [
            {
                "name": "a",
                "type": {"type": "record", "name": "pt", "fields": [{"name": "v", "type": "int"}]},
            },
            {"name": "b", "type": "pt"},
            {"name": "c", "type": ["null", "com.x.pt"]},
        ],
    }
    names = named_types(schema)
    assert {"pt", "com.x.pt", "outer", "com.x.outer"} <= set(names)
    assert hive_type("pt", names) == "struct<v:int>"
    assert [c["Type"] for c in columns(schema)] == ["struct<v:int>"] * 3


@pytest.mark.parametrize("bad", ["null", ["null"], "nosuchtype", 42])
def test_hive_type_rejects_what_hive_cannot_hold(bad):
    with pytest.raises(ValueError):
        hive_type(bad)


def test_hive_type_rejects_recursive_records():
    node = {
        "type": "record",
        "name": "node",
        "fields": [{"name": "next", "type": ["null", "node"]}],
    }
    with pytest.raises(ValueError, match="recursive"):
        hive_type(node)


@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_columns_follow_the_schema_in_order(record_type):
    schema = avro_schema(record_type)
    cols = columns(record_type)
    assert [c["Name"] for c in cols] == [f["name"] for f in schema["fields"]]
    for col, fld in zip(cols, schema["fields"], strict=True):
        assert col["Type"] == hive_type(fld["type"], named_types(schema))
        assert col.get("Comment") == fld.get("doc")


def test_demand_columns_types():
    cols = {c["Name"]: c["Type"] for c in columns("demand")}
    assert cols["fanId"] == "string"
    assert cols["isDeleted"] == "boolean"
    assert (
        cols["date"] == "struct<requested:string,triggered:string,notified:string,deleted:string>"
    )
    assert cols["system"] == "struct<id:string,databaseId:string,memberId:string>"
    assert cols["provenance"] == (
        "struct<eventID:string,eventName:string,changeTime:string,shardId:string,"
        "sequenceNumber:string>"
    )


def test_comments_are_one_line_and_at_most_255_chars():
    schema = {
        "type": "record",
        "name": "r",
        "fields": [
            {"name": "long", "type": "string", "doc": "x" * 400},
            {"name": "lines", "type": "string", "doc": "first\nsecond\t third"},
            {"name": "none", "type": "string"},
        ],
    }
    long, lines, none = columns(schema)
    assert len(long["Comment"]) == 255 and long["Comment"].endswith("...")
    assert lines["Comment"] == "first second third"
    assert "Comment" not in none


def test_table_name():
    assert table_name("demand", "avro") == "demand_avro"
    assert table_name("sale", "parquet") == "sale_parquet"


@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_avro_table_input(record_type):
    table = table_input(record_type, "avro", LOCATION)
    literal = avro_schema_text(record_type)
    assert table["Name"] == f"{record_type}_avro"
    assert table["TableType"] == "EXTERNAL_TABLE"
    assert table["PartitionKeys"] == [{"Name": "partition_date", "Type": "string"}]
    sd = table["StorageDescriptor"]
    assert sd["Columns"] == columns(record_type)
    assert sd["Location"] == LOCATION
    assert sd["InputFormat"] == "org.apache.hadoop.hive.ql.io.avro.AvroContainerInputFormat"
    assert sd["OutputFormat"] == "org.apache.hadoop.hive.ql.io.avro.AvroContainerOutputFormat"
    assert sd["SerdeInfo"] == {
        "SerializationLibrary": "org.apache.hadoop.hive.serde2.avro.AvroSerDe",
        "Parameters": {AVRO_LITERAL: literal},
    }
    params = table["Parameters"]
    assert params["classification"] == "avro"
    assert params[AVRO_LITERAL] == literal
    assert json.loads(literal) == avro_schema(record_type)
    assert params[FINGERPRINT] == hashlib.sha256(literal.encode()).hexdigest()
    assert not any(k.startswith("projection.") for k in params)


@pytest.mark.parametrize("record_type", RECORD_TYPES)
def test_parquet_table_input(record_type):
    location = f"s3://test-archive/demand/parquet/{record_type}/"
    table = table_input(record_type, "parquet", location)
    sd = table["StorageDescriptor"]
    assert table["Name"] == f"{record_type}_parquet"
    assert sd["Columns"] == columns(record_type)
    assert sd["Location"] == location
    assert sd["InputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    assert sd["OutputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
    assert sd["SerdeInfo"]["SerializationLibrary"] == (
        "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    )
    params = table["Parameters"]
    assert params["classification"] == "parquet"
    assert params["parquet.compression"] == "SNAPPY"
    assert AVRO_LITERAL not in params and AVRO_LITERAL not in sd["SerdeInfo"]["Parameters"]
    assert params[SCHEMA_LITERAL] == avro_schema_text(record_type)
    assert (
        params[FINGERPRINT] == table_input(record_type, "avro", LOCATION)["Parameters"][FINGERPRINT]
    )


def test_location_gets_a_trailing_slash_and_must_be_s3():
    assert table_input("sale", "avro", "s3://b/p/avro/sale")["StorageDescriptor"]["Location"] == (
        "s3://b/p/avro/sale/"
    )
    with pytest.raises(ValueError, match="s3://"):
        table_input("sale", "avro", "/tmp/sale/")
    with pytest.raises(ValueError, match="format"):
        table_input("sale", "orc", "s3://b/p/orc/sale/")
    with pytest.raises(KeyError):
        table_input("widget", "avro", "s3://b/p/avro/widget/")


def test_partition_projection():
    params = table_input(
        "demand", "parquet", "s3://b/p/parquet/demand", projection=("2020-01-01", "2027-12-31")
    )["Parameters"]
    assert {k: v for k, v in params.items() if k.startswith("projection.")} == {
        "projection.enabled": "true",
        "projection.partition_date.type": "date",
        "projection.partition_date.format": "yyyy-MM-dd",
        "projection.partition_date.range": "2020-01-01,2027-12-31",
        "projection.partition_date.interval": "1",
        "projection.partition_date.interval.unit": "DAYS",
    }
    assert params["storage.location.template"] == (
        "s3://b/p/parquet/demand/partition_date=${partition_date}/"
    )


def test_schema_override_changes_columns_and_fingerprint():
    schema = json.loads(avro_schema_text("sale"))
    schema["fields"].append({"name": "venue", "type": ["null", "string"], "default": None})
    base = table_input("sale", "avro", LOCATION)
    table = table_input("sale", "avro", LOCATION, schema=schema)
    assert table["StorageDescriptor"]["Columns"][-1] == {"Name": "venue", "Type": "string"}
    assert table["Parameters"][FINGERPRINT] != base["Parameters"][FINGERPRINT]
    assert json.loads(table["Parameters"][AVRO_LITERAL]) == schema
