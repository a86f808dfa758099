"""Glue tables and partitions (SPEC section 6), with pure boto3.

`GlueCatalog` creates the database and the `{type}_{format}` tables, evolves a table when its
Avro schema changes (backward-compatible changes only, `check_evolution`), and registers daily
partitions idempotently.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from datetime import date

from botocore.exceptions import ClientError

from demand_assets.catalog.glue_schema import (
    AVRO_LITERAL,
    FINGERPRINT,
    LOCATION_TEMPLATE,
    PARTITION_KEY,
    PROJECTION_PREFIX,
    SCHEMA_LITERAL,
    named_types,
)

BATCH_CREATE_LIMIT = 100  # partitions per BatchCreatePartition call
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class SchemaEvolutionError(Exception):
    """A schema change that tables or files already written could not follow."""

    def __init__(self, table: str, path: str, problem: str):
        self.table, self.path, self.problem = table, path, problem
        super().__init__(f"table {table}: field {path!r} {problem}")


# --------------------------------------------------------------------------------------------
# Schema evolution
# --------------------------------------------------------------------------------------------


def check_evolution(old_avro: dict, new_avro: dict, table: str) -> None:
    """Raise SchemaEvolutionError unless `new_avro` can replace `old_avro` for data already
    written: fields (top-level or in nested records) may be added only as nullable with
    default null (`["null", T]`, `"default": null`), a type may only gain null (`T` to
    `["null", T]`), enums may only gain symbols. Removing or renaming a field, or any other
    change of type, raises, naming the field path (e.g. `date.triggered`).
    """
    _Evolution(old_avro, new_avro, table).record(old_avro, new_avro, "")


class _Evolution:
    def __init__(self, old: dict, new: dict, table: str):
        self.old_names, self.new_names = named_types(old), named_types(new)
        self.table = table
        self.seen: set[tuple[int, int]] = set()

    def fail(self, path: str, problem: str):
        raise SchemaEvolutionError(self.table, path or "<root>", problem)

    def resolve(self, schema, names: dict):
        if isinstance(schema, str) and schema in names:
            return names[schema]
        if isinstance(schema, str) and "." in schema and schema.rsplit(".", 1)[-1] in names:
            return names[schema.rsplit(".", 1)[-1]]
        if isinstance(schema, dict) and isinstance(schema.get("type"), dict | list):
            return schema["type"]
        if isinstance(schema, dict) and set(schema) <= {"type"} and isinstance(schema["type"], str):
            return self.resolve(schema["type"], names)
        return schema

    def record(self, old: dict, new: dict, path: str) -> None:
        key = (id(old), id(new))
        if key in self.seen:  # a recursive or reused named record: checked once
            return
        self.seen.add(key)
        if _short(old["name"]) != _short(new["name"]):
            self.fail(path, f"record renamed from {old['name']!r} to {new['name']!r}")
        new_fields = {f["name"]: f for f in new["fields"]}
        for old_field in old["fields"]:
            name = old_field["name"]
            where = f"{path}.{name}" if path else name
            if name not in new_fields:
                self.fail(where, "was removed (or renamed); fields can only be added")
            self.type(old_field["type"], new_fields[name]["type"], where)
        old_names = {f["name"] for f in old["fields"]}
        for new_field in new["fields"]:
            if new_field["name"] in old_names:
                continue
            where = f"{path}.{new_field['name']}" if path else new_field["name"]
            kind = new_field["type"]
            nullable_first = isinstance(kind, list) and kind and kind[0] == "null"
            if not (nullable_first and "default" in new_field and new_field["default"] is None):
                self.fail(
                    where,
                    "was added without being nullable with default null; a new field must be "
                    'declared as ["null", T] with "default": null',
                )

    def type(self, old, new, path: str) -> None:
        old = self.resolve(old, self.old_names)
        new = self.resolve(new, self.new_names)
        if isinstance(old, list) or isinstance(new, list):
            self.union(old, new, path)
            return
        if isinstance(old, str) or isinstance(new, str):
            if old != new:
                self.changed(old, new, path)
            return
        kind = old.get("type")
        if kind != new.get("type") or old.get("logicalType") != new.get("logicalType"):
            self.changed(old, new, path)
        if kind == "record":
            self.record(old, new, path)
        elif kind == "array":
            self.type(old["items"], new["items"], f"{path}[]")
        elif kind == "map":
            self.type(old["values"], new["values"], f"{path}{{}}")
        elif kind == "enum":
            lost = [s for s in old["symbols"] if s not in new["symbols"]]
            if lost:
                self.fail(path, f"enum lost symbols {lost}")
        elif kind == "fixed" and old.get("size") != new.get("size"):
            self.changed(old, new, path)
        if old.get("logicalType") == "decimal" and (
            old.get("precision") != new.get("precision") or old.get("scale") != new.get("scale")
        ):
            self.changed(old, new, path)

    def union(self, old, new, path: str) -> None:
        old_branches = old if isinstance(old, list) else [old]
        new_branches = new if isinstance(new, list) else [new]
        if "null" in old_branches and "null" not in new_branches:
            self.fail(path, "became non-nullable")
        old_values = [b for b in old_branches if b != "null"]
        new_values = [b for b in new_branches if b != "null"]
        if len(old_values) != len(new_values):
            self.changed(old, new, path)
        for old_branch, new_branch in zip(old_values, new_values, strict=True):
            self.type(old_branch, new_branch, path)

    def changed(self, old, new, path: str):
        self.fail(path, f"changed type from {_describe(old)} to {_describe(new)}")


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _describe(schema) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, dict) and schema.get("type") in ("record", "enum", "fixed"):
        return f"{schema['type']} {schema.get('name')}"
    text = json.dumps(schema, separators=(",", ":"))
    return text if len(text) <= 80 else text[:77] + "..."


# --------------------------------------------------------------------------------------------
# The catalog
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartitionFailure:
    day: str
    code: str
    message: str


@dataclass
class PartitionReport:
    """What `register_partitions` did, per day (sorted)."""

    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    failed: list[PartitionFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


class GlueCatalog:
    """The tables and partitions of one Glue database, through a boto3 Glue client."""

    def __init__(self, client, database: str):
        self.client = client
        self.database = database

    # database --------------------------------------------------------------------------------
    def ensure_database(self, description: str = "demand-assets archive") -> str:
        """Create the database unless it exists: "created" or "unchanged"."""
        try:
            self.client.create_database(
                DatabaseInput={"Name": self.database, "Description": description}
            )
        except ClientError as exc:
            if _code(exc) != "AlreadyExistsException":
                raise
            return "unchanged"
        return "created"

    # tables -----------------------------------------------------------------------------------
    def ensure_table(self, table_input: dict) -> str:
        """Create or evolve a table to `table_input` (from `glue_schema.table_input`).

        "created" when it was absent. When it exists with another schema fingerprint, the
        change is checked against the stored schema (SchemaEvolutionError, nothing changed)
        and applied: "updated". It is also "updated" when the fingerprint matches but the
        location, formats, SerDe or partition projection differ. Otherwise "unchanged".
        """
        name = table_input["Name"]
        desired_fingerprint = table_input.get("Parameters", {}).get(FINGERPRINT)
        if not desired_fingerprint:
            raise ValueError(f"table input {name} carries no {FINGERPRINT} parameter")
        stored = self.get_table(name)
        if stored is None:
            try:
                self.client.create_table(DatabaseName=self.database, TableInput=table_input)
                return "created"
            except ClientError as exc:  # created concurrently: evolve it like any other
                if _code(exc) != "AlreadyExistsException":
                    raise
                stored = self.get_table(name)
                if stored is None:
                    raise

        if stored.get("Parameters", {}).get(FINGERPRINT) != desired_fingerprint:
            old_schema = stored_schema(stored)
            new_schema = stored_schema(table_input)
            if old_schema is not None and new_schema is not None:
                check_evolution(old_schema, new_schema, name)
            else:
                _check_columns(stored, table_input, name)
        elif not _drifted(stored, table_input):
            return "unchanged"
        self.client.update_table(DatabaseName=self.database, TableInput=table_input)
        return "updated"

    def get_table(self, name: str) -> dict | None:
        """The stored table, or None when it does not exist."""
        try:
            return self.client.get_table(DatabaseName=self.database, Name=name)["Table"]
        except ClientError as exc:
            if _code(exc) == "EntityNotFoundException":
                return None
            raise

    # partitions -------------------------------------------------------------------------------
    def register_partitions(self, table: str, days: list[str], location: str) -> PartitionReport:
        """Register daily partitions (`YYYY-MM-DD`) of a table, each at
        `{location}partition_date={day}/`, with the table's storage descriptor.

        Idempotent: a partition that is already registered counts as existing. Other
        per-partition errors are reported in `failed`; a missing table raises (ClientError
        EntityNotFoundException), a malformed day raises ValueError before anything is sent.
        """
        wanted = sorted(set(days))
        bad = [day for day in wanted if not _is_day(day)]
        if bad:
            raise ValueError(f"not partition dates (YYYY-MM-DD): {bad}")
        report = PartitionReport()
        if not wanted:
            return report
        stored = self.client.get_table(DatabaseName=self.database, Name=table)["Table"]
        descriptor = stored["StorageDescriptor"]
        location = location if location.endswith("/") else f"{location}/"
        for start in range(0, len(wanted), BATCH_CREATE_LIMIT):
            chunk = wanted[start : start + BATCH_CREATE_LIMIT]
            response = self.client.batch_create_partition(
                DatabaseName=self.database,
                TableName=table,
                PartitionInputList=[_partition_input(descriptor, location, d) for d in chunk],
            )
            errors = {}
            for error in response.get("Errors", []):
                values = error.get("PartitionValues") or [""]
                errors[values[0]] = error.get("ErrorDetail", {})
            for day in chunk:
                detail = errors.get(day)
                if detail is None:
                    report.created.append(day)
                elif detail.get("ErrorCode") == "AlreadyExistsException":
                    report.existing.append(day)
                else:
                    report.failed.append(
                        PartitionFailure(
                            day, detail.get("ErrorCode", ""), detail.get("ErrorMessage", "")
                        )
                    )
        return report

    def partitions(self, table: str) -> set[str]:
        """The `partition_date` values registered for a table."""
        pages = self.client.get_paginator("get_partitions").paginate(
            DatabaseName=self.database, TableName=table, ExcludeColumnSchema=True
        )
        return {p["Values"][0] for page in pages for p in page.get("Partitions", [])}


def stored_schema(table: dict) -> dict | None:
    """The Avro schema a table (stored, or a TableInput) was built from, if it says."""
    parameters = table.get("Parameters", {})
    literal = parameters.get(AVRO_LITERAL) or parameters.get(SCHEMA_LITERAL)
    if not literal:
        serde = table.get("StorageDescriptor", {}).get("SerdeInfo", {})
        literal = serde.get("Parameters", {}).get(AVRO_LITERAL)
    return json.loads(literal) if literal else None


def _check_columns(stored: dict, desired: dict, table: str) -> None:
    """Without a stored Avro schema (a table made elsewhere), compare columns: none may
    disappear or change type."""
    new = {c["Name"].lower(): c["Type"] for c in desired["StorageDescriptor"]["Columns"]}
    for column in stored.get("StorageDescriptor", {}).get("Columns", []):
        name = column["Name"]
        if name.lower() not in new:
            raise SchemaEvolutionError(table, name, "was removed (or renamed)")
        if new[name.lower()].replace(" ", "") != column["Type"].replace(" ", ""):
            raise SchemaEvolutionError(
                table, name, f"changed type from {column['Type']} to {new[name.lower()]}"
            )


def _drifted(stored: dict, desired: dict) -> bool:
    """Whether the stored table differs from `desired` in what the schema does not decide."""
    if stored.get("TableType") != desired.get("TableType"):
        return True
    if _keys(stored.get("PartitionKeys")) != _keys(desired.get("PartitionKeys")):
        return True
    have, want = stored.get("StorageDescriptor", {}), desired["StorageDescriptor"]
    for key in ("Location", "InputFormat", "OutputFormat"):
        if have.get(key) != want.get(key):
            return True
    have_serde, want_serde = have.get("SerdeInfo", {}), want.get("SerdeInfo", {})
    if have_serde.get("SerializationLibrary") != want_serde.get("SerializationLibrary"):
        return True
    if (have_serde.get("Parameters") or {}) != (want_serde.get("Parameters") or {}):
        return True
    have_params, want_params = stored.get("Parameters", {}), desired.get("Parameters", {})
    if any(have_params.get(k) != v for k, v in want_params.items()):
        return True
    managed = [k for k in have_params if k.startswith(PROJECTION_PREFIX) or k == LOCATION_TEMPLATE]
    return any(k not in want_params for k in managed)


def _keys(keys: list[dict] | None) -> list[tuple[str, str]]:
    return [(k["Name"], k.get("Type", "")) for k in keys or []]


def _partition_input(descriptor: dict, location: str, day: str) -> dict:
    storage = copy.deepcopy(descriptor)
    storage["Location"] = f"{location}{PARTITION_KEY}={day}/"
    return {"Values": [day], "StorageDescriptor": storage}


def _is_day(day: str) -> bool:
    if not isinstance(day, str) or not _DAY.match(day):
        return False
    try:
        date.fromisoformat(day)
    except ValueError:
        return False
    return True


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")
