"""The four daily-partitioned record assets, `demand`, `notification`, `event` and `sale`.

One factory makes all four. A run with a `batch` in its config archives that landed batch
(sensor-launched runs); a run without one rebuilds each of its partitions from every landed
batch into one file per format (backfills from the UI, the daily compaction).
"""

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from itertools import islice

import dagster as dg

from demand_assets.defs.io_managers import PartitionOutput
from demand_assets.defs.partitions import partition_window
from demand_assets.defs.resources import ArchiveResource
from demand_assets.records import RECORD_TYPES, PartitionWindow
from demand_assets.records.schemas import avro_schema
from demand_assets.runtime import gc_paused
from demand_assets.storage.batches import (
    archivable_records,
    landed_batches,
    read_landed,
    read_summary,
    stream_partition,
)

ARCHIVE_GROUP = "archive"
# A rebuild streams its partition through the writers this many records at a time, so a
# partition of any size is rebuilt in bounded memory.
REBUILD_CHUNK_RECORDS = 16_384
OWNERS = ["team:data-engineering"]


class ArchiveConfig(dg.Config):
    """Which landed batch to archive; empty rebuilds the run's partitions from all of them."""

    batch: str = ""


def record_asset(
    record_type: str,
    partitions: dg.DailyPartitionsDefinition,
    retry_policy: dg.RetryPolicy | None = None,
) -> dg.AssetsDefinition:
    schema = avro_schema(record_type)

    @dg.asset(
        name=record_type,
        description=(
            f"{schema['doc']} Every change to a `{record_type}` item, archived as Avro and "
            f"Parquet under `avro/{record_type}/` and `parquet/{record_type}/`, partitioned by "
            "the record's date."
        ),
        partitions_def=partitions,
        io_manager_key="archive_io_manager",
        kinds={"s3", "avro", "parquet"},
        group_name=ARCHIVE_GROUP,
        owners=OWNERS,
        pool=f"archive_{record_type}",
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=31),
        retry_policy=retry_policy,
        metadata={"avro_schema": dg.MetadataValue.json(schema)},
    )
    def archive_partitions(
        context: dg.AssetExecutionContext, config: ArchiveConfig, archive: ArchiveResource
    ) -> dg.Output[list[PartitionOutput]]:
        window = partition_window(partitions)
        with gc_paused():
            if config.batch:
                outputs, metadata = _batch_outputs(
                    archive, record_type, context.partition_keys, config.batch, window
                )
            else:
                outputs, metadata = _rebuild_outputs(
                    archive, record_type, context.partition_keys, window
                )
        context.log.info(
            "%s %s: %d partitions to write",
            record_type,
            f"batch {config.batch}" if config.batch else "rebuild",
            len(outputs),
        )
        return dg.Output(
            outputs,
            metadata={
                "partition_dates": dg.MetadataValue.json([o.day for o in outputs][:31]),
                "mode": "batch" if config.batch else "rebuild",
                **metadata,
            },
        )

    return archive_partitions


def _batch_outputs(
    archive: ArchiveResource, record_type: str, days, batch: str, window: PartitionWindow
):
    bucket, layout = archive.bucket(), archive.layout
    summary = read_summary(bucket, layout, batch)
    if summary is None:
        raise dg.Failure(f"batch {batch} has not landed: no {layout.batch_summary_key(batch)}")
    touched = set(summary.partitions().get(record_type, []))

    def output(day: str) -> PartitionOutput:
        landed = read_landed(bucket, layout, record_type, day, batch)
        records = list(archivable_records(landed, record_type, day, window))
        return PartitionOutput(record_type, day, [batch], False, lambda: [records])

    with ThreadPoolExecutor(max_workers=8) as pool:
        outputs = list(pool.map(output, [day for day in days if day in touched]))
    metadata = {
        "batch": batch,
        "errors": summary.rejected.get(record_type, 0),
        "stream_lag_seconds": summary.millis_behind_latest / 1000,
    }
    if summary.last_arrival:
        arrived = datetime.fromisoformat(summary.last_arrival)
        metadata["seconds_since_arrival"] = round((datetime.now(UTC) - arrived).total_seconds(), 3)
    return outputs, metadata


def _rebuild_outputs(archive: ArchiveResource, record_type: str, days, window: PartitionWindow):
    """Each partition's records are read when the IO manager writes them, chunk by chunk."""
    bucket, layout = archive.bucket(), archive.layout
    outputs, batches_total = [], 0
    for day in days:
        batches = landed_batches(bucket, layout, record_type, day)
        if not batches:
            continue

        def chunks(day=day, batches=batches) -> Iterator[list[dict]]:
            changes = stream_partition(bucket, layout, record_type, day, batches)
            records = archivable_records(changes, record_type, day, window)
            return chunked(records, REBUILD_CHUNK_RECORDS)

        batches_total += len(batches)
        outputs.append(PartitionOutput(record_type, day, batches, True, chunks))
    return outputs, {"batches": batches_total}


def chunked(items: Iterable[dict], size: int) -> Iterator[list[dict]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def record_assets(
    partitions: dg.DailyPartitionsDefinition, retry_policy: dg.RetryPolicy | None = None
) -> list[dg.AssetsDefinition]:
    return [record_asset(record_type, partitions, retry_policy) for record_type in RECORD_TYPES]
