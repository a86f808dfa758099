"""Putting generated (or recorded) change records on a Kinesis stream, at a chosen rate; and
writing them to, or replaying them from, a file (one base64 record per line)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from demand_assets.traffic.generator import GeneratedChange

MAX_PER_CALL = 500  # PutRecords' limit


def put(client, stream: str, changes: Iterable[GeneratedChange]) -> int:
    """Put changes in order, 500 per call; failed records are retried. Returns records put."""
    batch, total = [], 0
    for change in changes:
        batch.append({"Data": change.data, "PartitionKey": change.partition_key})
        if len(batch) == MAX_PER_CALL:
            total += _put_batch(client, stream, batch)
            batch = []
    if batch:
        total += _put_batch(client, stream, batch)
    return total


def _put_batch(client, stream: str, records: list[dict]) -> int:
    pending, delay = records, 0.1
    for _ in range(10):
        response = client.put_records(StreamName=stream, Records=pending)
        if not response.get("FailedRecordCount"):
            return len(records)
        pending = [
            r for r, out in zip(pending, response["Records"], strict=True) if "ErrorCode" in out
        ]
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
    raise RuntimeError(f"{len(pending)} records could not be put on {stream}")


def paced(changes: Iterable[GeneratedChange], rate: float) -> Iterator[list[GeneratedChange]]:
    """Chunks of changes released so that on average `rate` per second go out."""
    started, sent, chunk = time.monotonic(), 0, []
    for change in changes:
        chunk.append(change)
        due = (time.monotonic() - started) * rate
        if sent + len(chunk) <= due and len(chunk) < MAX_PER_CALL:
            continue
        if sent + len(chunk) > due:
            time.sleep(max(0.0, (sent + len(chunk)) / rate - (time.monotonic() - started)))
        yield chunk
        sent += len(chunk)
        chunk = []
    if chunk:
        yield chunk


def write_file(path: Path, changes: Iterable[GeneratedChange]) -> int:
    count = 0
    with open(path, "w") as out:
        for change in changes:
            key = base64.b64encode(change.partition_key.encode()).decode()
            out.write(f"{key} {base64.b64encode(change.data).decode()}\n")
            count += 1
    return count


def read_file(path: Path) -> Iterator[GeneratedChange]:
    with open(path) as lines:
        for line in lines:
            if line.strip():
                key, data = line.split()
                yield GeneratedChange(
                    base64.b64decode(data), base64.b64decode(key).decode(), "replayed", None
                )
