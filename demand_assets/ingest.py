"""A sensor tick's work, without Dagster: read the stream on from the checkpoints and land what
was read, so that a tick done again after a crash lands the very same batch.

1. An intent for these checkpoints exists (an earlier attempt of this tick wrote it):
   - with the batch's summary: the batch landed whole; only the checkpoints move on;
   - without: read exactly the intent's extent again and land it under its name.
2. Otherwise read (bounded by records and time); if anything was read, write the intent
   (name, per-shard ranges, the checkpoints that follow), then land the batch.
The caller stores the returned checkpoints as the cursor only after this returns.
"""

from __future__ import annotations

from dataclasses import dataclass

from demand_assets.records import PartitionWindow
from demand_assets.storage.archive import Archive
from demand_assets.storage.batches import BatchSummary, land_batch, read_summary
from demand_assets.storage.intents import Intent, read_intent, write_intent
from demand_assets.storage.recent import RecentChanges
from demand_assets.stream.checkpoints import SHARD_END, batch_name
from demand_assets.stream.kinesis import StreamReader


@dataclass
class Tick:
    checkpoints: dict[str, str]  # the cursor's checkpoints once this tick is stored
    summary: BatchSummary | None = None  # what this tick landed
    adopted: str | None = None  # a batch an earlier attempt of this tick landed whole
    repeated: bool = False  # this tick landed an earlier attempt's batch again
    millis_behind_latest: int = 0


def ingest(
    reader: StreamReader,
    archive: Archive,
    checkpoints: dict[str, str],
    window: PartitionWindow,
    recent: RecentChanges | None = None,
) -> Tick:
    stream = reader.stream_name
    intent = read_intent(archive, stream, checkpoints)
    if intent is not None and read_summary(archive, intent.batch) is not None:
        return Tick(intent.checkpoints, adopted=intent.batch)
    if intent is not None:
        ends = frozenset(
            s for s, c in intent.checkpoints.items() if c == SHARD_END and checkpoints.get(s) != c
        )
        read = reader.read(
            checkpoints, until={s: r[1] for s, r in intent.ranges.items()}, ends=ends
        )
        batch, after = intent.batch, intent.checkpoints
    else:
        read = reader.read(checkpoints)
        if not read.records:
            return Tick(read.checkpoints, millis_behind_latest=read.millis_behind_latest)
        batch = batch_name(stream, read.first_read, min(c.arrival for c in read.records))
        after = read.checkpoints
        ranges: dict[str, list[str]] = {}
        for change in read.records:
            ranges.setdefault(change.shard, [change.seq, change.seq])[1] = change.seq
        write_intent(archive, stream, checkpoints, Intent(batch, ranges, after))
    summary = land_batch(
        archive, stream, batch, read.records, window, read.millis_behind_latest, recent
    )
    return Tick(
        after,
        summary,
        repeated=intent is not None,
        millis_behind_latest=read.millis_behind_latest,
    )
