"""A code location for test_deploy_launcher, served by a real gRPC code server: a stream-path
job that finishes at once, and one that waits until it is terminated."""

from __future__ import annotations

import time

import dagster as dg

from demand_assets.defs.tags import STREAM_PATH_TAG

STREAM_TAGS = {STREAM_PATH_TAG: "archive"}


@dg.op
def archive_nothing(context) -> None:
    context.log.info("archived nothing")


@dg.op
def wait_for_termination() -> None:
    time.sleep(60)


@dg.job(tags=STREAM_TAGS)
def quick_stream_path() -> None:
    archive_nothing()


@dg.job(tags=STREAM_TAGS)
def long_stream_path() -> None:
    wait_for_termination()


defs = dg.Definitions(jobs=[quick_stream_path, long_stream_path])
