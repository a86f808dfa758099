"""`demand_stream_sensor`: read the stream, land the batch, request runs for what it touched.

A tick, in order: read every shard from the cursor's checkpoints (bounded by records and
time); land the batch in S3 (changes per partition, error documents, a summary); then return
the new checkpoints with one run request per record type touched. Dagster stores the cursor
and the run requests together when the tick returns, so a tick that dies before that leaves
the cursor where it was: the next tick reads the same changes, names its batch the same and
rewrites the same objects. Run keys (`{batch}:{type}`) make a repeated request launch nothing.
"""

from datetime import date, timedelta

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from demand_assets.defs.partitions import partition_window
from demand_assets.defs.resources import ArchiveResource, KinesisStreamResource
from demand_assets.records import RECORD_TYPES
from demand_assets.records.timestamps import format_instant
from demand_assets.runtime import gc_paused
from demand_assets.storage.batches import BatchSummary, ChangeRead, land_batch
from demand_assets.stream import checkpoints

SENSOR_NAME = "demand_stream_sensor"


def archive_job_name(record_type: str) -> str:
    return f"archive_{record_type}_batches"


BATCH_TAG = "demand/batch"
TYPE_TAG = "demand/record_type"
DEFAULT_INTERVAL_SECONDS = 10


# Touched days further apart than this go to separate runs: a run over a range records every
# day in it, so one old change beside today's must not make a run over the years between.
MAX_GAP_DAYS = 7


def run_requests(summary: BatchSummary) -> list[dg.RunRequest]:
    """Per record type, the partitions the batch touched as one key or one range; days more
    than MAX_GAP_DAYS apart are split into separate runs (run key suffixed by the first day)."""
    requests = []
    for record_type, days in summary.partitions().items():
        groups = gap_groups(days)
        for group in groups:
            tags = {BATCH_TAG: summary.batch, TYPE_TAG: record_type}
            partition_key = None
            if len(group) == 1:
                partition_key = group[0]
            else:
                tags[ASSET_PARTITION_RANGE_START_TAG] = group[0]
                tags[ASSET_PARTITION_RANGE_END_TAG] = group[-1]
            run_key = f"{summary.batch}:{record_type}"
            requests.append(
                dg.RunRequest(
                    job_name=archive_job_name(record_type),
                    run_key=run_key if len(groups) == 1 else f"{run_key}:{group[0]}",
                    partition_key=partition_key,
                    run_config={"ops": {record_type: {"config": {"batch": summary.batch}}}},
                    tags=tags,
                )
            )
    return requests


def gap_groups(days: list[str], max_gap: int = MAX_GAP_DAYS) -> list[list[str]]:
    """Sorted days in groups, a new group wherever the next day is more than max_gap away."""
    groups: list[list[str]] = []
    for day in sorted(days):
        if groups and date.fromisoformat(day) - date.fromisoformat(groups[-1][-1]) <= timedelta(
            days=max_gap
        ):
            groups[-1].append(day)
        else:
            groups.append([day])
    return groups


def archive_jobs() -> list:
    """What sensor runs execute: one record asset and its Glue partitions, without checks
    (those run in backfills, the daily compaction and from the UI; not every ten seconds). One
    job per record type, so a run request needs no asset selection, which would bring the
    checks back."""
    return [
        dg.define_asset_job(
            archive_job_name(record_type),
            selection=dg.AssetSelection.assets(
                record_type, f"{record_type}_glue_partitions"
            ).without_checks(),
            description=f"Archives the {record_type} changes of one landed batch; "
            "launched by demand_stream_sensor.",
        )
        for record_type in RECORD_TYPES
    ]


def stream_sensor(
    jobs: list,
    partitions: dg.DailyPartitionsDefinition,
    minimum_interval_seconds: int = DEFAULT_INTERVAL_SECONDS,
) -> dg.SensorDefinition:
    @dg.sensor(
        name=SENSOR_NAME,
        description=(
            "Reads every shard of the change stream from its checkpoint, lands the batch in S3 "
            "and requests a run per record type for the partitions it touched."
        ),
        minimum_interval_seconds=minimum_interval_seconds,
        jobs=jobs,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def demand_stream_sensor(
        context: dg.SensorEvaluationContext,
        stream: KinesisStreamResource,
        archive: ArchiveResource,
    ):
        before = checkpoints.load(context.cursor)
        read = stream.reader(context.log).read(before)
        cursor = checkpoints.dump(read.checkpoints)
        if not read.records:
            if read.checkpoints != before:
                return dg.SensorResult(cursor=cursor)
            return dg.SkipReason(f"no new changes on {stream.stream_name}")
        batch = checkpoints.batch_name(
            stream.stream_name, read.first_read, min(r.arrival for r in read.records)
        )
        # Arrivals as `…T…:…:….sssZ` (SPEC 2): error documents are stamped and named by them.
        changes = [
            ChangeRead(r.shard_id, r.sequence_number, format_instant(r.arrival), r.data)
            for r in read.records
        ]
        with gc_paused():
            summary = land_batch(
                archive.bucket(),
                archive.layout,
                stream.stream_name,
                batch,
                changes,
                partition_window(partitions),
                read.millis_behind_latest,
            )
        context.log.info(
            "batch %s: %d changes, %d partitions, %d rejected, %d skipped, %d ms behind",
            batch,
            summary.records,
            len(summary.archivable),
            sum(summary.rejected.values()),
            sum(summary.skipped.values()),
            summary.millis_behind_latest,
        )
        return dg.SensorResult(run_requests=run_requests(summary), cursor=cursor)

    return demand_stream_sensor
