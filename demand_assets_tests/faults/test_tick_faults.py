"""Faults during a sensor tick: Kinesis throttling, expired iterators and errors while reading,
and S3 failing while the batch lands. A tick either copes (and logs what it coped with) or
fails before its cursor is stored; the next tick then reads the same changes again, lands them
under the same keys, and the runs archive each change once."""

from __future__ import annotations

import pytest

from demand_assets_tests.faults.proxy import Fault
from demand_assets_tests.hardening import (
    Pipeline,
    case,
    error_text,
    generated,
    table,
)

KINESIS_CALLS = 3  # AWS_MAX_ATTEMPTS in the proxy fixture: one call and two retries
THROTTLED = "ProvisionedThroughputExceededException"


@pytest.fixture
def pipeline(proxy, settings, s3, kinesis):
    return Pipeline.build(settings, s3, kinesis)


def _log_lines(capfd, text: str) -> list[str]:
    """Lines of the tick's log (the sensor's logger writes to stderr, and to the tick's log
    in the daemon) that contain `text`."""
    _, err = capfd.readouterr()
    return [line for line in err.splitlines() if text in line]


READ_FAULTS = [
    # (fault, whether the tick copes, the text of its log line or of its failure)
    case(
        "GetRecords throttled once",
        Fault("kinesis", "GetRecords", code=THROTTLED, status=400),
        True,
        None,
        slow=True,
    ),
    case(
        "GetRecords throttled past the SDK's retries",
        Fault("kinesis", "GetRecords", code=THROTTLED, status=400, times=KINESIS_CALLS + 1),
        True,
        f"throttled ({THROTTLED}); backing off",
    ),
    case(
        "GetRecords iterator expired",
        Fault("kinesis", "GetRecords", code="ExpiredIteratorException", status=400, nth=2),
        True,
        "iterator expired; renewing it",
    ),
    case(
        "GetShardIterator throttled past the SDK's retries",
        Fault("kinesis", "GetShardIterator", code=THROTTLED, status=400, times=KINESIS_CALLS),
        True,
        f"throttled ({THROTTLED}); backing off",
        slow=True,
    ),
    case(
        "ListShards rate-limited past the SDK's retries",
        Fault(
            "kinesis", "ListShards", code="LimitExceededException", status=400, times=KINESIS_CALLS
        ),
        True,
        "list_shards throttled; retrying",
        slow=True,
    ),
    case(
        "GetRecords 500 InternalFailure past the SDK's retries (a few answers)",
        Fault("kinesis", "GetRecords", code="InternalFailure", status=500, times=KINESIS_CALLS + 1),
        True,
        "service error (InternalFailure); retrying",
    ),
    case(
        "GetRecords 500 InternalFailure outage",
        Fault("kinesis", "GetRecords", code="InternalFailure", status=500, times=None),
        False,
        "InternalFailure",
        slow=True,
    ),
]


@pytest.mark.parametrize(("fault", "copes", "text"), READ_FAULTS)
def test_kinesis_fault_during_a_tick(fault, copes, text, pipeline, proxy, capfd):
    pipeline.put(generated(60, seed=21))

    (fault,) = proxy.add(fault)
    try:
        first = pipeline.tick()
        failure = None
    except Exception as exc:  # the daemon records a failed tick and keeps the cursor
        first, failure = None, error_text(exc)
    proxy.clear()
    assert fault.hits, f"the fault never fired: {fault.describe()}"
    if copes:
        assert failure is None, failure
        if text:
            assert _log_lines(capfd, text), f"no log line with {text!r}"
        outcome = f"tick read on; log: {text!r}" if text else "absorbed by SDK retries"
        requests = first.run_requests
    else:
        assert failure is not None and text in failure, failure
        assert pipeline.cursor is None
        outcome = f"tick failed naming {text!r}, cursor kept; next tick read it all"
        requests = pipeline.tick().run_requests
    for request in requests:
        assert pipeline.run(request).success
    pipeline.settle()
    table(
        "Kinesis fault during a tick",
        ("fault", "outcome", "archive"),
        [(fault.describe(), outcome, pipeline.verdict())],
    )


LANDING_FAULTS = [
    case(
        "landing PUT 503 SlowDown once",
        Fault("s3", "PutObject", key_contains="/landing/", status=503, code="SlowDown"),
        True,
        None,
        slow=True,
    ),
    case(
        "landing PUT 503 SlowDown outage from the 2nd object on (mid-landing)",
        Fault(
            "s3",
            "PutObject",
            key_contains="/landing/demand/",
            nth=2,
            status=503,
            code="SlowDown",
            times=None,
        ),
        False,
        "SlowDown",
    ),
    case(
        "error document PUT 500 outage",
        Fault("s3", "PutObject", key_contains="/errors/", code="InternalError", times=None),
        False,
        "InternalError",
        slow=True,
    ),
    case(
        "batch summary PUT connection reset, outage",
        Fault("s3", "PutObject", key_contains="/_batches/", action="reset", times=None),
        False,
        "Connection was closed",
        slow=True,
    ),
]


@pytest.mark.parametrize(("fault", "copes", "text"), LANDING_FAULTS)
def test_s3_fault_while_a_batch_lands(fault, copes, text, pipeline, proxy):
    pipeline.put(generated(60, seed=22, malformed_share=0.1, other_type_share=0.05))

    (fault,) = proxy.add(fault)
    try:
        first = pipeline.tick()
        failure = None
    except Exception as exc:
        first, failure = None, error_text(exc)
    proxy.clear()
    assert fault.hits, f"the fault never fired: {fault.describe()}"
    if copes:
        assert failure is None, failure
        requests = first.run_requests
        outcome = "absorbed by SDK retries"
    else:
        assert failure is not None and text in failure, failure
        assert pipeline.cursor is None, "a failed tick must not move the cursor"
        partial = len(pipeline.keys("landing/"))
        requests = pipeline.tick().run_requests
        outcome = (
            f"tick failed naming {text!r} with {partial} objects landed; "
            "next tick landed the same keys"
        )
    for request in requests:
        assert pipeline.run(request).success
    pipeline.settle()
    documents = pipeline.error_documents()
    events = [e for d in documents for e in d["events"]]
    rejected = sum(sum(s["rejected"].values()) for s in pipeline.summaries())
    assert len(pipeline.summaries()) == 1
    assert len(events) == rejected and len(events) == len(set(events)), "error documents doubled"
    assert len({d["error"]["message"] for d in documents}) == len(documents)
    table(
        "S3 fault while a batch lands",
        ("fault", "outcome", "archive", "errors/"),
        [
            (
                fault.describe(),
                outcome,
                pipeline.verdict(),
                f"{len(events)} rejected changes once in {len(documents)} documents",
            )
        ],
    )
