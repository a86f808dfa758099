"""The code location `demand_assets.definitions:defs`: wiring only, resources from the
environment (SPEC section 7)."""

from __future__ import annotations

import dagster as dg
from dagster_aws.s3 import S3Resource

from demand_assets.config import Settings
from demand_assets.defs.assets import record_assets
from demand_assets.defs.catalog import catalog_assets
from demand_assets.defs.checks import all_record_checks
from demand_assets.defs.operations import DynamoDBTableResource, operation_jobs
from demand_assets.defs.partitions import daily_partitions
from demand_assets.defs.rebuilds import check_keys_by_type, compact_job, rebuild_after_landing
from demand_assets.defs.resources import resources_from_settings
from demand_assets.defs.retries import AWS_RETRY_POLICY
from demand_assets.defs.schedules import compaction_schedule
from demand_assets.defs.sensor import archive_jobs, stream_sensor


def build_definitions(
    settings: Settings | None = None,
    s3: S3Resource | None = None,
    retry_policy: dg.RetryPolicy | None = AWS_RETRY_POLICY,
):
    """`s3` replaces the S3 resource everywhere (tests inject faulty clients this way);
    `retry_policy` is the steps' policy for transient AWS errors (None: no step retries)."""
    settings = settings or Settings.from_env()
    partitions = daily_partitions(settings)
    jobs = archive_jobs()
    checks = all_record_checks(partitions, retry_policy)
    check_keys = check_keys_by_type(checks)
    compact = compact_job()
    operations = operation_jobs(partitions, retry_policy)
    return dg.Definitions(
        assets=record_assets(partitions, retry_policy) + catalog_assets(partitions, retry_policy),
        asset_checks=checks,
        jobs=[*jobs, compact, *operations],
        schedules=[compaction_schedule(compact, partitions, check_keys)],
        sensors=[
            stream_sensor(jobs, partitions),
            rebuild_after_landing(operations, compact, check_keys),
        ],
        resources={
            **resources_from_settings(settings, s3),
            "table": DynamoDBTableResource(table_name=settings.table_name),
        },
    )


defs = build_definitions()
