"""Jobs an operator launches from the UI: bootstrap the archive from the table, replay errors.

Both land batches the way a sensor tick does (`land_batch`: landing objects, error documents,
pending marks, a summary) under deterministic names, so a retried or re-executed run rewrites
the same keys. Neither writes data files itself: the batches they land are pending, and the
stream sensor requests an `archive_batches` run for them as it does for its own.

`bootstrap_from_table` scans the DynamoDB table (DEMAND_TABLE_NAME) with parallel Scan
segments, one step per segment (storage/table_snapshot.py). `replay_errors` re-decodes the
documents under `errors/` with the current rules (storage/replay.py).
"""

from datetime import UTC, datetime

import dagster as dg
from pydantic import Field

from demand_assets.defs.resources import ArchiveResource, DynamoDBTableResource
from demand_assets.defs.tags import EXCLUSIVE_TAG
from demand_assets.records.timestamps import format_instant
from demand_assets.storage.replay import DEFAULT_EVENTS_PER_BATCH, replay_errors
from demand_assets.storage.table_snapshot import SegmentScan, land_segment
from demand_assets.stream.table_scan import key_names

BOOTSTRAP_JOB = "bootstrap_from_table"
REPLAY_JOB = "replay_errors"


class TableSnapshotConfig(dg.Config):
    segments: int = Field(
        default=4,
        ge=1,
        le=1000,
        description="Parallel Scan segments (TotalSegments); one step each.",
    )
    page_size: int = Field(default=1000, ge=1, description="Items per Scan page (Limit).")
    items_per_batch: int = Field(
        default=20_000, ge=1, description="Items landed together as one batch."
    )
    as_of: str = Field(
        default="",
        description=(
            "The snapshot time, ISO-8601 (UTC if no offset): every item is archived as a change "
            "at this time. Default: when the run was created (for a retry or re-execution, the "
            "original run), so a retried run lands the same changes."
        ),
    )


class ReplayConfig(dg.Config):
    dry_run: bool = Field(default=False, description="Decode and count; write nothing.")
    max_documents: int = Field(
        default=0, ge=0, description="Replay only the oldest N documents; 0 replays all."
    )
    events_per_batch: int = Field(default=DEFAULT_EVENTS_PER_BATCH, ge=1)


def snapshot_time(context: dg.OpExecutionContext, configured: str) -> datetime:
    if configured:
        try:
            moment = datetime.fromisoformat(configured)
        except ValueError:
            raise dg.Failure(
                f"as_of is not an ISO-8601 time: {configured!r}", allow_retries=False
            ) from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    run = context.run
    record = context.instance.get_run_record_by_id(run.root_run_id or run.run_id)
    if record is None:
        raise dg.Failure(f"run {run.root_run_id or run.run_id} not found: set as_of")
    return record.create_timestamp


@dg.op(out=dg.DynamicOut(SegmentScan))
def plan_table_snapshot(
    context: dg.OpExecutionContext, config: TableSnapshotConfig, table: DynamoDBTableResource
):
    """Reads the table's key schema and fixes the snapshot time; one output per segment."""
    as_of = snapshot_time(context, config.as_of)
    client = table.client()
    names = tuple(key_names(client, table.table_name))
    context.log.info(
        "snapshot of %s (key %s) as of %s in %d segments",
        table.table_name,
        names,
        format_instant(as_of),
        config.segments,
    )
    for segment in range(config.segments):
        yield dg.DynamicOutput(
            SegmentScan(
                table.table_name,
                client.meta.region_name,
                names,
                int(as_of.timestamp() * 1000),
                segment,
                config.segments,
                config.page_size,
                config.items_per_batch,
            ),
            mapping_key=f"segment_{segment}",
            metadata={"table": table.table_name, "as_of": format_instant(as_of)},
        )


@dg.op
def snapshot_segment(
    context: dg.OpExecutionContext,
    scan: SegmentScan,
    archive: ArchiveResource,
    table: DynamoDBTableResource,
) -> dict:
    """Scans one segment page by page and lands its items as snapshot changes."""
    report = land_segment(archive.archive(), table.client(), scan, archive.window(), context.log)
    context.add_output_metadata(
        {
            **report.counts,
            "throttled": report.throttled,
            "partitions": sum(map(len, report.touched.values())),
        }
    )
    return {t: sorted(days) for t, days in report.touched.items()}


@dg.op
def snapshot_partitions(context: dg.OpExecutionContext, touched: list[dict]) -> dict:
    """The partitions the snapshot landed changes for (archived by the next archive runs)."""
    days: dict[str, set[str]] = {}
    for part in touched:
        for record_type, part_days in part.items():
            days.setdefault(record_type, set()).update(part_days)
    counts = {t: len(d) for t, d in sorted(days.items())}
    context.log.info("snapshot touched %s", counts)
    context.add_output_metadata({"partitions": dg.MetadataValue.json(counts)})
    return {t: sorted(d) for t, d in days.items()}


@dg.op
def replay_error_documents(
    context: dg.OpExecutionContext, config: ReplayConfig, archive: ArchiveResource
) -> dict:
    """Re-decodes the error documents; lands what passes, keeps what still fails."""
    report = replay_errors(
        archive.archive(),
        archive.window(),
        events_per_batch=config.events_per_batch,
        max_documents=config.max_documents or None,
        dry_run=config.dry_run,
        log=context.log,
    )
    context.log.info(
        "%d documents, %d events: %d now archivable, %d skipped, %d still failing",
        report.documents,
        report.events,
        report.archivable,
        report.skipped,
        report.still_failing,
    )
    context.add_output_metadata(
        {
            "dry_run": config.dry_run,
            "documents": report.documents,
            "events": report.events,
            "archivable": report.archivable,
            "skipped": report.skipped,
            "still_failing": report.still_failing,
            "batches": dg.MetadataValue.json(report.batches),
            "documents_rewritten": len(report.written),
            "documents_deleted": len(report.deleted),
        }
    )
    return report.touched()


def operation_jobs(retry_policy: dg.RetryPolicy | None = None) -> list[dg.JobDefinition]:
    """`retry_policy`: the steps' policy for transient AWS errors (None: no step retries)."""

    @dg.job(
        name=BOOTSTRAP_JOB,
        tags={EXCLUSIVE_TAG: BOOTSTRAP_JOB},
        op_retry_policy=retry_policy,
        description=(
            "Archives every item of the DynamoDB table as a snapshot change as of `as_of` "
            "(parallel Scan segments), so that a new deployment starts from the table's state; "
            "the archive runs then archive what it landed."
        ),
    )
    def bootstrap_from_table():
        snapshot_partitions(plan_table_snapshot().map(snapshot_segment).collect())

    @dg.job(
        name=REPLAY_JOB,
        tags={EXCLUSIVE_TAG: REPLAY_JOB},
        op_retry_policy=retry_policy,
        executor_def=dg.in_process_executor,
        description=(
            "Re-processes the documents under errors/ with the current rules: lands what now "
            "passes, keeps what still fails; the archive runs then archive it."
        ),
    )
    def replay_errors_job():
        replay_error_documents()

    return [bootstrap_from_table, replay_errors_job]
