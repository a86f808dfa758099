"""Arrow schemas derived from the Avro schemas, and records as Arrow tables.

Both file formats start here: Parquet is written from the table, and so is Avro's binary
encoding (formats.avro_columns).
"""

from __future__ import annotations

from functools import cache

import pyarrow as pa

from demand_assets.records.schemas import avro_schema

_PRIMITIVES = {
    "string": pa.string(),
    "boolean": pa.bool_(),
    "int": pa.int32(),
    "long": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "bytes": pa.binary(),
    "enum": pa.string(),
}


@cache
def arrow_schema(record_type: str) -> pa.Schema:
    """The Arrow schema of a record type, from its Avro schema: records become structs."""
    schema = avro_schema(record_type)
    metadata = {"avro.schema.name": f"{schema.get('namespace', '')}.{schema['name']}".lstrip(".")}
    return pa.schema([_field(f) for f in schema["fields"]], metadata=metadata)


def _field(avro_field: dict) -> pa.Field:
    data_type, nullable = arrow_type(avro_field["type"])
    return pa.field(avro_field["name"], data_type, nullable=nullable)


def arrow_type(avro_type: object) -> tuple[pa.DataType, bool]:
    """(Arrow type, nullable) of an Avro type."""
    if isinstance(avro_type, list):
        branches = [t for t in avro_type if t != "null"]
        if len(branches) != 1:
            raise NotImplementedError(f"unions other than [null, T] are not supported: {avro_type}")
        return arrow_type(branches[0])[0], True
    if isinstance(avro_type, str):
        return _PRIMITIVES[avro_type], False
    kind = avro_type["type"]
    if isinstance(kind, dict | list):
        return arrow_type(kind)
    if kind == "record":
        return pa.struct([_field(f) for f in avro_type["fields"]]), False
    if kind == "array":
        item, nullable = arrow_type(avro_type["items"])
        return pa.list_(pa.field("element", item, nullable=nullable)), False
    if kind == "map":
        value, nullable = arrow_type(avro_type["values"])
        return pa.map_(pa.string(), pa.field("value", value, nullable=nullable)), False
    return _PRIMITIVES[kind], False


def to_table(record_type: str, records: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(records, schema=arrow_schema(record_type))
