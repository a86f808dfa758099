"""Landing a batch read from the stream, and reading landed changes back for a partition.

Landing is the durable step of a sensor tick: every change of the batch is decoded, each
archivable one lands under its (type, partition date), each rejected one goes to an error
document, and a summary records what the batch held. Only then may the stream cursor move.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import orjson

from demand_assets.records import Archivable, PartitionWindow, Rejected, decode_change
from demand_assets.storage.errors import error_objects
from demand_assets.storage.landing import (
    LandedChange,
    decode_landing,
    encode_landing,
    iter_landing,
    without_deleted_pii,
)
from demand_assets.storage.layout import Layout, batch_of, partition_of
from demand_assets.storage.s3 import Bucket

_UPLOAD_THREADS = 8


@dataclass
class BatchSummary:
    batch: str
    stream: str
    records: int = 0
    archivable: dict[str, int] = field(default_factory=dict)  # "type/YYYY-MM-DD" -> changes
    rejected: dict[str, int] = field(default_factory=dict)  # type (or "unknown") -> changes
    skipped: dict[str, int] = field(default_factory=dict)  # other item types -> changes
    error_keys: list[str] = field(default_factory=list)
    shards: dict[str, list[str]] = field(default_factory=dict)  # shard -> [first, last] seq
    first_arrival: str | None = None
    last_arrival: str | None = None
    millis_behind_latest: int = 0

    def partitions(self) -> dict[str, list[str]]:
        """record type -> the partition dates this batch touched."""
        out: dict[str, list[str]] = defaultdict(list)
        for key in sorted(self.archivable):
            record_type, day = key.split("/")
            out[record_type].append(day)
        return dict(out)

    def to_json(self) -> bytes:
        return orjson.dumps(self.__dict__, option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, body: bytes) -> BatchSummary:
        return cls(**orjson.loads(body))


@dataclass(slots=True, frozen=True)
class ChangeRead:
    """A change as read from the stream."""

    shard: str
    seq: str
    arrival: str  # ISO-8601
    data: bytes


def land_batch(
    bucket: Bucket,
    layout: Layout,
    stream: str,
    batch: str,
    changes: list[ChangeRead],
    window: PartitionWindow,
    millis_behind_latest: int = 0,
) -> BatchSummary:
    summary = BatchSummary(batch=batch, stream=stream, records=len(changes))
    summary.millis_behind_latest = millis_behind_latest
    landed: dict[tuple[str, str], list[LandedChange]] = defaultdict(list)
    rejected: list[tuple[Rejected, str]] = []
    rejected_types: Counter = Counter()
    skipped: Counter = Counter()
    for change in changes:
        result = decode_change(change.data, change.shard, change.seq, window)
        if type(result) is Archivable:
            landed[(result.record_type, result.partition_date)].append(
                LandedChange(
                    change.shard, change.seq, change.arrival, without_deleted_pii(change.data)
                )
            )
        elif type(result) is Rejected:
            rejected.append((result, change.arrival, change.shard, change.seq))
            rejected_types[result.record_type or "unknown"] += 1
        else:
            skipped[result.item_type] += 1
        first_last = summary.shards.setdefault(change.shard, [change.seq, change.seq])
        first_last[1] = change.seq
    if changes:
        summary.first_arrival = min(c.arrival for c in changes)
        summary.last_arrival = max(c.arrival for c in changes)
    summary.archivable = {f"{t}/{d}": len(v) for (t, d), v in sorted(landed.items())}
    summary.rejected = dict(rejected_types)
    summary.skipped = dict(skipped)

    objects = [
        (layout.landing_key(t, d, batch), encode_landing(v), "application/gzip")
        for (t, d), v in landed.items()
    ]
    errors = error_objects(layout, batch, rejected)
    summary.error_keys = [key for key, _ in errors]
    objects += [(key, body, "application/json") for key, body in errors]
    _put_all(bucket, objects)
    # The summary goes last: a batch with a summary has landed whole.
    bucket.put(layout.batch_summary_key(batch), summary.to_json(), "application/json")
    return summary


def _put_all(bucket: Bucket, objects: list[tuple[str, bytes, str]]) -> None:
    if len(objects) <= 1:
        for key, body, content_type in objects:
            bucket.put(key, body, content_type)
        return
    with ThreadPoolExecutor(_UPLOAD_THREADS) as pool:
        list(pool.map(lambda o: bucket.put(*o), objects))


def read_summary(bucket: Bucket, layout: Layout, batch: str) -> BatchSummary | None:
    body = bucket.get_or_none(layout.batch_summary_key(batch))
    return None if body is None else BatchSummary.from_json(body)


def landed_batches(bucket: Bucket, layout: Layout, record_type: str, day: str) -> list[str]:
    """Names of the batches landed for a partition, in key order."""
    return [batch_of(k) for k in bucket.keys(layout.landing_prefix(record_type, day))]


def landed_days(bucket: Bucket, layout: Layout, record_type: str) -> set[str]:
    """The partition dates of a type that have landed changes, hence data."""
    return {partition_of(p) for p in bucket.prefixes(layout.landing_prefix(record_type))}


def archivable_records(
    landed: Iterable[LandedChange], record_type: str, day: str, window: PartitionWindow
) -> Iterator[dict]:
    """Decode landed changes into the archived records of one partition.

    A change of the same eventID seen again (a producer's re-delivery, a tick repeated after a
    crash) is archived once.
    """
    seen: set[str] = set()
    for change in landed:
        result = decode_change(change.data, change.shard, change.seq, window)
        if type(result) is not Archivable:
            continue  # landed under an older rule; the rebuild's summary counts these
        if result.record_type != record_type or result.partition_date != day:
            continue
        event_id = result.record["provenance"]["eventID"]
        if event_id in seen:
            continue
        seen.add(event_id)
        yield result.record


def read_landed(bucket: Bucket, layout: Layout, record_type: str, day: str, batch: str):
    body = bucket.get_or_none(layout.landing_key(record_type, day, batch))
    return [] if body is None else decode_landing(body)


def stream_partition(
    bucket: Bucket, layout: Layout, record_type: str, day: str, batches: list[str]
) -> Iterator[LandedChange]:
    """The landed changes of a partition, one batch at a time in name order (batch names start
    with their first arrival, so this is arrival order), each batch in stream order. Memory
    holds a batch's compressed object and the change being read; the next batch's object is
    fetched while this one is read."""
    if not batches:
        return

    def fetch(batch: str) -> bytes | None:
        return bucket.get_or_none(layout.landing_key(record_type, day, batch))

    with ThreadPoolExecutor(1) as pool:
        upcoming = pool.submit(fetch, batches[0])
        for following in [*batches[1:], None]:
            blob = upcoming.result()
            if following is not None:
                upcoming = pool.submit(fetch, following)
            if blob is not None:
                yield from iter_landing(blob)
            del blob
