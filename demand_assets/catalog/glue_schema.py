"""Glue tables derived from the Avro schemas (SPEC section 6): Hive column types, columns,
and the TableInput of each `{type}_{format}` table.

The `.avsc` of a record type is the single source of truth; the column types here are the ones
Hive's AvroSerDe derives from the same schema, so the Avro table's columns and its
`avro.schema.literal` always agree.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping

from demand_assets.formats import FORMATS
from demand_assets.records.schemas import avro_schema

PARTITION_KEY = "partition_date"
COMMENT_MAX = 255  # Glue's limit on a column comment
DESCRIPTION_MAX = 2048  # Glue's limit on a table description

# Table parameters this package owns.
FINGERPRINT = "demand.schema.fingerprint"  # sha256 of the compact avsc the table was built from
AVRO_LITERAL = "avro.schema.literal"
SCHEMA_LITERAL = "demand.schema.literal"  # the avsc of a Parquet table (Avro tables: AVRO_LITERAL)
PROJECTION_PREFIX = "projection."
LOCATION_TEMPLATE = "storage.location.template"

_PRIMITIVES = {
    "string": "string",
    "boolean": "boolean",
    "int": "int",
    "long": "bigint",
    "float": "float",
    "double": "double",
    "bytes": "binary",
}
_LOGICAL = {
    "date": "date",
    "timestamp-millis": "timestamp",
    "timestamp-micros": "timestamp",
}

_STORAGE = {
    "avro": {
        "InputFormat": "org.apache.hadoop.hive.ql.io.avro.AvroContainerInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.avro.AvroContainerOutputFormat",
        "SerializationLibrary": "org.apache.hadoop.hive.serde2.avro.AvroSerDe",
    },
    "parquet": {
        "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
        "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
    },
}


def hive_type(avro_type, names: Mapping[str, dict] | None = None) -> str:
    """The Hive (Glue/Athena) type of an Avro type.

    string, boolean, int, bigint (long), float, double, binary (bytes, fixed), string (enum),
    struct<name:type,...> (record), array<T>, map<string,T>; a union of null and one type is
    that type, a union of several non-null types is uniontype<...>. Logical types date and
    timestamp-millis/-micros map to date and timestamp, decimal to decimal(p,s), others to
    their underlying type. `names` resolves references to named types (see `named_types`);
    records defined inline are resolved without it.
    """
    return _hive(avro_type, dict(names or {}), ())


def named_types(schema) -> dict[str, dict]:
    """Every named type (record, enum, fixed) a schema defines, by full and by short name."""
    found: dict[str, dict] = {}
    _collect(schema, None, found)
    return found


def columns(record_type: str | dict) -> list[dict]:
    """The Glue columns of a record type (or of an Avro record schema), in schema order:
    `{"Name", "Type"}` plus `"Comment"` from the field's doc (one line, at most 255 chars)."""
    schema = _schema(record_type)
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise ValueError("a table's Avro schema must be a record")
    names = named_types(schema)
    out = []
    for field in schema["fields"]:
        column = {"Name": field["name"], "Type": _hive(field["type"], names, (schema["name"],))}
        comment = _one_line(field.get("doc"), COMMENT_MAX)
        if comment:
            column["Comment"] = comment
        out.append(column)
    return out


def table_name(record_type: str, fmt: str) -> str:
    """The Glue table of a record type in a format, e.g. `demand_avro`."""
    return f"{record_type}_{fmt}"


def schema_text(schema: dict) -> str:
    """An Avro schema as compact JSON: the `avro.schema.literal` and what is fingerprinted."""
    return json.dumps(schema, separators=(",", ":"))


def fingerprint(schema: dict) -> str:
    """sha256 (hex) of the compact JSON of an Avro schema."""
    return hashlib.sha256(schema_text(schema).encode()).hexdigest()


