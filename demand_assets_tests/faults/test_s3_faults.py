"""S3 failing on the wire, mid-run and mid-landing: single failures the SDK's retries absorb,
and bursts that exhaust them and fail the run or the tick, after which the retried run or the
next tick recovers by itself. After each: nothing lost, nothing doubled, and the failure named.
"""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from dagster_aws.s3 import S3Resource

from demand_assets_tests.faults.proxy import Fault
from demand_assets_tests.hardening import (
    S3_RETRIES,
    Pipeline,
    case,
    failure_text,
    generated,
    table,
)

READ_TIMEOUT = 1.0


class ShortTimeoutS3(S3Resource):
    """S3 clients with a short read timeout, so that a held connection times out in a test."""

    def get_client(self):
        config = Config(
            retries={"max_attempts": self.max_attempts, "mode": "standard"},
            read_timeout=READ_TIMEOUT,
            connect_timeout=READ_TIMEOUT,
        )
        return boto3.session.Session().client("s3", config=config)


@pytest.fixture
def pipeline(proxy, settings, s3, kinesis):
    return Pipeline.build(settings, s3, kinesis, ShortTimeoutS3(max_attempts=S3_RETRIES))


PARQUET, AVRO = ".parquet", ".avro"

RUN_FAULTS = [
    # (fault, whether the SDK's retries absorb it, what the run's failure names)
    case(
        "parquet PUT 503 SlowDown once",
        Fault("s3", "PutObject", key_contains=PARQUET, status=503, code="SlowDown"),
        True,
        None,
        slow=True,
    ),
    case(
        "parquet PUT 500 outage, after Avro before Parquet",
        Fault("s3", "PutObject", key_contains=PARQUET, times=None, code="InternalError"),
        False,
        "InternalError",
    ),
    case(
        "avro PUT reaches S3, its answer times out once",
        Fault(
            "s3", "PutObject", key_contains=AVRO, action="hold", hold_seconds=3, forward_first=True
        ),
        True,
        None,
    ),
    case(
        "parquet PUT times out, outage",
        Fault("s3", "PutObject", key_contains=PARQUET, action="hold", hold_seconds=3, times=None),
        False,
        "Read timeout",
        slow=True,
    ),
    case(
        "landed batch GET connection reset, outage",
        Fault("s3", "GetObject", key_contains="/landing/demand/", action="reset", times=None),
        False,
        "Connection was closed",
        slow=True,
    ),
]


@pytest.mark.parametrize(("fault", "absorbed", "named"), RUN_FAULTS)
def test_s3_fault_during_a_run(fault, absorbed, named, pipeline, proxy):
    pipeline.put(generated(40, seed=11))
    (request,) = pipeline.tick().run_requests

    (fault,) = proxy.add(fault)
    first = pipeline.run(request)
    proxy.clear()
    assert fault.hits, f"the fault never fired: {fault.describe()}"
    if absorbed:
        assert first.success, failure_text(first)
        outcome = f"absorbed by SDK retries ({fault.hits} hit)"
    else:
        assert not first.success
        assert named in failure_text(first), failure_text(first)
        between = _data_files(pipeline)
        if fault.key_contains == PARQUET and fault.action == "error":
            (key,) = set(fault.keys_hit)
            assert key not in between and key.replace("parquet", "avro") in between
        retried = pipeline.run(request)
        assert retried.success, failure_text(retried)
        outcome = f"run failed naming {named!r}; retried run succeeded"
    assert not pipeline.tick().run_requests
    verdict = pipeline.verdict()
    table(
        "S3 fault during a run",
        ("fault", "outcome", "archive"),
        [(fault.describe(), outcome, verdict)],
    )


def _data_files(pipeline: Pipeline) -> set[str]:
    return {k for k in pipeline.keys("") if k.endswith((AVRO, PARQUET)) and "/_" not in k}
