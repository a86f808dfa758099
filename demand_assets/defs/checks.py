"""Asset checks on the four record assets, per partition, on Athena (AWS) or DuckDB (local)."""

import warnings

import dagster as dg

from demand_assets.checks.evaluate import (
    error_rate,
    freshness,
    landed_changes,
    sql_outcomes,
    summaries_of,
)
from demand_assets.checks.sql import per_format_checks
from demand_assets.defs.resources import ArchiveResource, QueryEngineResource
from demand_assets.formats import FORMATS
from demand_assets.records import RECORD_TYPES
from demand_assets.storage.archive import Archive
from demand_assets.storage.partition_files import PartitionFiles

SEVERITY = {"ERROR": dg.AssetCheckSeverity.ERROR, "WARN": dg.AssetCheckSeverity.WARN}


def _specs(record_type: str, partitions) -> list[dg.AssetCheckSpec]:
    described = {c.name: (c.description, c.blocking) for c in per_format_checks(record_type)}
    described["row_counts_agree"] = (
        "Avro rows = Parquet rows = distinct changes landed for the partition.",
        False,
    )
    described["error_rate_below_0_1_percent"] = (
        "Of the changes claiming this type that arrived on the partition's day, under 0.1% "
        "went to errors/.",
        False,
    )
    described["newest_batch_archived"] = (
        "While the stream has traffic, its newest batch of this type is archived within "
        "15 minutes.",
        False,
    )
    return [
        _partitioned_spec(name, record_type, description, blocking, partitions)
        for name, (description, blocking) in described.items()
    ]


def _partitioned_spec(name, record_type, description, blocking, partitions) -> dg.AssetCheckSpec:
    """A check evaluated per partition of the record asset. Dagster 1.13 has no stable API for
    partitioned checks (`partitions_def` on a spec is in preview); this is the one place the
    package uses a preview API, knowingly, so its warning alone is silenced, here."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message="Specifying a partitions_def on an AssetCheckSpec",
            category=dg.PreviewWarning,
        )
        return dg.AssetCheckSpec(
            name,
            asset=record_type,
            description=description,
            blocking=blocking,
            partitions_def=partitions,
        )


def record_checks(
    record_type: str,
    partitions: dg.DailyPartitionsDefinition,
    retry_policy: dg.RetryPolicy | None = None,
):
    @dg.multi_asset_check(
        name=f"{record_type}_quality",
        specs=_specs(record_type, partitions),
        retry_policy=retry_policy,
        description=f"Data-quality checks of the {record_type} archive, per partition.",
    )
    def quality(
        context: dg.AssetCheckExecutionContext,
        archive: ArchiveResource,
        query_engine: QueryEngineResource,
    ):
        store, window = archive.archive(), archive.window()
        engine = query_engine.build(store)
        blocking = {spec.name: spec.blocking for spec in _specs(record_type, partitions)}
        for day in context.partition_keys:
            landed = landed_changes(store, record_type, day, window)
            if not landed and not _has_data(store, record_type, day):
                continue  # a range run passes over days without changes
            outcomes = sql_outcomes(engine, query_engine.database, record_type, day, landed)
            summaries = summaries_of(store, day)
            outcomes += [
                error_rate(summaries, record_type, day),
                freshness(store, summaries, record_type),
            ]
            for outcome in outcomes:
                yield dg.AssetCheckEvaluation(
                    asset_key=dg.AssetKey(record_type),
                    check_name=outcome.name,
                    passed=outcome.passed,
                    severity=SEVERITY[outcome.severity],
                    metadata=outcome.metadata,
                    blocking=blocking[outcome.name],
                    partition=day,
                )
        for name in blocking:  # each check's (empty) output, which Dagster requires
            yield dg.Output(None, output_name=f"{record_type}_{name}")

    return quality


def _has_data(archive: Archive, record_type: str, day: str) -> bool:
    return any(PartitionFiles(archive, fmt, record_type, day).listing().live for fmt in FORMATS)


def all_record_checks(
    partitions: dg.DailyPartitionsDefinition, retry_policy: dg.RetryPolicy | None = None
) -> list:
    return [record_checks(record_type, partitions, retry_policy) for record_type in RECORD_TYPES]
