"""Glue: the database and the eight `{type}_{format}` tables, and partition registration.

`glue_tables` creates or updates the tables from the Avro schemas (backward-compatible
evolution only). Each `{type}_glue_partitions` asset registers the partitions of its run that
hold data, in both tables (rebuild and compaction runs); the stream path's
`register_{type}_partitions` ops register every day with data that Glue does not know yet, so a
partition is queryable within a run of its first data (REQ-007).
"""

from dataclasses import dataclass, field

import dagster as dg

from demand_assets.catalog.glue import GlueCatalog
from demand_assets.catalog.glue_schema import table_input, table_name
from demand_assets.defs.assets import OWNERS
from demand_assets.defs.resources import ArchiveResource, GlueResource
from demand_assets.formats import FORMATS
from demand_assets.records import RECORD_TYPES
from demand_assets.storage.archive import Archive
from demand_assets.storage.landing import landed_days

CATALOG_GROUP = "catalog"


def glue_partitions_key(record_type: str) -> dg.AssetKey:
    return dg.AssetKey(f"{record_type}_glue_partitions")


@dataclass
class Registration:
    created: dict[str, list[str]] = field(default_factory=dict)  # format -> days created
    existing: dict[str, int] = field(default_factory=dict)  # format -> days already there
    failures: list[str] = field(default_factory=list)

    @property
    def days_created(self) -> list[str]:
        return sorted(set().union(*self.created.values()))

    def metadata(self) -> dict:
        metadata: dict = {}
        for fmt in sorted(self.created):
            metadata[f"{fmt}_created"] = len(self.created[fmt])
            metadata[f"{fmt}_existing"] = self.existing[fmt]
        return metadata


def register_days(
    catalog: GlueCatalog, archive: Archive, record_type: str, days: list[str] | None
) -> Registration:
    """Register the type's days in both tables: `days` (the ones holding data), or, with
    None, every day holding data that a table lacks. Tables are created or evolved first
    (cheap when nothing changed), so a new deployment needs no extra step."""
    with_data = landed_days(archive, record_type)
    catalog.ensure_database()
    registration = Registration()
    for fmt in FORMATS:
        name = table_name(record_type, fmt)
        location = archive.table_location(fmt, record_type)
        catalog.ensure_table(table_input(record_type, fmt, location))
        wanted = sorted(
            with_data - catalog.partitions(name) if days is None else with_data & set(days)
        )
        report = catalog.register_partitions(name, wanted, location)
        registration.created[fmt] = report.created
        registration.existing[fmt] = len(report.existing)
        registration.failures += [f"{fmt} {f.day}: {f.code} {f.message}" for f in report.failed]
    return registration


def raise_failures(record_type: str, registration: Registration) -> None:
    if registration.failures:
        raise dg.Failure(
            f"{len(registration.failures)} {record_type} partitions were not registered",
            metadata={"failures": registration.failures[:20]},
        )


def glue_tables_asset(retry_policy: dg.RetryPolicy | None = None) -> dg.AssetsDefinition:
    @dg.asset(
        name="glue_tables",
        description=(
            "The Glue database and the tables `{type}_{avro|parquet}`, from the Avro schemas."
        ),
        group_name=CATALOG_GROUP,
        kinds={"glue"},
        owners=OWNERS,
        retry_policy=retry_policy,
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
                location = archive.archive().table_location(fmt, record_type)
                outcomes[name] = catalog.ensure_table(table_input(record_type, fmt, location))
                context.log.info("table %s.%s: %s", glue.database, name, outcomes[name])
        return dg.MaterializeResult(
            metadata={"database": glue.database, "database_state": database, "tables": outcomes}
        )

    return glue_tables


def partition_registration(
    record_type: str,
    partitions: dg.DailyPartitionsDefinition,
    retry_policy: dg.RetryPolicy | None = None,
):
    key = glue_partitions_key(record_type)
    description = (
        f"Registers the {record_type} partitions that hold data in the Glue tables "
        f"{record_type}_avro and {record_type}_parquet."
    )

    # A multi-asset of one: `@multi_asset`'s backfill policy is stable in Dagster 1.13,
    # `@asset`'s in beta.
    @dg.multi_asset(
        name=key.to_python_identifier(),
        description=description,
        outs={
            "result": dg.AssetOut(
                key=key,
                description=description,
                group_name=CATALOG_GROUP,
                kinds={"glue"},
                owners=OWNERS,
            )
        },
        partitions_def=partitions,
        deps=[dg.AssetKey(record_type), dg.AssetKey("glue_tables")],
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=31),
        retry_policy=retry_policy,
    )
    def register(
        context: dg.AssetExecutionContext, archive: ArchiveResource, glue: GlueResource
    ) -> dg.MaterializeResult:
        registration = register_days(
            glue.catalog(), archive.archive(), record_type, list(context.partition_keys)
        )
        raise_failures(record_type, registration)
        return dg.MaterializeResult(metadata=registration.metadata())

    return register


def catalog_assets(
    partitions: dg.DailyPartitionsDefinition, retry_policy: dg.RetryPolicy | None = None
) -> list:
    return [glue_tables_asset(retry_policy)] + [
        partition_registration(t, partitions, retry_policy) for t in RECORD_TYPES
    ]
