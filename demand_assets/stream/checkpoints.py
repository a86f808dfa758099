"""Per-shard checkpoints: `{shard_id: sequence_number}`, the last change read in each shard.

`SHARD_END` marks a closed shard read to its end, whose children may then be read.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import orjson

SHARD_END = "SHARD_END"


def load(cursor: str | None) -> dict[str, str]:
    if not cursor:
        return {}
    state = orjson.loads(cursor)
    return dict(state.get("shards", {}))


def dump(checkpoints: dict[str, str]) -> str:
    return orjson.dumps({"shards": checkpoints}, option=orjson.OPT_SORT_KEYS).decode()


def batch_name(
    stream_name: str, first_read: dict[str, str], first_arrival: datetime | str | None = None
) -> str:
    """The name of a batch, from the first sequence number it read in each shard.

    A tick repeated after a crash (its cursor never moved) starts at the same checkpoints, reads
    the same first changes, names its batch the same and so rewrites its objects instead of
    adding new ones. Sequence numbers never repeat in a stream, so neither do batch names, even
    when an operator rewinds the cursor.
    """
    positions = ",".join(f"{shard}={seq}" for shard, seq in sorted(first_read.items()))
    digest = hashlib.sha256(f"{stream_name}\n{positions}".encode()).hexdigest()
    if first_arrival is None:
        return f"b{digest[:24]}"
    if isinstance(first_arrival, str):
        first_arrival = datetime.fromisoformat(first_arrival)
    # Prefixed with when its first change arrived: batches sort by time and group by day.
    return f"{first_arrival.astimezone(UTC):%Y%m%dT%H%M%SZ}-{digest[:20]}"
