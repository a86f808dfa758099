"""The code location `demand_assets.definitions:defs`: wiring only, resources from the
environment (SPEC section 7, demand_assets/environment.py)."""

from __future__ import annotations

import dagster as dg

from demand_assets.config import Settings
from demand_assets.defs.alerts import alert_sensor, run_failure_sensor
from demand_assets.defs.archive_job import archive_job
from demand_assets.defs.assets import record_assets
from demand_assets.defs.catalog import catalog_assets
from demand_assets.defs.checks import all_record_checks
from demand_assets.defs.operations import operation_jobs
from demand_assets.defs.rebuilds import check_keys_by_type, compact_job
from demand_assets.defs.resources import S3Resource
from demand_assets.defs.retries import AWS_RETRY_POLICY
from demand_assets.defs.schedules import compaction_schedule
from demand_assets.defs.sensor import stream_sensor
from demand_assets.environment import (
    alert_thresholds,
    buffering_hints,
    partitions_from_settings,
    resources_from_settings,
)


def build_definitions(
    settings: Settings | None = None,
    s3: S3Resource | None = None,
    retry_policy: dg.RetryPolicy | None = AWS_RETRY_POLICY,
) -> dg.Definitions:
    """`s3` replaces the S3 resource everywhere (tests inject faulty clients this way);
    `retry_policy` is the steps' policy for transient AWS errors (None: no step retries)."""
    settings = settings or Settings.from_env()
    partitions = partitions_from_settings(settings)
    archive = archive_job(
        retry_policy, settings.max_batches_per_run, settings.archive_max_runtime_seconds
    )
    checks = all_record_checks(partitions, retry_policy)
    compact = compact_job()
    return dg.Definitions(
        assets=record_assets(partitions, retry_policy) + catalog_assets(partitions, retry_policy),
        asset_checks=checks,
        jobs=[archive, compact, *operation_jobs(retry_policy)],
        schedules=[compaction_schedule(compact, check_keys_by_type(checks))],
        sensors=[
            stream_sensor(archive, buffering_hints(settings)),
            alert_sensor([k for c in checks for k in c.check_keys], alert_thresholds(settings)),
            run_failure_sensor(),
        ],
        resources=resources_from_settings(settings, s3),
    )


defs = build_definitions()
