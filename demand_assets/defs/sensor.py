"""`demand_stream_sensor`: read the stream, land the batch, and keep the archive runs in flight.

A tick, in order:
1. `ingest` (demand_assets/ingest.py): read every shard from the cursor's checkpoints, land the
   batch in S3 (landing objects, error documents, pending marks, a summary), exactly as a
   repeat of the same tick after a crash would;
2. look at the `archive_batches` runs on the instance, and request one if the buffering hints
   say so (defs/buffering.py): at most one queued and one in progress at any moment;
3. return the new checkpoints and buffer as the cursor, with the run request. Dagster stores
   them together when the tick returns; a tick that dies before leaves the cursor where it was.
"""

from datetime import UTC, datetime

import dagster as dg
import orjson

from demand_assets.defs.archive_job import ARCHIVE_JOB
from demand_assets.defs.buffering import Buffer, BufferingHints, decide
from demand_assets.defs.resources import ArchiveResource, KinesisStreamResource
from demand_assets.ingest import ingest
from demand_assets.records import RECORD_TYPES
from demand_assets.runtime import gc_paused
from demand_assets.storage.pending import oldest_pending
from demand_assets.storage.recent import recent_changes

SENSOR_NAME = "demand_stream_sensor"
DEFAULT_INTERVAL_SECONDS = 10
# The run a tick requests counts as queued until it has started.
QUEUED = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.STARTING,
]
IN_PROGRESS = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def load_cursor(cursor: str | None) -> tuple[dict[str, str], Buffer]:
    if not cursor:
        return {}, Buffer()
    state = orjson.loads(cursor)
    buffer = state.get("buffer") or {}
    return dict(state.get("shards", {})), Buffer(buffer.get("since"), buffer.get("changes", 0))


def dump_cursor(checkpoints: dict[str, str], buffer: Buffer) -> str:
    state = {"shards": checkpoints, "buffer": {"since": buffer.since, "changes": buffer.changes}}
    return orjson.dumps(state, option=orjson.OPT_SORT_KEYS).decode()


def count_runs(instance: dg.DagsterInstance, statuses) -> int:
    return len(
        instance.get_run_ids(dg.RunsFilter(job_name=ARCHIVE_JOB, statuses=statuses), limit=10)
    )


def stream_sensor(
    job: dg.JobDefinition,
    hints: BufferingHints | None = None,
    minimum_interval_seconds: int = DEFAULT_INTERVAL_SECONDS,
) -> dg.SensorDefinition:
    hints = hints or BufferingHints()

    @dg.sensor(
        name=SENSOR_NAME,
        description=(
            "Reads every shard of the change stream from its checkpoint, lands the batch in S3 "
            "and keeps one archive_batches run in flight (one more queued) while batches are "
            f"pending; buffers up to {hints.interval_seconds:g} s or {hints.max_changes} "
            "changes before requesting one."
        ),
        minimum_interval_seconds=minimum_interval_seconds,
        job=job,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def demand_stream_sensor(
        context: dg.SensorEvaluationContext,
        stream: KinesisStreamResource,
        archive: ArchiveResource,
    ):
        before, buffer = load_cursor(context.cursor)
        store, store_window = archive.archive(), archive.window()
        with gc_paused():
            tick = ingest(
                stream.reader(context.log),
                store,
                before,
                store_window,
                recent_changes(store, stream.dedup_window),
            )
        summary = tick.summary
        if summary is not None:
            buffer.add(summary.records - summary.duplicates, summary.first_arrival)
        queued = count_runs(context.instance, QUEUED)
        in_progress = count_runs(context.instance, IN_PROGRESS)
        leftover = None
        if not (queued or in_progress or buffer.changes):
            leftover = oldest_pending(store, RECORD_TYPES)
        now = datetime.now(UTC)
        request, why = decide(
            buffer,
            queued=queued,
            in_progress=in_progress,
            leftover_since=leftover,
            now=now,
            hints=hints,
        )
        if summary is not None:
            context.log.info(
                "batch %s: %d changes (%d duplicates), %d partitions, %d rejected, "
                "%d skipped, %d ms behind; %s",
                summary.batch,
                summary.records,
                summary.duplicates,
                len(summary.archivable),
                sum(summary.rejected.values()),
                sum(summary.skipped.values()),
                summary.millis_behind_latest,
                why,
            )
        elif tick.adopted:
            context.log.info("batch %s had landed whole before; cursor moved on", tick.adopted)
        cursor = dump_cursor(tick.checkpoints, buffer)
        if not request:
            if cursor != context.cursor:
                return dg.SensorResult(cursor=cursor)
            return dg.SkipReason(why)
        # A tick done again after a crash requests its run under the same key.
        key = summary.batch if summary is not None else tick.adopted or f"{now:%Y%m%dT%H%M%S.%fZ}"
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=f"archive:{key}", job_name=ARCHIVE_JOB, tags={"demand/reason": why}
                )
            ],
            cursor=cursor,
        )

    return demand_stream_sensor
