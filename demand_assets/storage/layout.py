"""Every S3 key the archive uses, built in one place (SPEC section 4).

    {prefix}/{format}/{type}/partition_date={D}/{name}.{format}         data (Athena reads it)
    {prefix}/{format}/{type}/partition_date={D}/_covers-{name}.json     which batches a file holds
    {prefix}/landing/{type}/partition_date={D}/{batch}.jsonl.gz         raw changes of a batch
    {prefix}/landing/_batches/{arrival day}/{batch}.json                a batch's summary
    {prefix}/landing/_batches/{arrival day}/{batch}.ids                 its eventIDs (dedup)
    {prefix}/landing/_intents/{digest}.json                             what a tick will land
    {prefix}/landing/_pending/{type}/{batch}.json                       landed, not yet archived
    {prefix}/errors/{YYYY-MM-DDTHH-mm-ss.sssZ}-{uuid}.json              error documents

Names starting with `_` or `.` are not data; Athena skips them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from demand_assets.formats import FORMATS
from demand_assets.records.schemas import RECORD_TYPES

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SIDECAR_PREFIX = "_covers-"


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
        _check_day(day)
        return f"{self.table_prefix(fmt, record_type)}partition_date={day}/"

    def month_prefix(self, fmt: str, record_type: str, day: str) -> str:
        """What the partitions of `day`'s month share: one listing finds all their files."""
        _check_day(day)
        return f"{self.table_prefix(fmt, record_type)}partition_date={day[:7]}-"

    def data_key(self, fmt: str, record_type: str, day: str, name: str) -> str:
        _check(bool(_NAME.match(name)), f"not a file name: {name!r}")
        return f"{self.partition_prefix(fmt, record_type, day)}{name}.{fmt}"

    def sidecar_key(self, fmt: str, record_type: str, day: str, name: str) -> str:
        _check(bool(_NAME.match(name)), f"not a file name: {name!r}")
        return f"{self.partition_prefix(fmt, record_type, day)}{SIDECAR_PREFIX}{name}.json"

    # landing
    def landing_prefix(self, record_type: str, day: str | None = None) -> str:
        _check(record_type in RECORD_TYPES, f"unknown record type {record_type!r}")
        base = f"{self._root()}landing/{record_type}/"
        if day is None:
            return base
        _check_day(day)
        return f"{base}partition_date={day}/"

    def landing_key(self, record_type: str, day: str, batch: str) -> str:
        _check(bool(_NAME.match(batch)), f"not a batch name: {batch!r}")
        return f"{self.landing_prefix(record_type, day)}{batch}.jsonl.gz"

    def batch_summary_key(self, batch: str) -> str:
        """Summaries are grouped by the day their batch arrived (from its name), if known."""
        _check(bool(_NAME.match(batch)), f"not a batch name: {batch!r}")
        return f"{self.batch_summaries_prefix(arrival_day(batch))}{batch}.json"

    def batch_ids_key(self, batch: str) -> str:
        _check(bool(_NAME.match(batch)), f"not a batch name: {batch!r}")
        return f"{self.batch_summaries_prefix(arrival_day(batch))}{batch}.ids"

    def batch_summaries_prefix(self, day: str | None = None) -> str:
        return f"{self._root()}landing/_batches/{day or 'undated'}/"

    def intent_key(self, digest: str) -> str:
        _check(bool(_NAME.match(digest)), f"not an intent name: {digest!r}")
        return f"{self._root()}landing/_intents/{digest}.json"

    def pending_prefix(self, record_type: str) -> str:
        _check(record_type in RECORD_TYPES, f"unknown record type {record_type!r}")
        return f"{self._root()}landing/_pending/{record_type}/"

    def pending_key(self, record_type: str, batch: str) -> str:
        _check(bool(_NAME.match(batch)), f"not a batch name: {batch!r}")
        return f"{self.pending_prefix(record_type)}{batch}.json"

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


def name_of(key: str) -> str:
    """The batch (or file) name of a landing, pending or data key."""
    leaf = key.rsplit("/", 1)[-1]
    return leaf.split(".", 1)[0]


def partition_of(key: str) -> str:
    """The partition date of a key under `partition_date=...`."""
    match = re.search(r"partition_date=(\d{4}-\d{2}-\d{2})/", key)
    if match is None:
        raise ValueError(f"no partition in {key!r}")
    return match.group(1)


def _check_day(day: str) -> None:
    _check(bool(_DAY.match(day)), f"not a partition date: {day!r}")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)