def table_input(
    record_type: str,
    fmt: str,
    location: str,
    *,
    projection: tuple[str, str] | None = None,
    schema: dict | None = None,
) -> dict:
    """The Glue TableInput of `{record_type}_{fmt}`, located at `location` (an `s3://` URI of
    the table's prefix, e.g. `s3://bucket/prefix/avro/demand/`), partitioned by
    `partition_date` (string `YYYY-MM-DD`).

    `projection=(first_day, last_day)` adds Athena partition projection on `partition_date`
    over that range (each end `YYYY-MM-DD`, or Athena's relative form such as `NOW+400DAYS`).
    `schema` replaces the packaged `.avsc` of the record type (a schema migration, or a test).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    schema = avro_schema(record_type) if schema is None else schema
    location = _table_location(location)
    table = {
        "Name": table_name(record_type, fmt),
        "TableType": "EXTERNAL_TABLE",
        "Parameters": _table_parameters(fmt, schema, location, projection),
        "PartitionKeys": [{"Name": PARTITION_KEY, "Type": "string"}],
        "StorageDescriptor": _storage_descriptor(fmt, schema, location),
    }
    description = _one_line(schema.get("doc"), DESCRIPTION_MAX)
    if description:
        table["Description"] = description
    return table


def _table_location(location: str) -> str:
    """A table's `s3://` location, ending in `/`."""
    if not location.startswith("s3://"):
        raise ValueError(f"a table location is an s3:// URI, got {location!r}")
    return location if location.endswith("/") else f"{location}/"


def _table_parameters(
    fmt: str, schema: dict, location: str, projection: tuple[str, str] | None
) -> dict[str, str]:
    """The table's parameters: classification, fingerprint, the schema literal of its format
    (and Parquet's compression), Athena's partition projection when asked for."""
    literal = schema_text(schema)
    parameters = {"classification": fmt, FINGERPRINT: fingerprint(schema)}
    if fmt == "avro":
        parameters[AVRO_LITERAL] = literal
    else:
        parameters["parquet.compression"] = "SNAPPY"
        parameters[SCHEMA_LITERAL] = literal
    if projection is not None:
        parameters.update(projection_parameters(location, *projection))
    return parameters


def _storage_descriptor(fmt: str, schema: dict, location: str) -> dict:
    """Columns, location, input/output formats and the SerDe of a table in `fmt`."""
    storage = _STORAGE[fmt]
    if fmt == "avro":
        serde_parameters = {AVRO_LITERAL: schema_text(schema)}
    else:
        serde_parameters = {"serialization.format": "1"}
    return {
        "Columns": columns(schema),
        "Location": location,
        "InputFormat": storage["InputFormat"],
        "OutputFormat": storage["OutputFormat"],
        "Compressed": False,
        "SerdeInfo": {
            "SerializationLibrary": storage["SerializationLibrary"],
            "Parameters": serde_parameters,
        },
    }


def projection_parameters(location: str, first_day: str, last_day: str) -> dict[str, str]:
    """Athena partition projection of `partition_date` as daily dates over a range."""
    for end in (first_day, last_day):
        if not end or "," in end:
            raise ValueError(f"not a projection range end: {end!r}")
    location = location if location.endswith("/") else f"{location}/"
    key = f"{PROJECTION_PREFIX}{PARTITION_KEY}"
    return {
        "projection.enabled": "true",
        f"{key}.type": "date",
        f"{key}.format": "yyyy-MM-dd",
        f"{key}.range": f"{first_day},{last_day}",
        f"{key}.interval": "1",
        f"{key}.interval.unit": "DAYS",
        LOCATION_TEMPLATE: f"{location}{PARTITION_KEY}=${{{PARTITION_KEY}}}/",
    }


# --------------------------------------------------------------------------------------------


def _schema(record_type: str | dict):
    return avro_schema(record_type) if isinstance(record_type, str) else record_type


