"""Glue: the database and the eight `{type}_{format}` tables, and partition registration.

`glue_tables` creates or updates the tables from the Avro schemas (backward-compatible
evolution only). Each `{type}_glue_partitions` asset registers the partitions of its run that
hold data, in both tables; sensor runs include it, so a partition is queryable as soon as its
first batch is archived (REQ-007).
"""

import dagster as dg

from demand_assets.catalog.glue import GlueCatalog
from demand_assets.catalog.glue_schema import table_input, table_name
from demand_assets.defs.resources import ArchiveResource
from demand_assets.defs.retries import AWS_RETRY_POLICY, aws_client
from demand_assets.records import RECORD_TYPES
from demand_assets.storage.batches import landed_days
from demand_assets.storage.layout import FORMATS

CATALOG_GROUP = "catalog"
OWNERS = ["team:data-engineering"]


class GlueResource(dg.ConfigurableResource):
    """The Glue database (DEMAND_GLUE_DATABASE)."""

    database: str
    region_name: str | None = None

    def catalog(self) -> GlueCatalog:
        return GlueCatalog(aws_client("glue", self.region_name), self.database)


def table_location(archive: ArchiveResource, fmt: str, record_type: str) -> str:
    return f"s3://{archive.bucket_name}/{archive.layout.table_prefix(fmt, record_type)}"


@dg.asset(
    description="The Glue database and the tables `{type}_{avro|parquet}`, from the Avro schemas.",
    group_name=CATALOG_GROUP,
    kinds={"glue"},
    owners=OWNERS,
    retry_policy=AWS_RETRY_POLICY,
)
def glue_tables(
    context: dg.AssetExecutionContext, archive: ArchiveResource, glue: GlueResource
) -> dg.MaterializeResult:
    catalog = glue.catalog()
    database = catalog.ensure_database()
    outcomes = {}
    for record_type in RECORD_TYPES:
        for fmt in FORMATS:
            name = table_name(record_type, fmt)
            outcomes[name] = catalog.ensure_table(
                table_input(record_type, fmt, table_location(archive, fmt, record_type))
            )
            context.log.info("table %s.%s: %s", glue.database, name, outcomes[name])
    return dg.MaterializeResult(
        metadata={"database": glue.database, "database_state": database, "tables": outcomes}
    )


def partition_registration(
    record_type: str,
    partitions: dg.DailyPartitionsDefinition,
    retry_policy: dg.RetryPolicy | None = None,
):
    @dg.asset(
        name=f"{record_type}_glue_partitions",
        description=f"Registers the {record_type} partitions that hold data in the Glue tables "
        f"{record_type}_avro and {record_type}_parquet.",
        partitions_def=partitions,
        deps=[dg.AssetKey(record_type), glue_tables],
        group_name=CATALOG_GROUP,
        kinds={"glue"},
        owners=OWNERS,
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=31),
        retry_policy=retry_policy,
    )
    def register(
        context: dg.AssetExecutionContext, archive: ArchiveResource, glue: GlueResource
    ) -> dg.MaterializeResult:
        with_data = landed_days(archive.bucket(), archive.layout, record_type)
        days = sorted(set(context.partition_keys) & with_data)
        catalog = glue.catalog()
        catalog.ensure_database()
        metadata: dict = {"partitions": len(days)}
        failures = []
        for fmt in FORMATS:
            location = table_location(archive, fmt, record_type)
            # Idempotent and cheap when nothing changed; a new deployment needs no extra step.
            catalog.ensure_table(table_input(record_type, fmt, location))
            report = catalog.register_partitions(table_name(record_type, fmt), days, location)
            metadata[f"{fmt}_created"] = len(report.created)
            metadata[f"{fmt}_existing"] = len(report.existing)
            failures += [f"{fmt} {f.day}: {f.code} {f.message}" for f in report.failed]
        if failures:
            raise dg.Failure(
                f"{len(failures)} {record_type} partitions were not registered",
                metadata={"failures": failures[:20]},
            )
        return dg.MaterializeResult(metadata=metadata)

    return register


def catalog_assets(
    partitions: dg.DailyPartitionsDefinition, retry_policy: dg.RetryPolicy | None = None
) -> list:
    return [glue_tables] + [
        partition_registration(t, partitions, retry_policy) for t in RECORD_TYPES
    ]
