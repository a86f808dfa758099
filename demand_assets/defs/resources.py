"""Resources: AWS clients and the archive's place in S3, configured from the environment."""

import logging
from functools import cached_property

import dagster as dg
from dagster_aws.s3 import S3Resource
from pydantic import PrivateAttr

from demand_assets.config import Settings
from demand_assets.defs.retries import AWS_MAX_ATTEMPTS, KINESIS_MAX_ATTEMPTS, aws_client
from demand_assets.storage.layout import Layout
from demand_assets.storage.s3 import Bucket
from demand_assets.stream.kinesis import StreamReader


class ArchiveResource(dg.ConfigurableResource):
    """The bucket and prefix of the archive (DEMAND_BUCKET, DEMAND_PREFIX)."""

    s3: dg.ResourceDependency[S3Resource]
    bucket_name: str
    prefix: str

    _bucket: Bucket | None = PrivateAttr(default=None)

    def bucket(self) -> Bucket:
        """One client per resource instance: building a boto3 client costs a quarter second."""
        if self._bucket is None:
            self._bucket = Bucket(self.s3.get_client(), self.bucket_name)
        return self._bucket

    @cached_property
    def layout(self) -> Layout:
        return Layout(self.prefix.strip("/"))


class KinesisStreamResource(dg.ConfigurableResource):
    """The change stream (DEMAND_STREAM_NAME, DEMAND_STREAM_START) and a tick's bounds."""

    stream_name: str
    start: str = "TRIM_HORIZON"
    region_name: str | None = None
    max_records_per_tick: int = 100_000
    max_seconds_per_tick: float = 20.0

    def client(self):
        return aws_client("kinesis", self.region_name, KINESIS_MAX_ATTEMPTS)

    def reader(self, log: logging.Logger | None = None) -> StreamReader:
        return StreamReader(
            self.client(),
            self.stream_name,
            self.start,
            max_records=self.max_records_per_tick,
            max_seconds=self.max_seconds_per_tick,
            log=log,
        )


def resources_from_settings(settings: Settings, s3: S3Resource | None = None) -> dict:
    from demand_assets.defs.catalog import GlueResource
    from demand_assets.defs.checks import QueryEngineResource
    from demand_assets.defs.io_managers import ArchiveIOManager

    # Standard retry mode; dagster-aws hands `max_attempts` to botocore, which counts retries.
    s3 = s3 or S3Resource(max_attempts=AWS_MAX_ATTEMPTS - 1)
    archive = ArchiveResource(s3=s3, bucket_name=settings.bucket, prefix=settings.prefix)
    return {
        "s3": s3,
        "archive": archive,
        "stream": KinesisStreamResource(
            stream_name=settings.stream_name, start=settings.stream_start
        ),
        "archive_io_manager": ArchiveIOManager(archive=archive),
        "glue": GlueResource(database=settings.glue_database),
        "query_engine": QueryEngineResource(
            engine=settings.query_engine,
            database=settings.glue_database,
            workgroup=settings.athena_workgroup,
            output=settings.athena_output,
        ),
    }
