"""The IO manager of the record assets and the archive ops: what they return is written to S3.

A record asset (a rebuild) or an archive op (the stream path) returns `Work`: which record
type, and which batches to archive or which days to rebuild. `ArchiveIOManager` has
`storage.archiving` write it, and reports each partition written with that day's own figures:
rows, files and bytes per format. For an op (no asset of its own), that is one
`AssetMaterialization` per (record asset, day written), so the partition view shows exactly
the days that got data. For an asset run over a range, Dagster records every day of the range
itself; the IO manager puts each written day's own figures on that day's record.
"""

from datetime import UTC, datetime

import dagster as dg

from demand_assets.defs.resources import ArchiveResource
from demand_assets.storage.archiving import RunReport, Work
from demand_assets.storage.partition_write import PartitionResult

MAX_KEYS_SHOWN = 5


def partition_metadata(result: PartitionResult) -> dict:
    metadata: dict = {
        "dagster/row_count": result.row_count,
        "changes_added": result.added,
    }
    for fmt in sorted(result.rows):
        metadata[f"{fmt}_rows"] = result.rows[fmt]
        metadata[f"{fmt}_files"] = len(result.files[fmt])
        metadata[f"{fmt}_bytes"] = result.bytes[fmt]
        metadata[f"{fmt}_written"] = dg.MetadataValue.json(
            result.written.get(fmt, [])[:MAX_KEYS_SHOWN]
        )
    return metadata


def run_metadata(work: Work, report: RunReport) -> dict:
    metadata: dict = {
        "mode": "batches" if work.pending is not None else "rebuild",
        "partitions_written": len(report.partitions),
        "changes_added": report.added,
        "failed_partitions": dg.MetadataValue.json(sorted(report.failures)[:20]),
    }
    if work.pending is not None:
        metadata["batches"] = len(report.batches)
        if work.pending.arrivals:
            newest = max(work.pending.arrivals.values())
            age = datetime.now(UTC) - datetime.fromisoformat(newest)
            metadata["seconds_since_newest_arrival"] = round(age.total_seconds(), 3)
    return metadata


class ArchiveIOManager(dg.ConfigurableIOManager):
    """Writes `Work` to the archive (Avro and Parquet, every partition it touches)."""

    archive: dg.ResourceDependency[ArchiveResource]

    def handle_output(self, context: dg.OutputContext, obj: Work) -> None:
        report = obj.run(self.archive.archive(), context.log)
        for result in report.partitions:
            if not (result.files or result.removed):
                continue  # a day of a rebuilt range that holds no data
            metadata = partition_metadata(result)
            if context.has_asset_key:
                context.step_context.add_asset_metadata(metadata, partition_key=result.day)
            else:
                context.log_event(
                    dg.AssetMaterialization(
                        asset_key=obj.record_type, partition=result.day, metadata=metadata
                    )
                )
        context.add_output_metadata(run_metadata(obj, report))
        if report.failures:
            day, error = next(iter(sorted(report.failures.items())))
            raise dg.Failure(
                f"{len(report.failures)} {obj.record_type} partitions were not written "
                f"(first: {day}: {error}); their batches stay pending for the next run",
                metadata={
                    "failures": dg.MetadataValue.json(dict(list(report.failures.items())[:20]))
                },
            )

    def load_input(self, context: dg.InputContext):
        raise NotImplementedError(
            "archived partitions are files in S3 for Athena; no step loads them as an input"
        )
