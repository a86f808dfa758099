"""Every S3 key the archive uses, built in one place (SPEC section 4).

    {prefix}/{format}/{type}/partition_date={YYYY-MM-DD}/{name}.{format}     data (Athena reads)
    {prefix}/{format}/{type}/partition_date={YYYY-MM-DD}/_covers-{name}.json which batches a
                                                                            compacted file covers
    {prefix}/{format}/{type}/_compactions/{YYYY-MM-DD}                      days with compactions
    {prefix}/landing/{type}/partition_date={YYYY-MM-DD}/{batch}.jsonl.gz    raw changes of a batch
    {prefix}/landing/_batches/{YYYY-MM-DD}/{batch}.json                     a batch's summary
    {prefix}/errors/{YYYY-MM-DDTHH-mm-ss.sssZ}-{uuid}.json                   error documents

Names starting with `_` or `.` are not data; Athena skips them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from demand_assets.records.schemas import RECORD_TYPES

FORMATS = ("avro", "parquet")
_BATCH = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Layout:
    prefix: str

    def _root(self) -> str:
        return f"{self.prefix}/" if self.prefix else ""

    # data
    def table_prefix(self, fmt: str, record_type: str) -> str:
        _check(fmt in FORMATS, f"unknown format {fmt!r}")
        _check(record_type in RECORD_TYPES, f"unknown record type {record_type!r}")
        return f"{self._root()}{fmt}/{record_type}/"

    def partition_prefix(self, fmt: str, record_type: str, day: str) -> str:
        _check(bool(_DAY.match(day)), f"not a partition date: {day!r}")
        return f"{self.table_prefix(fmt, record_type)}partition_date={day}/"

    def data_key(self, fmt: str, record_type: str, day: str, name: str) -> str:
        _check(bool(_BATCH.match(name)), f"not a file name: {name!r}")
        return f"{self.partition_prefix(fmt, record_type, day)}{name}.{fmt}"

    def compactions_prefix(self, fmt: str, record_type: str) -> str:
        """Markers of the days that have (or are getting) a compacted file."""
        return f"{self.table_prefix(fmt, record_type)}_compactions/"

    def compaction_marker_key(self, fmt: str, record_type: str, day: str) -> str:
        _check(bool(_DAY.match(day)), f"not a partition date: {day!r}")
        return f"{self.compactions_prefix(fmt, record_type)}{day}"

    # landing
    def landing_prefix(self, record_type: str, day: str | None = None) -> str:
        _check(record_type in RECORD_TYPES, f"unknown record type {record_type!r}")
        base = f"{self._root()}landing/{record_type}/"
        if day is None:
            return base
        _check(bool(_DAY.match(day)), f"not a partition date: {day!r}")
        return f"{base}partition_date={day}/"

    def landing_key(self, record_type: str, day: str, batch: str) -> str:
        _check(bool(_BATCH.match(batch)), f"not a batch name: {batch!r}")
        return f"{self.landing_prefix(record_type, day)}{batch}.jsonl.gz"

    def batch_summary_key(self, batch: str) -> str:
        """Summaries are grouped by the day their batch arrived (from its name), if known."""
        _check(bool(_BATCH.match(batch)), f"not a batch name: {batch!r}")
        return f"{self.batch_summaries_prefix(arrival_day(batch))}{batch}.json"

    def batch_summaries_prefix(self, day: str | None = None) -> str:
        return f"{self._root()}landing/_batches/{day or 'undated'}/"

    # errors
    def errors_prefix(self) -> str:
        return f"{self._root()}errors/"

    def error_key(self, timestamp: str, uuid: str) -> str:
        """`timestamp` is ISO-8601 (`2024-01-15T10:20:30.123Z`); colons become hyphens."""
        return f"{self.errors_prefix()}{timestamp.replace(':', '-')}-{uuid}.json"


def arrival_day(batch: str) -> str | None:
    """`2026-11-20` for a batch named `20261120T...Z-...`; None for other names."""
    match = re.match(r"^(\d{4})(\d{2})(\d{2})T\d{6}Z-", batch)
    return "-".join(match.groups()) if match else None


def batch_of(key: str) -> str:
    """The batch (or file) name of a landing or data key."""
    name = key.rsplit("/", 1)[-1]
    return name.split(".", 1)[0]


def partition_of(key: str) -> str:
    """The partition date of a key under `partition_date=...`."""
    match = re.search(r"partition_date=(\d{4}-\d{2}-\d{2})/", key)
    if match is None:
        raise ValueError(f"no partition in {key!r}")
    return match.group(1)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)
