"""Reading the DynamoDB table itself: a parallel, paginated, throttling-aware Scan.

The stream carries changes from the moment it was enabled; a new deployment that must start
from the table's current state scans it. Each of `total_segments` segments is scanned on its
own (DynamoDB parallel scan), a page of at most `page_size` items at a time, continuing from
each page's `LastEvaluatedKey`. Throttling (`ProvisionedThroughputExceededException`,
`ThrottlingException`, `RequestLimitExceeded`) is retried with capped exponential back-off and
jitter, on top of botocore's own attempts, up to `max_retries` times per page; anything else
fails the scan, whose caller retries it as a whole (it is idempotent).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from botocore.exceptions import ClientError

THROTTLED = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
)
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Page:
    segment: int
    number: int  # 0, 1, ... within the segment
    start_key: dict | None  # the ExclusiveStartKey it was read from; None for the first page
    items: list[dict]
    capacity_units: float = 0.0


def key_names(client, table: str) -> list[str]:
    """The table's key attributes: the partition key, then the sort key if any."""
    schema = client.describe_table(TableName=table)["Table"]["KeySchema"]
    order = {"HASH": 0, "RANGE": 1}
    return [k["AttributeName"] for k in sorted(schema, key=lambda k: order[k["KeyType"]])]


class TableScanner:
    def __init__(
        self,
        client,
        table: str,
        *,
        page_size: int = 1000,
        max_retries: int = 10,
        base_delay: float = 0.5,
        max_delay: float = 20.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        log: logging.Logger | None = None,
    ):
        if page_size < 1:
            raise ValueError(f"page_size must be positive, got {page_size}")
        self.client = client
        self.table = table
        self.page_size = page_size
        self.max_retries = max_retries
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.sleep = sleep
        self.jitter = jitter
        self.log = log or _log
        self.throttled = 0

    def pages(self, segment: int, total_segments: int) -> Iterator[Page]:
        """Every page of one segment, in order."""
        if not 0 <= segment < total_segments:
            raise ValueError(f"segment {segment} is not in 0..{total_segments - 1}")
        start: dict | None = None
        number = 0
        while True:
            response = self._scan(segment, total_segments, start)
            capacity = response.get("ConsumedCapacity", {}).get("CapacityUnits", 0.0)
            yield Page(segment, number, start, response.get("Items", []), capacity)
            start = response.get("LastEvaluatedKey")
            if not start:
                return
            number += 1

    def _scan(self, segment: int, total_segments: int, start: dict | None) -> dict:
        request = {
            "TableName": self.table,
            "Segment": segment,
            "TotalSegments": total_segments,
            "Limit": self.page_size,
            "ReturnConsumedCapacity": "TOTAL",
        }
        if start:
            request["ExclusiveStartKey"] = start
        for attempt in range(self.max_retries + 1):
            try:
                return self.client.scan(**request)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code not in THROTTLED or attempt == self.max_retries:
                    raise
                self.throttled += 1
                delay = self.delay(attempt)
                self.log.warning(
                    "scan of %s segment %d throttled (%s); retrying in %.2f s",
                    self.table,
                    segment,
                    code,
                    delay,
                )
                self.sleep(delay)
        raise AssertionError("unreachable")

    def delay(self, attempt: int) -> float:
        """Capped exponential back-off with equal jitter: in [d/2, d], d = base * 2^attempt."""
        ceiling = min(self.max_delay, self.base_delay * 2**attempt)
        return ceiling / 2 + self.jitter() * ceiling / 2
