"""Rebuild runs: one file per format per partition, registered in Glue and checked.

A run of a record asset rebuilds each of its partitions from every landed batch into one file
per format (each eventID once), which replaces the partition's other files.
`compact_partitions` runs the record assets with their Glue registration and their checks; the
`daily_compaction` schedule requests it for the partitions yesterday's batches touched, an
operator from the UI (materialize or backfill partitions of a record asset).

Requests are one run per record type per run of consecutive days, at most 31 (the record
assets' backfill policy), so a run never spans a day that holds no data: Dagster records every
partition of a run's range as materialized. They carry `demand/record_type`, so that runs of
one type queue behind each other (dagster.yaml).
"""

from collections.abc import Iterable, Mapping
from datetime import date, timedelta

import dagster as dg

from demand_assets.defs.assets import MAX_DAYS_PER_RUN
from demand_assets.defs.catalog import glue_partitions_key
from demand_assets.defs.tags import REASON_TAG, RUN_KEY_TAG, TYPE_TAG, partition_range_tags
from demand_assets.records import RECORD_TYPES, PartitionWindow

COMPACT_JOB = "compact_partitions"


def consecutive_runs(
    days: Iterable[str], max_days: int = MAX_DAYS_PER_RUN
) -> list[tuple[str, str]]:
    """Days as (first, last) ranges of consecutive days, each at most `max_days` long: the
    partition ranges of the runs that cover exactly these days."""
    ranges: list[tuple[str, str]] = []
    for day in sorted(set(days)):
        if ranges:
            first, last = ranges[-1]
            follows = date.fromisoformat(day) - date.fromisoformat(last) == timedelta(days=1)
            span = (date.fromisoformat(day) - date.fromisoformat(first)).days + 1
            if follows and span <= max_days:
                ranges[-1] = (first, day)
                continue
        ranges.append((day, day))
    return ranges


def split_by_window(days: Iterable[str], window: PartitionWindow) -> tuple[list[str], list[str]]:
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
    reason: str,
) -> dg.RunRequest:
    tags = {REASON_TAG: reason, TYPE_TAG: record_type}
    if first != last:
        tags.update(partition_range_tags(first, last))
    return dg.RunRequest(
        job_name=COMPACT_JOB,
        run_key=run_key,
        partition_key=first if first == last else None,
        tags=tags,
        asset_selection=[dg.AssetKey(record_type), glue_partitions_key(record_type)],
        asset_check_keys=list(check_keys.get(record_type, [])),
    )


def unrequested(instance: dg.DagsterInstance, requests: list[dg.RunRequest]) -> list:
    """The requests whose run key no run carries yet. The daemon de-duplicates run keys of one
    schedule tick; this holds across ticks, re-evaluations and in-process execution too."""
    return [
        r
        for r in requests
        if not instance.get_run_ids(dg.RunsFilter(tags={RUN_KEY_TAG: r.run_key}), limit=1)
    ]


def compact_job():
    """The record assets, their Glue partitions and their checks; requests select one type."""
    selection = dg.AssetSelection.assets(*RECORD_TYPES) | dg.AssetSelection.assets(
        *(glue_partitions_key(t) for t in RECORD_TYPES)
    )
    return dg.define_asset_job(
        COMPACT_JOB,
        selection=selection,
        executor_def=dg.in_process_executor,
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
