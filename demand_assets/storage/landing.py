"""Landing objects: the raw changes of one batch for one (type, partition date).

A batch is what one sensor tick read. Its changes land before the stream cursor moves, so a
run (or a rebuild a year later, after a rule changed) re-derives everything from them. A
deleted record's PII is redacted before it lands. Format: gzip'd JSON lines, one change each:
`{"shard", "seq", "arrival", "data"}` where `data` is the change record's JSON text.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import orjson

from demand_assets.records.deletion import scrub_change


@dataclass(slots=True, frozen=True)
class LandedChange:
    shard: str
    seq: str
    arrival: str | None
    data: bytes


def without_deleted_pii(data: bytes) -> bytes:
    """The change as it may be kept outside the archive: a REMOVE's PII redacted.

    Bytes without `REMOVE` and without JSON escapes cannot be a REMOVE and are kept as they are;
    others are parsed (`"REMOV\\u0045"` is a REMOVE too).
    """
    if b"REMOVE" not in data and b"\\u" not in data:
        return data
    try:
        change = orjson.loads(data)
    except orjson.JSONDecodeError:
        return data  # never landed: unparseable changes go to errors, scrubbed there
    if type(change) is not dict or change.get("eventName") != "REMOVE":
        return data
    return orjson.dumps(scrub_change(change))


def encode_landing(changes: Iterable[LandedChange]) -> bytes:
    lines = b"".join(
        orjson.dumps(
            {"shard": c.shard, "seq": c.seq, "arrival": c.arrival, "data": c.data.decode()}
        )
        + b"\n"
        for c in changes
    )
    return gzip.compress(lines, compresslevel=1, mtime=0)


def decode_landing(blob: bytes) -> list[LandedChange]:
    return list(iter_landing(blob))


def iter_landing(blob: bytes) -> Iterator[LandedChange]:
    """The changes of a landing object, decompressed as they are read."""
    with gzip.GzipFile(fileobj=io.BytesIO(blob)) as lines:
        for line in lines:
            if line.strip():
                row = orjson.loads(line)
                yield LandedChange(row["shard"], row["seq"], row["arrival"], row["data"].encode())