def _hive(avro_type, names: dict[str, dict], stack: tuple[str, ...]) -> str:
    if isinstance(avro_type, list):
        return _hive_union(avro_type, names, stack)
    if isinstance(avro_type, str):
        return _hive_named(avro_type, names, stack)
    if not isinstance(avro_type, dict) or "type" not in avro_type:
        raise ValueError(f"not an Avro type: {avro_type!r}")
    return _hive_complex(avro_type, names, stack)


def _hive_union(branches: list, names: dict[str, dict], stack: tuple[str, ...]) -> str:
    """null and one type: that type; several non-null types: a uniontype."""
    branches = [b for b in branches if b != "null"]
    if not branches:
        raise ValueError("a union of only null has no Hive type")
    if len(branches) == 1:
        return _hive(branches[0], names, stack)
    return f"uniontype<{','.join(_hive(b, names, stack) for b in branches)}>"


def _hive_named(avro_type: str, names: dict[str, dict], stack: tuple[str, ...]) -> str:
    """A primitive, or a reference to a named type (by full or short name)."""
    if avro_type in _PRIMITIVES:
        return _PRIMITIVES[avro_type]
    if avro_type == "null":
        raise ValueError("null alone has no Hive type")
    named = names.get(avro_type) or names.get(avro_type.rsplit(".", 1)[-1])
    if named is None:
        raise ValueError(f"unknown Avro type {avro_type!r}")
    return _hive(named, names, stack)


def _hive_complex(avro_type: dict, names: dict[str, dict], stack: tuple[str, ...]) -> str:
    """A logical type, record, array, map, enum or fixed, or `{"type": <another type>}`."""
    kind = avro_type["type"]
    logical = avro_type.get("logicalType")
    if logical == "decimal" and kind in ("bytes", "fixed"):
        return f"decimal({avro_type['precision']},{avro_type.get('scale', 0)})"
    if logical in _LOGICAL:
        return _LOGICAL[logical]
    if kind == "record":
        return _hive_record(avro_type, names, stack)
    if kind == "array":
        return f"array<{_hive(avro_type['items'], names, stack)}>"
    if kind == "map":
        return f"map<string,{_hive(avro_type['values'], names, stack)}>"
    if kind == "enum":
        return "string"
    if kind == "fixed":
        return "binary"
    return _hive(kind, names, stack)  # {"type": "string"} and the like


def _hive_record(record: dict, names: dict[str, dict], stack: tuple[str, ...]) -> str:
    name = record["name"]
    if name in stack:
        raise ValueError(f"recursive Avro record {name!r} has no Hive type")
    names.setdefault(name, record)
    fields = ",".join(
        f"{f['name']}:{_hive(f['type'], names, (*stack, name))}" for f in record["fields"]
    )
    return f"struct<{fields}>"


def _collect(schema, namespace: str | None, found: dict[str, dict]) -> None:
    if isinstance(schema, list):
        for branch in schema:
            _collect(branch, namespace, found)
        return
    if not isinstance(schema, dict):
        return
    kind = schema.get("type")
    if kind in ("record", "enum", "fixed"):
        name = schema["name"]
        if "." in name:
            full, namespace = name, name.rsplit(".", 1)[0]
        else:
            namespace = schema.get("namespace", namespace)
            full = f"{namespace}.{name}" if namespace else name
        found.setdefault(full, schema)
        found.setdefault(full.rsplit(".", 1)[-1], schema)
    if kind == "record":
        for field in schema["fields"]:
            _collect(field["type"], namespace, found)
    elif kind == "array":
        _collect(schema["items"], namespace, found)
    elif kind == "map":
        _collect(schema["values"], namespace, found)
    elif isinstance(kind, dict | list):
        _collect(kind, namespace, found)


def _one_line(text: str | None, limit: int) -> str:
    """Glue comments and descriptions are single-line; long ones are cut with an ellipsis."""
    if not text:
        return ""
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."
