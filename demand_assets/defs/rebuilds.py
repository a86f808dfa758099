"""Rebuild runs: one file per format per partition, registered in Glue and checked.

A rebuild is a run of a record asset without `batch` config: each of its partitions is
rebuilt from every landed batch into one compacted file per format (de-duplicated by
`eventID`), which replaces the batch files. `compact_partitions` runs it with the partitions'
Glue registration and the checks. Two things request rebuilds:
- the `daily_compaction` schedule, for the partitions that yesterday's batches touched;
- an operator, from the UI (materialize or backfill the record asset's partitions).

Requests are one run per record type per range of at most 31 days (the record assets'
backfill policy), carrying `demand/record_type` so that runs of one type queue behind each
other (dagster.yaml). Each range spans the touched days of a 31-day window: an untouched day
in between is rebuilt too, to the same bytes, which costs less than a run per scattered day.
"""

from collections.abc import Iterable, Mapping
from datetime import date, timedelta

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    RUN_KEY_TAG,
)

from demand_assets.defs.sensor import TYPE_TAG
from demand_assets.records import RECORD_TYPES, PartitionWindow

COMPACT_JOB = "compact_partitions"
MAX_DAYS_PER_RUN = 31
REASON_TAG = "demand/rebuild"


def day_ranges(days: Iterable[str], max_days: int = MAX_DAYS_PER_RUN) -> list[tuple[str, str]]:
    """Sorted days as (first, last) ranges, each within a window of `max_days` days."""
    ranges: list[tuple[str, str]] = []
    for day in sorted(set(days)):
        if ranges:
            first, _ = ranges[-1]
            span = date.fromisoformat(day) - date.fromisoformat(first)
            if span < timedelta(days=max_days):
                ranges[-1] = (first, day)
                continue
        ranges.append((day, day))
    return ranges


def within(days: Iterable[str], window: PartitionWindow) -> tuple[list[str], list[str]]:
    """(days inside the partitions, days outside them)."""
    inside, outside = [], []
    first, last = window.first.isoformat(), window.last.isoformat()
    for day in sorted(set(days)):
        (inside if first <= day <= last else outside).append(day)
    return inside, outside


def rebuild_request(
    record_type: str,
    first: str,
    last: str,
    run_key: str,
    check_keys: Mapping[str, list[dg.AssetCheckKey]],
    tags: Mapping[str, str] | None = None,
) -> dg.RunRequest:
    tags = {**(tags or {}), TYPE_TAG: record_type}
    partition_key = None
    if first == last:
        partition_key = first
    else:
        tags[ASSET_PARTITION_RANGE_START_TAG] = first
        tags[ASSET_PARTITION_RANGE_END_TAG] = last
    return dg.RunRequest(
        job_name=COMPACT_JOB,
        run_key=run_key,
        partition_key=partition_key,
        tags=tags,
        asset_selection=[dg.AssetKey(record_type), dg.AssetKey(f"{record_type}_glue_partitions")],
        asset_check_keys=list(check_keys.get(record_type, [])),
    )


def unrequested(instance: dg.DagsterInstance, requests: list[dg.RunRequest]) -> list:
    """The requests whose run key no run carries yet. The daemon de-duplicates run keys of one
    sensor, or of one schedule tick; this holds across ticks, re-evaluations and in-process
    execution too."""
    return [
        r
        for r in requests
        if not instance.get_run_ids(dg.RunsFilter(tags={RUN_KEY_TAG: r.run_key}), limit=1)
    ]


def compact_job(partitions: dg.DailyPartitionsDefinition):
    """The record assets, their Glue partitions and their checks; requests select one type."""
    selection = dg.AssetSelection.assets(*RECORD_TYPES) | dg.AssetSelection.assets(
        *(f"{t}_glue_partitions" for t in RECORD_TYPES)
    )
    return dg.define_asset_job(
        COMPACT_JOB,
        selection=selection,
        partitions_def=partitions,
        description=(
            "Rebuilds partitions of a record type from every landed batch into one file per "
            "format, registers them in Glue and runs the checks. Requested by daily_compaction."
        ),
    )


def check_keys_by_type(checks: Iterable) -> dict[str, list[dg.AssetCheckKey]]:
    keys: dict[str, list[dg.AssetCheckKey]] = {}
    for checks_def in checks:
        for key in checks_def.check_keys:
            keys.setdefault(key.asset_key.to_user_string(), []).append(key)
    return keys
