"""S3 failing on the wire during an archive run: single failures the SDK's retries absorb, and
bursts that outlast them and the step's retries and fail the run. A failed run leaves its
batches pending; the next tick asks for a run, which archives what is missing and redoes
nothing that is there. After each: nothing lost, nothing doubled, and the failure named.
(S3 failing while a batch lands is in test_tick_faults.py.)
"""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config

from demand_assets.defs.resources import S3Resource
from demand_assets_tests.faults.definitions import SDK_ATTEMPTS
from demand_assets_tests.faults.pipeline import AVRO, PARQUET
from demand_assets_tests.faults.pipeline import FaultPipeline as Pipeline
from demand_assets_tests.faults.proxy import Fault
from demand_assets_tests.hardening import case, failure_text, generated, table

READ_TIMEOUT = 1.0


class ShortTimeoutS3(S3Resource):
    """S3 clients with a short read timeout, so that a held connection times out in a test."""

    def get_client(self):
        config = Config(
            retries={"total_max_attempts": self.max_attempts, "mode": "standard"},
            read_timeout=READ_TIMEOUT,
            connect_timeout=READ_TIMEOUT,
        )
        return boto3.session.Session().client("s3", config=config)


@pytest.fixture
def pipeline(proxy, settings, s3, kinesis):
    return Pipeline.build(settings, s3, kinesis, ShortTimeoutS3(max_attempts=SDK_ATTEMPTS))


RUN_FAULTS = [
    # (fault, whether the SDK's retries absorb it, what the run's failure names)
    case(
        "parquet PUT 503 SlowDown once",
        Fault("s3", "PutObject", key_contains=PARQUET, status=503, code="SlowDown"),
        True,
        None,
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
            "s3", "PutObject", key_contains=AVRO, action="hold", hold_seconds=2, forward_first=True
        ),
        True,
        None,
    ),
    case(
        "parquet PUT times out, outage",
        Fault("s3", "PutObject", key_contains=PARQUET, action="hold", hold_seconds=2, times=None),
        False,
        "Read timeout",
    ),
    case(
        "landed batch GET connection reset, outage",
        Fault("s3", "GetObject", key_contains="/landing/demand/", action="reset", times=None),
        False,
        "Connection was closed",
    ),
    case(
        "pending marks DELETE 500 outage, after every partition is written",
        Fault("s3", "DeleteObjects", times=None, code="InternalError"),
        False,
        "InternalError",
    ),
]


@pytest.mark.parametrize(("fault", "absorbed", "named"), RUN_FAULTS)
def test_s3_fault_during_a_run(fault, absorbed, named, pipeline, proxy):
    pipeline.put(generated(40, seed=11))
    (request,) = pipeline.tick().run_requests
    pending = pipeline.pending()
    assert pending

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
        # A failed run clears no pending mark of a batch it did not write everywhere.
        assert pipeline.pending() == pending, "a failed run lost its batch's pending mark"
        between = set(pipeline.data_files("avro")) | set(pipeline.data_files("parquet"))
        if fault.key_contains == PARQUET and fault.action == "error":
            (key,) = set(fault.keys_hit)  # one partition's Parquet file kept failing
            assert key not in between and key.replace("parquet", "avro") in between
        # The next tick finds the batch still pending, and nothing queued: it asks for a run.
        (leftover,) = pipeline.tick().run_requests
        retried = pipeline.run(leftover)
        assert retried.success, failure_text(retried)
        if fault.operation == "DeleteObjects":  # every file was there: the run wrote none
            after = set(pipeline.data_files("avro")) | set(pipeline.data_files("parquet"))
            assert after == between
        outcome = f"run failed naming {named!r}; the next tick's run archived the rest"
    table(
        "S3 fault during a run",
        ("fault", "outcome", "archive"),
        [(fault.describe(), outcome, pipeline.drained())],
    )
