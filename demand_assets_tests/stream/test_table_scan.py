"""The table scan on the moto server's DynamoDB: parallel segments and pages read every item
exactly once; throttling is retried with capped exponential back-off, and given up on after
its limit."""

from __future__ import annotations

from collections import Counter

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError

from demand_assets.stream.table_scan import TableScanner, key_names
from demand_assets_tests.builders import create_keyed_table

TABLE = "scan-test"


@pytest.fixture
def dynamodb(aws):
    # One attempt per call: the scanner's own back-off is what these tests look at.
    client = boto3.client("dynamodb", config=Config(retries={"total_max_attempts": 1}))
    create_keyed_table(client, TABLE, range_key_first=True)
    for i in range(23):
        client.put_item(
            TableName=TABLE,
            Item={"pk": {"S": f"p{i % 7}"}, "sk": {"S": f"s{i}"}, "blob": {"B": bytes([i])}},
        )
    return client


def keys_of(pages) -> Counter:
    return Counter((it["pk"]["S"], it["sk"]["S"]) for page in pages for it in page.items)


def test_key_names_are_the_partition_key_then_the_sort_key(dynamodb):
    assert key_names(dynamodb, TABLE) == ["pk", "sk"]


@pytest.mark.parametrize("segments", [1, 3])
def test_segments_and_pages_read_every_item_once(dynamodb, segments):
    scanner = TableScanner(dynamodb, TABLE, page_size=4, sleep=pytest.fail)
    pages = [p for s in range(segments) for p in scanner.pages(s, segments)]

    assert keys_of(pages) == Counter({(f"p{i % 7}", f"s{i}"): 1 for i in range(23)})
    assert all(len(p.items) <= 4 for p in pages)
    for segment in range(segments):
        numbers = [p.number for p in pages if p.segment == segment]
        assert numbers == list(range(len(numbers)))
        starts = [p.start_key for p in pages if p.segment == segment]
        assert starts[0] is None and all(starts[1:])  # each page continues from the last
    assert {type(it["blob"]["B"]) for p in pages for it in p.items} == {bytes}


class Throttle:
    """Answers the first `times` Scan calls with a throttling error, as DynamoDB does."""

    def __init__(self, times: int, code: str = "ProvisionedThroughputExceededException"):
        self.times, self.code, self.calls = times, code, 0

    def __call__(self, request, **_):
        self.calls += 1
        if self.calls > self.times:
            return None
        body = f'{{"__type":"com.amazonaws.dynamodb.v20120810#{self.code}","message":"slow"}}'
        headers = {"Content-Type": "application/x-amz-json-1.0"}
        return AWSResponse(request.url, 400, headers, _Raw(body.encode()))


class _Raw:
    def __init__(self, body: bytes):
        self.body = body

    def stream(self, **_):
        yield self.body


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "ThrottlingException"])
def test_throttling_is_retried_with_capped_exponential_backoff(dynamodb, code):
    throttle = Throttle(6, code)
    dynamodb.meta.events.register("before-send.dynamodb.Scan", throttle)
    sleeps: list[float] = []
    scanner = TableScanner(
        dynamodb, TABLE, page_size=50, base_delay=0.1, max_delay=1.0, sleep=sleeps.append
    )

    pages = list(scanner.pages(0, 1))

    assert sum(keys_of(pages).values()) == 23
    assert scanner.throttled == 6 and len(sleeps) == 6
    ceilings = [min(1.0, 0.1 * 2**n) for n in range(6)]  # 0.1 0.2 0.4 0.8 1.0 1.0
    for slept, ceiling in zip(sleeps, ceilings, strict=True):
        assert ceiling / 2 <= slept <= ceiling


def test_persistent_throttling_gives_up_after_its_limit(dynamodb):
    dynamodb.meta.events.register("before-send.dynamodb.Scan", Throttle(100))
    sleeps: list[float] = []
    scanner = TableScanner(dynamodb, TABLE, max_retries=3, sleep=sleeps.append)
    with pytest.raises(ClientError, match="ProvisionedThroughputExceeded"):
        list(scanner.pages(0, 1))
    assert len(sleeps) == 3


def test_other_errors_are_not_retried(dynamodb):
    scanner = TableScanner(dynamodb, "no-such-table", sleep=pytest.fail)
    with pytest.raises(ClientError, match="ResourceNotFound"):
        list(scanner.pages(0, 1))
