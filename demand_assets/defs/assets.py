"""The four daily-partitioned record assets, `demand`, `notification`, `event` and `sale`.

A run of a record asset rebuilds its partitions: each into one file per format holding every
batch landed for it (backfills from the UI, the daily compaction). The stream path does not
run these assets: `archive_batches` (defs/archive_job.py) archives landed batches into them
and reports a materialization per partition it wrote.
"""

import dagster as dg

from demand_assets.defs.resources import ArchiveResource
from demand_assets.records import RECORD_TYPES
from demand_assets.records.schemas import avro_schema
from demand_assets.storage.archiving import Work

ARCHIVE_GROUP = "archive"
OWNERS = ["team:data-engineering"]
MAX_DAYS_PER_RUN = 31


def record_asset(
    record_type: str,
    partitions: dg.DailyPartitionsDefinition,
    retry_policy: dg.RetryPolicy | None = None,
) -> dg.AssetsDefinition:
    schema = avro_schema(record_type)

    description = (
        f"{schema['doc']} Every change to a `{record_type}` item, archived as Avro and "
        f"Parquet under `avro/{record_type}/` and `parquet/{record_type}/`, partitioned by "
        "the record's date. Materializing a partition rebuilds it into one file per format."
    )

    # One asset, declared as a multi-asset: Dagster 1.13 takes a backfill policy on
    # `@multi_asset` as a stable parameter, while `@asset`'s is in beta.
    @dg.multi_asset(
        name=record_type,
        description=description,
        outs={
            "result": dg.AssetOut(
                key=record_type,
                description=description,
                io_manager_key="archive_io_manager",
                kinds={"s3", "avro", "parquet"},
                group_name=ARCHIVE_GROUP,
                owners=OWNERS,
                metadata={"avro_schema": dg.MetadataValue.json(schema)},
            )
        },
        partitions_def=partitions,
        pool=f"rebuild_{record_type}",
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_DAYS_PER_RUN),
        retry_policy=retry_policy,
    )
    def rebuild(context: dg.AssetExecutionContext, archive: ArchiveResource) -> Work:
        days = tuple(context.partition_keys)
        context.log.info("%s: rebuilding %d partitions", record_type, len(days))
        return Work(record_type, archive.window(), rebuild_days=days)

    return rebuild


def record_assets(
    partitions: dg.DailyPartitionsDefinition, retry_policy: dg.RetryPolicy | None = None
) -> list[dg.AssetsDefinition]:
    return [record_asset(record_type, partitions, retry_policy) for record_type in RECORD_TYPES]
