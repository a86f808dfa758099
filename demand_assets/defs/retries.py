"""Retries for transient AWS errors, in three layers, each bounded.

1. botocore, inside every call: standard retry mode (throttling, 5xx, connection errors),
   `AWS_MAX_ATTEMPTS` attempts in all, with botocore's capped exponential back-off and jitter.
   Kinesis gets fewer: the stream reader backs off throttling itself, within a tick's time
   bound.
2. Dagster, around every step that talks to AWS: `AWS_RETRY_POLICY`, three retries with
   exponential back-off and jitter (about 2 s, 6 s, 14 s), for what outlasts botocore's attempts
   (an S3 or Glue blip of a few seconds, a bucket policy being replaced). Every step is
   idempotent: the same keys are written again, so a retried step doubles nothing.
3. Dagster, around the run: `run_retries` in dagster.yaml, for a run worker that dies (lost
   node, OOM, deploy). Not for step failures, which layer 2 already retried.
"""

import os
import threading
from functools import cache

import boto3
import dagster as dg
from botocore.config import Config

AWS_MAX_ATTEMPTS = 5
KINESIS_MAX_ATTEMPTS = 2

AWS_RETRY_POLICY = dg.RetryPolicy(
    max_retries=3,
    delay=2.0,
    backoff=dg.Backoff.EXPONENTIAL,
    jitter=dg.Jitter.PLUS_MINUS,
)


def aws_config(max_attempts: int = AWS_MAX_ATTEMPTS) -> Config:
    """`max_attempts` counts every attempt, the first included."""
    return Config(retries={"mode": "standard", "total_max_attempts": max_attempts})


def aws_client(service: str, region_name: str | None = None, max_attempts: int = AWS_MAX_ATTEMPTS):
    """A boto3 client with bounded standard retries. boto3 reads AWS_ENDPOINT_URL (the local
    emulator) and credentials from the environment.

    Clients are made once per process and shared (they are thread-safe and refresh their
    credentials): making one costs a quarter of a second, which a sensor tick or a step would
    otherwise pay every time.
    """
    return _client(service, region_name, max_attempts, os.environ.get("AWS_ENDPOINT_URL"))


_lock = threading.Lock()


@cache
def _client(service: str, region_name: str | None, max_attempts: int, endpoint: str | None):
    with _lock:  # sessions are not thread-safe
        return boto3.session.Session().client(
            service, region_name=region_name, config=aws_config(max_attempts)
        )
