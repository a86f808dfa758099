"""Faults during a sensor tick: Kinesis throttling, expired iterators and errors while reading,
and S3 failing at each step of landing a batch (eventID digests, landing objects and error
documents, pending marks, summary). A tick either copes (and logs what it coped with) or fails
before its cursor is stored; the next tick then reads the same changes again (its intent fixes
the extent), lands them under the same keys, and the archive run it asks for archives each
change once."""

from __future__ import annotations

import pytest

from demand_assets.aws import KINESIS_MAX_ATTEMPTS
from demand_assets_tests.faults.pipeline import FaultPipeline as Pipeline
from demand_assets_tests.faults.proxy import Fault
from demand_assets_tests.hardening import case, error_text, generated, table

KINESIS_CALLS = KINESIS_MAX_ATTEMPTS  # the stream reader's client: one call and its retries
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
        Fault("kinesis", "GetShardIterator", code=THROTTLED, status=400, times=KINESIS_CALLS + 1),
        True,
        f"throttled ({THROTTLED}); backing off",
    ),
    # A tick that cannot list the shards has read nothing: it fails, its cursor stays, and
    # the next tick (a tick interval later: the back-off) reads it all.
    case(
        "ListShards rate-limited past the SDK's retries",
        Fault(
            "kinesis", "ListShards", code="LimitExceededException", status=400, times=KINESIS_CALLS
        ),
        False,
        "LimitExceededException",
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
        assert pipeline.cursor is None, "a failed tick must not move the cursor"
        assert not pipeline.keys("landing/"), "a tick that failed reading landed something"
        outcome = f"tick failed naming {text!r}, cursor kept; next tick read it all"
        requests = pipeline.tick().run_requests
    (request,) = requests  # the tick that landed the batch asks for its archive run
    assert pipeline.run(request).success
    pipeline.settle()
    assert len(pipeline.summaries()) == 1, "the changes were landed in more than one batch"
    table(
        "Kinesis fault during a tick",
        ("fault", "outcome", "archive"),
        [(fault.describe(), outcome, pipeline.drained())],
    )


LANDING = "/landing/demand/"
# S3 failing at each step of landing a batch, in order: the intent, the eventID digests
# (`_batches/{day}/{batch}.ids`), the landing objects and error documents (written together),
# the pending marks, the summary (`_batches/{day}/{batch}.json`, the 2nd `_batches/` object).
LANDING_FAULTS = [
    case(
        "landing PUT 503 SlowDown once",
        Fault("s3", "PutObject", key_contains=LANDING, status=503, code="SlowDown"),
        True,
        None,
    ),
    case(
        "intent PUT 500 outage (before anything lands)",
        Fault("s3", "PutObject", key_contains="/_intents/", code="InternalError", times=None),
        False,
        "InternalError",
    ),
    case(
        "eventID digests PUT 500 outage",
        Fault("s3", "PutObject", key_contains="/_batches/", code="InternalError", times=None),
        False,
        "InternalError",
    ),
    case(
        "landing PUT 503 SlowDown outage from the 2nd object on (mid-landing)",
        Fault(
            "s3",
            "PutObject",
            key_contains=LANDING,
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
    ),
    case(
        "pending mark PUT 500 outage",
        Fault("s3", "PutObject", key_contains="/_pending/", code="InternalError", times=None),
        False,
        "InternalError",
    ),
    case(
        "batch summary PUT connection reset, outage",
        Fault("s3", "PutObject", key_contains="/_batches/", nth=2, action="reset", times=None),
        False,
        "Connection was closed",
    ),
]
# What each fault's first hit must be, so that a case cannot fault another step unawares.
HIT = {
    "/_intents/": ".json",
    "/_batches/": ".ids",
    LANDING: ".jsonl.gz",
    "/errors/": ".json",
    "/_pending/": ".json",
}


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
    want = ".json" if fault.nth == 2 and fault.key_contains == "/_batches/" else None
    assert fault.keys_hit[0].endswith(want or HIT[fault.key_contains]), fault.keys_hit[0]
    if copes:
        assert failure is None, failure
        requests = first.run_requests
        outcome = "absorbed by SDK retries"
    else:
        assert failure is not None and text in failure, failure
        assert pipeline.cursor is None, "a failed tick must not move the cursor"
        assert not pipeline.summaries(), "a batch that did not land whole has a summary"
        partial = len(pipeline.keys("landing/")) + len(pipeline.keys("errors/"))
        landed = set(pipeline.landing_objects())
        requests = pipeline.tick().run_requests
        assert landed <= set(pipeline.landing_objects()), "the next tick landed other keys"
        outcome = (
            f"tick failed naming {text!r} with {partial} objects written; "
            "next tick landed the same keys"
        )
    (request,) = requests
    assert pipeline.run(request).success
    pipeline.settle()
    documents = pipeline.error_documents()
    events = [e for d in documents for e in d["events"]]
    rejected = sum(sum(s["rejected"].values()) for s in pipeline.summaries())
    assert len(pipeline.summaries()) == 1
    assert rejected, "the batch held no rejected change: the error documents went untested"
    assert len(events) == rejected and len(events) == len(set(events)), "error documents doubled"
    assert len({d["error"]["message"] for d in documents}) == len(documents)
    table(
        "S3 fault while a batch lands",
        ("fault", "outcome", "archive", "errors/"),
        [
            (
                fault.describe(),
                outcome,
                pipeline.drained(),
                f"{len(events)} rejected changes once in {len(documents)} documents",
            )
        ],
    )
