"""Rebuild runs: one file per format per partition, registered in Glue and checked.

A rebuild is a run of a record asset without `batch` config: each of its partitions is
rebuilt from every landed batch into one compacted file per format (de-duplicated by
`eventID`), which replaces the batch files. `compact_partitions` runs it with the partitions'
Glue registration and the checks. Three things request rebuilds:
- the `daily_compaction` schedule, for the partitions that yesterday's batches touched;
- `rebuild_after_landing`, after a `bootstrap_from_table` or `replay_errors` run landed
  batches, for the partitions those batches touched;
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
REBUILD_SENSOR = "rebuild_after_landing"
REBUILD_RANGES = "rebuild_ranges"  # output metadata of landing jobs: {type: [[first, last]]}
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


def rebuild_requests(
    ranges: Mapping[str, Iterable[Iterable[str]]],
    key: str,
    check_keys: Mapping[str, list[dg.AssetCheckKey]],
    tags: Mapping[str, str] | None = None,
) -> list[dg.RunRequest]:
    """One request per (record type, range); run keys `{key}:{type}:{first}:{last}`."""
    requests = []
    for record_type in RECORD_TYPES:
        for first, last in ranges.get(record_type, []):
            run_key = f"{key}:{record_type}:{first}:{last}"
            requests.append(rebuild_request(record_type, first, last, run_key, check_keys, tags))
    return requests


def unrequested(instance: dg.DagsterInstance, requests: list[dg.RunRequest]) -> list:
    """The requests whose run key no run carries yet. The daemon de-duplicates run keys of one
    sensor, or of one schedule tick; this holds across ticks, re-evaluations and in-process
    execution too."""
    return [
        r
        for r in requests
        if not instance.get_run_ids(dg.RunsFilter(tags={RUN_KEY_TAG: r.run_key}), limit=1)
    ]


def compact_job():
    """The record assets, their Glue partitions and their checks; requests select one type."""
    selection = dg.AssetSelection.assets(*RECORD_TYPES) | dg.AssetSelection.assets(
        *(f"{t}_glue_partitions" for t in RECORD_TYPES)
    )
    return dg.define_asset_job(
        COMPACT_JOB,
        selection=selection,
        description=(
            "Rebuilds partitions of a record type from every landed batch into one file per "
            "format, registers them in Glue and runs the checks. Requested by daily_compaction "
            "and rebuild_after_landing."
        ),
    )


def check_keys_by_type(checks: Iterable) -> dict[str, list[dg.AssetCheckKey]]:
    keys: dict[str, list[dg.AssetCheckKey]] = {}
    for checks_def in checks:
        for key in checks_def.check_keys:
            keys.setdefault(key.asset_key.to_user_string(), []).append(key)
    return keys


def landed_ranges(instance: dg.DagsterInstance, run_id: str) -> dict[str, list[list[str]]]:
    """The `rebuild_ranges` a landing run's steps reported, merged."""
    merged: dict[str, list[list[str]]] = {}
    entries = instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_OUTPUT)
    for entry in entries:
        metadata = entry.dagster_event.step_output_data.metadata
        if REBUILD_RANGES in metadata:
            for record_type, ranges in metadata[REBUILD_RANGES].value.items():
                merged.setdefault(record_type, []).extend(ranges)
    return merged


def rebuild_after_landing(
    monitored_jobs: list, job, check_keys: Mapping[str, list[dg.AssetCheckKey]]
) -> dg.SensorDefinition:
    @dg.run_status_sensor(
        name=REBUILD_SENSOR,
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=monitored_jobs,
        request_job=job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "After a bootstrap_from_table or replay_errors run succeeded, requests rebuilds of "
            "the partitions its landed batches touched."
        ),
    )
    def rebuild_after_landing(context: dg.RunStatusSensorContext):
        run_id = context.dagster_run.run_id
        ranges = landed_ranges(context.instance, run_id)
        requests = rebuild_requests(
            ranges, f"rebuild:{run_id}", check_keys, {REASON_TAG: f"after {run_id}"}
        )
        requests = unrequested(context.instance, requests)
        if not requests:
            return dg.SkipReason(f"run {run_id} landed nothing new to rebuild")
        context.log.info("run %s: %d rebuild runs", run_id, len(requests))
        return requests

    return rebuild_after_landing
