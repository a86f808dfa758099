"""Jobs an operator launches from the UI: bootstrap the archive from the table, replay errors.

Both land batches the way a sensor tick does (`land_batch`: landing objects, error documents,
a summary) under deterministic names, so a retried or re-executed run rewrites the same keys.
Neither writes data files itself: when one succeeds, `rebuild_after_landing` requests rebuilds
(`compact_partitions`) of the partitions it touched, read from its `rebuild_ranges` output
metadata, and the rebuilds archive each eventID once.

`bootstrap_from_table` scans the DynamoDB table (DEMAND_TABLE_NAME) with parallel Scan
segments, one step per segment, and archives every item of the four types as a snapshot
change as of `as_of` (`records/snapshot.py`). `replay_errors` re-decodes the documents under
`errors/` with the current rules (`storage/replay.py`).
"""

import hashlib
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg
import orjson
from pydantic import Field

from demand_assets.defs.partitions import partition_window
from demand_assets.defs.rebuilds import REBUILD_RANGES, day_ranges
from demand_assets.defs.resources import ArchiveResource
from demand_assets.defs.retries import aws_client
from demand_assets.records.snapshot import snapshot_change, stream_image
from demand_assets.records.timestamps import format_instant
from demand_assets.storage.batches import ChangeRead, land_batch
from demand_assets.storage.replay import DEFAULT_EVENTS_PER_BATCH, replay_errors
from demand_assets.stream.table_scan import TableScanner, key_names

BOOTSTRAP_JOB = "bootstrap_from_table"
REPLAY_JOB = "replay_errors"
# One run at a time of each of these jobs (dagster.yaml).
EXCLUSIVE_TAG = "demand/exclusive"


class DynamoDBTableResource(dg.ConfigurableResource):
    """The source table (DEMAND_TABLE_NAME)."""

    table_name: str
    region_name: str | None = None

    def client(self):
        return aws_client("dynamodb", self.region_name)


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


@dataclass(frozen=True)
class SegmentScan:
    """What one segment step scans, and as of when."""

    table: str
    region: str | None
    key_names: tuple[str, ...]
    as_of_ms: int
    segment: int
    total_segments: int
    page_size: int
    items_per_batch: int

    @property
    def shard(self) -> str:
        """The provenance `shardId` of the segment's rows."""
        return f"scan:{self.table}:{self.segment}/{self.total_segments}"

    def batch_name(self, start_key: dict | None) -> str:
        """From the table, the snapshot time, the segment and the key the batch's first page
        was read after: a repeated scan of an unchanged table lands the same names."""
        position = orjson.dumps(
            {
                "table": self.table,
                "asOf": self.as_of_ms,
                "segment": [self.segment, self.total_segments],
                "after": None if start_key is None else stream_image(start_key),
            },
            option=orjson.OPT_SORT_KEYS,
        )
        stamp = datetime.fromtimestamp(self.as_of_ms / 1000, UTC).strftime("%Y%m%dT%H%M%SZ")
        return f"{stamp}-snapshot-{hashlib.sha256(position).hexdigest()[:20]}"


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


def _merge(touched: list[dict[str, list[str]]]) -> dict[str, list[list[str]]]:
    days: dict[str, set[str]] = {}
    for part in touched:
        for record_type, part_days in part.items():
            days.setdefault(record_type, set()).update(part_days)
    return {t: [list(r) for r in day_ranges(d)] for t, d in sorted(days.items())}


