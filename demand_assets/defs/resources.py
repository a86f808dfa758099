"""Every Dagster resource of the project: the AWS services and the archive's place in S3.

Which values they get in an environment is `demand_assets.environment`'s business.
"""

import logging
from datetime import timedelta

import dagster as dg
from pydantic import PrivateAttr

from demand_assets import aws
from demand_assets.alerting import Alert
from demand_assets.catalog.glue import GlueCatalog
from demand_assets.checks.engines import AthenaEngine, DuckDBEngine, s3_filesystem
from demand_assets.config import DEFAULT_FUTURE_DAYS
from demand_assets.defs.partitions import daily_partitions, partition_window
from demand_assets.records import PartitionWindow
from demand_assets.records.partition_date import DEFAULT_FIRST_PARTITION
from demand_assets.storage.archive import Archive
from demand_assets.storage.layout import Layout
from demand_assets.storage.s3 import Bucket
from demand_assets.stream.kinesis import StreamReader


class S3Resource(dg.ConfigurableResource):
    """An S3 client with `max_attempts` standard retries (the endpoint from AWS_ENDPOINT_URL)."""

    max_attempts: int = aws.AWS_MAX_ATTEMPTS
    region_name: str | None = None

    def get_client(self):
        return aws.client("s3", self.region_name, self.max_attempts)


class ArchiveResource(dg.ConfigurableResource):
    """The bucket and prefix of the archive (DEMAND_BUCKET, DEMAND_PREFIX), and the partition
    dates a record may have (DEMAND_FIRST_PARTITION, DEMAND_FUTURE_DAYS), as the record assets'
    daily partitions define them."""

    s3: dg.ResourceDependency[S3Resource]
    bucket_name: str
    prefix: str
    first_partition: str = DEFAULT_FIRST_PARTITION.isoformat()
    future_days: int = DEFAULT_FUTURE_DAYS

    def window(self) -> PartitionWindow:
        """The dates a record may have right now: its partition must exist."""
        return partition_window(daily_partitions(self.first_partition, self.future_days))

    _archive: Archive | None = PrivateAttr(default=None)

    def archive(self) -> Archive:
        if self._archive is None:
            bucket = Bucket(self.s3.get_client(), self.bucket_name)
            self._archive = Archive(bucket, Layout(self.prefix.strip("/")))
        return self._archive


class KinesisStreamResource(dg.ConfigurableResource):
    """The change stream (DEMAND_STREAM_NAME, DEMAND_STREAM_START), a tick's bounds, and how
    long a landed change keeps its re-deliveries out (DEMAND_DEDUP_WINDOW_MINUTES)."""

    stream_name: str
    start: str = "TRIM_HORIZON"
    region_name: str | None = None
    max_records_per_tick: int = 100_000
    max_seconds_per_tick: float = 20.0
    dedup_window_minutes: float = 60.0

    @property
    def dedup_window(self) -> timedelta:
        return timedelta(minutes=self.dedup_window_minutes)

    def reader(self, log: logging.Logger | None = None) -> StreamReader:
        return StreamReader(
            aws.client("kinesis", self.region_name, aws.KINESIS_MAX_ATTEMPTS),
            self.stream_name,
            self.start,
            max_records=self.max_records_per_tick,
            max_seconds=self.max_seconds_per_tick,
            log=log,
        )


class GlueResource(dg.ConfigurableResource):
    """The Glue database (DEMAND_GLUE_DATABASE)."""

    database: str
    region_name: str | None = None

    def catalog(self) -> GlueCatalog:
        return GlueCatalog(aws.client("glue", self.region_name), self.database)


class QueryEngineResource(dg.ConfigurableResource):
    """DEMAND_QUERY_ENGINE (`athena` or `duckdb`), DEMAND_GLUE_DATABASE, DEMAND_ATHENA_*."""

    engine: str = "duckdb"
    database: str
    workgroup: str = "primary"
    output: str | None = None
    region_name: str | None = None

    def build(self, archive: Archive):
        if self.engine == "athena":
            return AthenaEngine(
                aws.client("athena", self.region_name), self.database, self.workgroup, self.output
            )
        if self.engine == "duckdb":
            return DuckDBEngine(s3_filesystem(), archive.bucket.name, archive.layout)
        raise ValueError(f"DEMAND_QUERY_ENGINE must be athena or duckdb, not {self.engine!r}")


class DynamoDBTableResource(dg.ConfigurableResource):
    """The source table (DEMAND_TABLE_NAME)."""

    table_name: str
    region_name: str | None = None

    def client(self):
        return aws.client("dynamodb", self.region_name)


class AlertPublisher(dg.ConfigurableResource):
    """Where the alert sensors' alerts go: the sensor's log (its tick log in the UI), and the
    address of the Dagster UI the alerts' links start with (DEMAND_UI_URL)."""

    ui_url: str = "http://127.0.0.1:3000"

    def publish(self, alert: Alert, log: logging.Logger) -> None:
        log.warning(alert.line(self.ui_url))


class LogAlertPublisher(AlertPublisher):
    """Locally (DEMAND_ALERT_TOPIC_ARN unset): a log line per alert, nothing else."""


class SNSAlertPublisher(AlertPublisher):
    """In AWS: the alert to the SNS topic DEMAND_ALERT_TOPIC_ARN (its subscribers are the
    operator's: deploy/README.md), and the log line."""

    topic_arn: str
    region_name: str | None = None

    def publish(self, alert: Alert, log: logging.Logger) -> None:
        aws.client("sns", self.region_name).publish(
            TopicArn=self.topic_arn,
            Subject=alert.subject(),
            Message=alert.message(self.ui_url),
            MessageAttributes={
                "condition": {"DataType": "String", "StringValue": alert.key},
                "kind": {"DataType": "String", "StringValue": alert.kind},
            },
        )
        super().publish(alert, log)
