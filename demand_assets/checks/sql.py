"""The data-quality checks of one record type's partition, as Athena (Trino) SQL.

Each check's SQL is written once, from the record rules themselves (PII fields, reference-id
fields, partition-date sources), and returns `failing` (a count) and `samples` (a few
reference ids). Athena runs it in AWS; DuckDB runs the same text, transpiled, on the local
stack (checks.engines).
"""

from __future__ import annotations

from dataclasses import dataclass

from demand_assets.records.deletion import PII_FIELDS, REDACTED
from demand_assets.records.partition_date import CHANGE_TIME, PARTITION_SOURCES
from demand_assets.records.reference import REFERENCE_ID_FIELDS
from demand_assets.records.schemas import avro_schema

SAMPLES = 5


@dataclass(frozen=True)
class SqlCheck:
    name: str
    description: str
    severity: str  # "ERROR" or "WARN"
    blocking: bool
    sql: str  # with {table} (database-qualified) and {day}


def _column(path: str) -> str:
    """`date.requested` -> `t."date"."requested"` (quoted: `date` is a keyword)."""
    return "t." + ".".join(f'"{part}"' for part in path.split("."))


def _failing(condition: str, sample: str = 't."reference"."id"') -> str:
    return (
        f"SELECT count(*) AS failing, "
        f"array_join(slice(array_agg({sample}), 1, {SAMPLES}), ',') AS samples "
        f"FROM {{table}} t WHERE t.partition_date = '{{day}}' AND ({condition})"
    )


def _schema_fields(record_type: str) -> set[str]:
    return {f["name"] for f in avro_schema(record_type)["fields"]}


def deleted_pii(record_type: str) -> SqlCheck | None:
    """None for a type without PII fields (event, sale)."""
    fields = [name for name in PII_FIELDS if name in _schema_fields(record_type)]
    if not fields:
        return None
    leaks = " OR ".join(
        f"({_column(name)} IS NOT NULL AND {_column(name)} <> '{REDACTED}')" for name in fields
    )
    return SqlCheck(
        "deleted_rows_keep_no_pii",
        f"No deleted row carries {', '.join(fields)} other than '{REDACTED}'.",
        "ERROR",
        True,
        _failing(f't."isDeleted" = true AND ({leaks})'),
    )


def unique_changes() -> SqlCheck:
    return SqlCheck(
        "each_change_once",
        "No change event appears twice: provenance.eventID is unique in the partition.",
        "ERROR",
        False,
        "SELECT count(*) AS failing, "
        f"array_join(slice(array_agg(reference_id), 1, {SAMPLES}), ',') AS samples FROM ("
        'SELECT t."provenance"."eventID" AS event_id, min(t."reference"."id") AS reference_id '
        "FROM {table} t WHERE t.partition_date = '{day}' "
        'GROUP BY t."provenance"."eventID" HAVING count(*) > 1) d',
    )


def reference_and_partition(record_type: str) -> SqlCheck:
    parts = [_column(name) for name in REFERENCE_ID_FIELDS[record_type]]
    expected_id = parts[0] if len(parts) == 1 else "concat(" + ", '_', ".join(parts) + ")"
    sources = [
        _column("provenance.changeTime") if path == CHANGE_TIME else _column(path)
        for path in PARTITION_SOURCES[record_type]
    ]
    source = sources[0] if len(sources) == 1 else f"coalesce({', '.join(sources)})"
    derived_day = f"CAST(date(from_iso8601_timestamp({source}) AT TIME ZONE 'UTC') AS varchar)"
    return SqlCheck(
        "reference_and_partition_follow_the_rules",
        "reference.id is present and follows the type's rule, and the partition date "
        "re-derived from each row equals partition_date.",
        "WARN",
        False,
        _failing(
            f't."reference"."id" IS NULL OR t."reference"."id" <> {expected_id} '
            f"OR {derived_day} <> t.partition_date"
        ),
    )


ROW_COUNT_SQL = (
    "SELECT (SELECT count(*) FROM {avro} WHERE partition_date = '{day}') AS avro_rows, "
    "(SELECT count(*) FROM {parquet} WHERE partition_date = '{day}') AS parquet_rows"
)


def per_format_checks(record_type: str) -> list[SqlCheck]:
    """The checks run against each format's table of a partition."""
    checks = [deleted_pii(record_type), unique_changes(), reference_and_partition(record_type)]
    return [check for check in checks if check is not None]