def operation_jobs(
    partitions: dg.DailyPartitionsDefinition, retry_policy: dg.RetryPolicy | None = None
) -> list[dg.JobDefinition]:
    @dg.op(out=dg.DynamicOut(SegmentScan), retry_policy=retry_policy)
    def plan_table_snapshot(
        context: dg.OpExecutionContext, config: TableSnapshotConfig, table: DynamoDBTableResource
    ):
        """Reads the table's key schema and fixes the snapshot time; one output per segment."""
        as_of = snapshot_time(context, config.as_of)
        client = table.client()
        names = tuple(key_names(client, table.table_name))
        as_of_ms = int(as_of.timestamp() * 1000)
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
                    as_of_ms,
                    segment,
                    config.segments,
                    config.page_size,
                    config.items_per_batch,
                ),
                mapping_key=f"segment_{segment}",
                metadata={"table": table.table_name, "as_of": format_instant(as_of)},
            )

    @dg.op(retry_policy=retry_policy)
    def snapshot_segment(
        context: dg.OpExecutionContext,
        scan: SegmentScan,
        archive: ArchiveResource,
        table: DynamoDBTableResource,
    ) -> dict:
        """Scans one segment page by page and lands its items as snapshot changes."""
        window = partition_window(partitions)
        bucket, layout = archive.bucket(), archive.layout
        scanner = TableScanner(
            table.client(), scan.table, page_size=scan.page_size, log=context.log
        )
        arrival = format_instant(datetime.fromtimestamp(scan.as_of_ms / 1000, UTC))
        touched: dict[str, set[str]] = {}
        counts: Counter = Counter()
        pending: list[ChangeRead] = []
        first_page_start: dict | None = None

        def land() -> None:
            batch = scan.batch_name(first_page_start)
            summary = land_batch(bucket, layout, f"table:{scan.table}", batch, pending, window)
            for record_type, days in summary.partitions().items():
                touched.setdefault(record_type, set()).update(days)
            counts["batches"] += 1
            counts["archivable"] += sum(summary.archivable.values())
            counts["rejected"] += sum(summary.rejected.values())
            counts["skipped"] += sum(summary.skipped.values())
            context.log.info("batch %s: %d items", batch, len(pending))
            pending.clear()

        for page in scanner.pages(scan.segment, scan.total_segments):
            if not pending:
                first_page_start = page.start_key
            counts["pages"] += 1
            counts["capacity_units"] += page.capacity_units
            for index, item in enumerate(page.items):
                data = snapshot_change(
                    item,
                    scan.key_names,
                    table=scan.table,
                    as_of_ms=scan.as_of_ms,
                    region=scan.region,
                )
                pending.append(
                    ChangeRead(scan.shard, f"{page.number:07d}{index:06d}", arrival, data)
                )
            counts["items"] += len(page.items)
            if len(pending) >= scan.items_per_batch:
                land()
        if pending:
            land()
        context.add_output_metadata(
            {
                **counts,
                "throttled": scanner.throttled,
                "partitions": sum(map(len, touched.values())),
            }
        )
        return {t: sorted(days) for t, days in touched.items()}

    @dg.op
    def snapshot_rebuild_ranges(context: dg.OpExecutionContext, touched: list[dict]):
        """The partitions the snapshot touched, for rebuild_after_landing."""
        ranges = _merge(touched)
        context.log.info("snapshot touched %s", {t: len(r) for t, r in ranges.items()})
        return dg.Output(ranges, metadata={REBUILD_RANGES: dg.MetadataValue.json(ranges)})

    @dg.job(
        name=BOOTSTRAP_JOB,
        tags={EXCLUSIVE_TAG: BOOTSTRAP_JOB},
        description=(
            "Archives every item of the DynamoDB table as a snapshot change as of `as_of` "
            "(parallel Scan segments), so that a new deployment starts from the table's state; "
            "rebuild_after_landing then rebuilds the partitions it touched."
        ),
    )
    def bootstrap_from_table():
        touched = plan_table_snapshot().map(snapshot_segment)
        snapshot_rebuild_ranges(touched.collect())

    @dg.op(retry_policy=retry_policy)
    def replay_error_documents(
        context: dg.OpExecutionContext, config: ReplayConfig, archive: ArchiveResource
    ):
        """Re-decodes the error documents; lands what passes, keeps what still fails."""
        report = replay_errors(
            archive.bucket(),
            archive.layout,
            partition_window(partitions),
            events_per_batch=config.events_per_batch,
            max_documents=config.max_documents or None,
            dry_run=config.dry_run,
            log=context.log,
        )
        ranges = _merge([report.touched()])
        context.log.info(
            "%d documents, %d events: %d now archivable, %d skipped, %d still failing",
            report.documents,
            report.events,
            report.archivable,
            report.skipped,
            report.still_failing,
        )
        metadata = {
            "dry_run": config.dry_run,
            "documents": report.documents,
            "events": report.events,
            "archivable": report.archivable,
            "skipped": report.skipped,
            "still_failing": report.still_failing,
            "batches": dg.MetadataValue.json(report.batches),
            "documents_rewritten": len(report.written),
            "documents_deleted": len(report.deleted),
            REBUILD_RANGES: dg.MetadataValue.json(ranges),
        }
        return dg.Output(ranges, metadata=metadata)

    @dg.job(
        name=REPLAY_JOB,
        tags={EXCLUSIVE_TAG: REPLAY_JOB},
        description=(
            "Re-processes the documents under errors/ with the current rules: lands what now "
            "passes, keeps what still fails; rebuild_after_landing then archives it."
        ),
    )
    def replay_errors_job():
        replay_error_documents()

    return [bootstrap_from_table, replay_errors_job]
