"""boto3 clients with bounded retries, and the AWS error codes the project reacts to.

Clients read `AWS_ENDPOINT_URL` (the local emulator), the region and credentials from the
environment, as the AWS SDK does. A client is made once per process and shared: clients are
thread-safe, and making one costs a quarter of a second, which a sensor tick or a run would
otherwise pay every time.
"""

from __future__ import annotations

import os
import threading
from functools import cache

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

# botocore's standard retry mode: throttling, 5xx and connection errors, with capped
# exponential back-off and jitter. Attempts count the first one.
AWS_MAX_ATTEMPTS = 5
# The stream reader backs off throttling itself, within a tick's time bound.
KINESIS_MAX_ATTEMPTS = 2

THROTTLED = frozenset(
    {"ProvisionedThroughputExceededException", "LimitExceededException", "ThrottlingException"}
)
NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})


def aws_config(max_attempts: int = AWS_MAX_ATTEMPTS) -> Config:
    return Config(retries={"mode": "standard", "total_max_attempts": max_attempts})


def client(service: str, region_name: str | None = None, max_attempts: int = AWS_MAX_ATTEMPTS):
    """The process's shared client for a service, with `max_attempts` standard retries."""
    return _client(service, region_name, max_attempts, os.environ.get("AWS_ENDPOINT_URL"))


_lock = threading.Lock()


@cache
def _client(service: str, region_name: str | None, max_attempts: int, endpoint: str | None):
    with _lock:  # sessions are not thread-safe
        return boto3.session.Session().client(
            service, region_name=region_name, config=aws_config(max_attempts)
        )


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def is_server_error(exc: ClientError) -> bool:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    return status >= 500 or error_code(exc) in ("InternalFailure", "ServiceUnavailable")
