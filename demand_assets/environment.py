"""Settings -> resources: which values the resources get in an environment (SPEC section 7).

The same code runs on a laptop against the local emulator and in production against AWS; the
only difference is the environment the settings are read from.
"""

from __future__ import annotations

import dagster as dg

from demand_assets.alerting import Thresholds
from demand_assets.config import Settings
from demand_assets.defs.buffering import BufferingHints
from demand_assets.defs.io_managers import ArchiveIOManager
from demand_assets.defs.partitions import daily_partitions
from demand_assets.defs.resources import (
    AlertPublisher,
    ArchiveResource,
    DynamoDBTableResource,
    GlueResource,
    KinesisStreamResource,
    LogAlertPublisher,
    QueryEngineResource,
    S3Resource,
    SNSAlertPublisher,
)


def resources_from_settings(settings: Settings, s3: S3Resource | None = None) -> dict:
    """`s3` replaces the S3 resource everywhere (tests inject faulty clients this way)."""
    s3 = s3 or S3Resource()
    archive = ArchiveResource(
        s3=s3,
        bucket_name=settings.bucket,
        prefix=settings.prefix,
        first_partition=settings.first_partition.isoformat(),
        future_days=settings.future_days,
    )
    return {
        "s3": s3,
        "archive": archive,
        "stream": KinesisStreamResource(
            stream_name=settings.stream_name,
            start=settings.stream_start,
            dedup_window_minutes=settings.dedup_window_minutes,
        ),
        "archive_io_manager": ArchiveIOManager(archive=archive),
        "glue": GlueResource(database=settings.glue_database),
        "query_engine": QueryEngineResource(
            engine=settings.query_engine,
            database=settings.glue_database,
            workgroup=settings.athena_workgroup,
            output=settings.athena_output,
        ),
        "table": DynamoDBTableResource(table_name=settings.table_name),
        "alert_publisher": alert_publisher(settings),
    }


def alert_publisher(settings: Settings) -> AlertPublisher:
    """SNS where a topic is set (AWS), log lines where not (the local stack)."""
    if settings.alert_topic_arn:
        return SNSAlertPublisher(topic_arn=settings.alert_topic_arn, ui_url=settings.ui_url)
    return LogAlertPublisher(ui_url=settings.ui_url)


def alert_thresholds(settings: Settings) -> Thresholds:
    return Thresholds(
        lag_seconds=settings.alert_lag_seconds,
        error_rate=settings.alert_error_rate,
        archive_minutes=settings.alert_archive_minutes,
    )


def partitions_from_settings(settings: Settings) -> dg.DailyPartitionsDefinition:
    return daily_partitions(settings.first_partition.isoformat(), settings.future_days)


def buffering_hints(settings: Settings) -> BufferingHints:
    return BufferingHints(
        interval_seconds=settings.buffer_seconds, max_changes=settings.buffer_changes
    )
