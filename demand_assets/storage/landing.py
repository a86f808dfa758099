"""Landing objects: the raw changes of one batch for one (type, partition date).

A batch is what one sensor tick read. Its changes land before the stream cursor moves, so a
run (or a rebuild a year later, after a rule changed) re-derives everything from them. A
deleted record's PII is redacted before it lands (`records.deletion.redacted_change`).
Format: gzip'd JSON lines, one change each: `{"shard", "seq", "arrival", "data"}` where `data`
is the change record's JSON text.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import orjson

from demand_assets.records.change import Change
from demand_assets.storage.archive import Archive
from demand_assets.storage.layout import name_of, partition_of

# Landing objects of a partition fetched ahead while the current one is read: a merge or a
# rebuild reads many small objects, each one request.
READ_AHEAD = 8


def encode_landing(changes: Iterable[Change]) -> bytes:
    lines = b"".join(
        orjson.dumps(
            {"shard": c.shard, "seq": c.seq, "arrival": c.arrival, "data": c.data.decode()}
        )
        + b"\n"
        for c in changes
    )
    return gzip.compress(lines, compresslevel=1, mtime=0)


def iter_landing(blob: bytes) -> Iterator[Change]:
    """The changes of a landing object, decompressed as they are read."""
    with gzip.GzipFile(fileobj=io.BytesIO(blob)) as lines:
        for line in lines:
            if line.strip():
                row = orjson.loads(line)
                yield Change(row["shard"], row["seq"], row["arrival"], row["data"].encode())


def landed_batches(archive: Archive, record_type: str, day: str) -> list[str]:
    """Names of the batches landed for a partition, in name (arrival) order."""
    return [
        name_of(k) for k in archive.bucket.keys(archive.layout.landing_prefix(record_type, day))
    ]


def landed_days(archive: Archive, record_type: str) -> set[str]:
    """The partition dates of a type that have landed changes, hence data."""
    prefixes = archive.bucket.prefixes(archive.layout.landing_prefix(record_type))
    return {partition_of(p) for p in prefixes}


def read_landed(
    archive: Archive, record_type: str, day: str, batches: Iterable[str]
) -> Iterator[Change]:
    """The landed changes of a partition for the given batches, one batch at a time in name
    order, each in stream order. Memory holds a few batches' compressed objects and the change
    being read; the next objects are fetched while one is read. A batch without an object for
    this partition contributes nothing."""
    names = sorted(set(batches))
    if not names:
        return

    def fetch(batch: str) -> bytes | None:
        return archive.bucket.get_or_none(archive.layout.landing_key(record_type, day, batch))

    with ThreadPoolExecutor(READ_AHEAD) as pool:
        upcoming = [pool.submit(fetch, name) for name in names[:READ_AHEAD]]
        following = iter(names[READ_AHEAD:])
        while upcoming:
            blob = upcoming.pop(0).result()
            name = next(following, None)
            if name is not None:
                upcoming.append(pool.submit(fetch, name))
            if blob is not None:
                yield from iter_landing(blob)
            del blob
