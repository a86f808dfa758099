"""Retries for transient AWS errors: the policies are on the definitions, the clients retry in
standard mode with a bound, run retries are configured with a limit, and a run whose S3 writes
fail at first (a throttled request, then a bucket not there yet) still archives every change
exactly once."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import boto3
import dagster as dg
import pytest
from botocore.awsrequest import AWSResponse
from dagster._core.definitions.dependency import NodeHandle  # no public name

from demand_assets.aws import AWS_MAX_ATTEMPTS, KINESIS_MAX_ATTEMPTS, aws_config
from demand_assets.definitions import build_definitions
from demand_assets.defs.archive_job import ARCHIVE_JOB
from demand_assets.defs.operations import BOOTSTRAP_JOB, REPLAY_JOB
from demand_assets.defs.resources import S3Resource
from demand_assets.defs.retries import AWS_RETRY_POLICY
from demand_assets.records import RECORD_TYPES
from demand_assets.traffic.generator import ChangeGenerator
from demand_assets_tests.defs.operating import archived_event_ids, land
from demand_assets_tests.defs.pipeline import execute, expected_records

ROOT = Path(__file__).resolve().parents[2]
YESTERDAY = datetime(2026, 11, 20, tzinfo=UTC)
FAST = dg.RetryPolicy(
    max_retries=3, delay=0.2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


def test_steps_that_talk_to_aws_carry_the_retry_policy(settings):
    defs = build_definitions(settings)
    policy = AWS_RETRY_POLICY
    assert policy.max_retries == 3 and policy.delay
    assert policy.backoff == dg.Backoff.EXPONENTIAL and policy.jitter is not None
    assets = [
        *RECORD_TYPES,
        *(f"{t}_glue_partitions" for t in RECORD_TYPES),
        "glue_tables",
    ]
    for key in assets:
        assert defs.resolve_assets_def(key).node_def.retry_policy == policy, key
    assert len(defs.asset_checks) == len(RECORD_TYPES)
    for checks_def in defs.asset_checks:
        assert checks_def.node_def.retry_policy == policy, checks_def.node_def.name
    for job_name in (ARCHIVE_JOB, BOOTSTRAP_JOB, REPLAY_JOB):
        job = defs.resolve_job_def(job_name)
        aws_steps = [n for n in job.graph.nodes if n.definition.required_resource_keys]
        assert aws_steps, job_name
        for node in aws_steps:
            handle = NodeHandle(node.name, None)
            assert job.get_retry_policy_for_handle(handle) == policy, (job_name, node.name)


def test_aws_clients_retry_in_standard_mode_with_a_bound(settings, aws):
    defs = build_definitions(settings)
    clients = {
        "s3": defs.resources["s3"].get_client(),
        "glue": defs.resources["glue"].catalog().client,
        "dynamodb": defs.resources["table"].client(),
    }
    for name, client in clients.items():
        retries = client.meta.config.retries
        assert retries == {"mode": "standard", "total_max_attempts": AWS_MAX_ATTEMPTS}, name
    # The stream reader backs off throttling itself, within a tick's time bound.
    kinesis = defs.resources["stream"].reader().client.meta.config.retries
    assert kinesis == {"mode": "standard", "total_max_attempts": KINESIS_MAX_ATTEMPTS}


def test_run_retries_are_enabled_with_a_limit(tmp_path):
    shutil.copy(ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.run_retries_enabled
        assert 1 <= instance.run_retries_max_retries <= 3
        # step failures are the retry policies' job; run retries are for dead run workers
        assert not instance.run_retries_retry_on_asset_or_op_failure


class FlakyWrites:
    """A botocore hook: the first data file's upload gets a throttling response (which botocore
    retries), then a missing bucket (which it does not: the step fails and its retry policy
    runs it again); after that, S3 answers."""

    def __init__(self):
        self.failures = [(503, "SlowDown"), (404, "NoSuchBucket")]
        self.calls: list[str] = []  # attempts to upload that file

    def __call__(self, request, **_):
        if not re.search(r"/(avro|parquet)/", request.url):
            return None
        if self.calls and request.url != self.calls[0]:
            return None
        self.calls.append(request.url)
        if not self.failures:
            return None
        status, code = self.failures.pop(0)
        body = f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode()
        return AWSResponse(request.url, status, {}, _Raw(body))


class _Raw:
    def __init__(self, body: bytes):
        self.body = body

    def stream(self, **_):
        yield self.body


HOOK: list[FlakyWrites] = []


class FlakyS3(S3Resource):
    def get_client(self):
        # A client of its own: the shared one (demand_assets.aws) must not keep the hook.
        client = boto3.client("s3", config=aws_config(self.max_attempts))
        client.meta.events.register("before-send.s3.PutObject", HOOK[-1])
        return client


@pytest.fixture
def flaky():
    HOOK.append(FlakyWrites())
    yield HOOK[-1]
    HOOK.pop()


def test_a_run_whose_first_writes_fail_transiently_archives_each_change_once(settings, s3, flaky):
    changes = ChangeGenerator(seed=51, now=YESTERDAY, days=1, type_weights={"demand": 1}).changes(
        60
    )
    payloads = [c.data for c in changes]
    land(s3, settings, payloads, YESTERDAY.replace(hour=9), 1)
    defs = build_definitions(
        settings, s3=FlakyS3(max_attempts=AWS_MAX_ATTEMPTS - 1), retry_policy=FAST
    )
    instance = dg.DagsterInstance.ephemeral()

    result = execute(defs, instance, dg.RunRequest(job_name=ARCHIVE_JOB))

    assert result.success
    assert not flaky.failures and len(flaky.calls) == 3  # throttled, no bucket, written
    # Two failures, one step retry: botocore retried the throttled request itself; the step's
    # retry policy retried the missing bucket.
    retried = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert [e.step_key for e in retried] == ["archive_demand"]
    expected = expected_records(payloads)
    for fmt, counts in archived_event_ids(s3, settings).items():
        assert counts == Counter(dict.fromkeys(expected, 1)), fmt
